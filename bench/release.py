#!/usr/bin/env python3
"""Releases benchmark: `turtle push` of a one-service change on a 10-service
stack against `docker-compose up -d --build` of the same change, and how fast
a bad release is rolled back.

Python 3.11 standard library only; reuses the engine helpers of bench/run.py.

Each run:
  1. a 10-service stack, each service built from its own tiny context
     (FROM the test busybox, a build argument, a healthcheck with a 1 s
     interval), is brought up by each tool (untimed);
  2. one service's source changes; timed:
     - turtle: `turtle push --settle S` until it exits committed; the time to
       the switch (the `settle:` line) is reported too, since the rest is the
       settle window itself;
     - compose: `docker-compose up -d --build` until the changed service's
       new container is healthy (compose has no settle window and no gate);
  3. turtle only: a release whose changed service fails its healthcheck is
     pushed; reported: from the gate's verdict (the `rolling back` line) to
     the old release serving again (what turtle measures and prints:
     `serves again after N ms`), and the push's wall time.

Usage: python3 bench/release.py --turtle target/release/turtle [--runs 3] [--settle 5s]
See BENCHMARKS.md ("Releases").
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as common  # noqa: E402

N = 10
CHANGED = "s5"


def stack_yaml(health: dict[str, str]) -> str:
    out = ["services:"]
    for i in range(N):
        name = f"s{i}"
        test = health.get(name, "test -f /version")
        out.append(
            f"""  {name}:
    build: {{context: ./{name}}}
    image: PROJECT-{name}:latest
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    healthcheck: {{test: ["CMD-SHELL", "{test}"], interval: 1s, timeout: 3s, retries: 2}}"""
        )
    return "\n".join(out) + "\n"


def write_sources(root: Path, version: str) -> None:
    for i in range(N):
        d = root / f"s{i}"
        d.mkdir(parents=True, exist_ok=True)
        v = version if f"s{i}" == CHANGED else "1"
        (d / "version").write_text(v + "\n")
        (d / "Dockerfile").write_text(f"FROM {common.IMAGE}\nCOPY version /version\n")


class Tool:
    def __init__(self, turtle: str, tmp: Path):
        self.turtle = turtle
        self.tmp = tmp
        self.state = tmp / "state"
        self.state.mkdir()
        (self.state / "turtle.yaml").write_text(
            "device: {tune: false, shed: false}\nmdns: {enabled: false}\n"
        )
        self.daemon = None

    def env(self) -> dict:
        e = dict(os.environ)
        e.pop("COMPOSE_PROJECT_NAME", None)
        e["TURTLE_STATE_DIR"] = str(self.state)
        e["TURTLE_CONFIG"] = str(self.state / "turtle.yaml")
        return e

    def start(self) -> None:
        log = open(self.state / "daemon.log", "w")
        self.daemon = subprocess.Popen(
            [self.turtle, "daemon"],
            env=self.env(),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while not (self.state / "turtle.sock").exists():
            if time.monotonic() > deadline:
                raise RuntimeError((self.state / "daemon.log").read_text())
            time.sleep(0.05)

    def stop(self) -> None:
        if self.daemon and self.daemon.poll() is None:
            os.kill(self.daemon.pid, signal.SIGTERM)
            self.daemon.wait(30)

    def push(self, project: str, d: Path, settle: str) -> tuple[float, float | None, str, int]:
        t0 = time.perf_counter()
        p = subprocess.Popen(
            [self.turtle, "push", str(d), "-p", project, "--settle", settle],
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        switched = None
        lines = []
        for line in p.stderr:
            lines.append(line)
            if switched is None and "settle:" in line:
                switched = time.perf_counter() - t0
        code = p.wait()
        return time.perf_counter() - t0, switched, "".join(lines), code


def changed_ready(project: str, old_id: str | None) -> bool:
    for c in common.project_containers(project):
        labels = c.get("Labels", {})
        if labels.get("com.docker.compose.service") != CHANGED:
            continue
        return c["Id"] != old_id and common.is_ready(c)
    return False


def service_id(project: str) -> str | None:
    for c in common.project_containers(project):
        if c.get("Labels", {}).get("com.docker.compose.service") == CHANGED:
            return c["Id"]
    return None


def remove(project: str) -> None:
    ids = [c["Id"] for c in common.project_containers(project)]
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
    subprocess.run(
        ["docker", "network", "prune", "-f", "--filter", f"label=com.docker.compose.project={project}"],
        capture_output=True,
    )
    out = subprocess.run(
        ["docker", "images", "-q", "--filter", f"reference={project}-*"],
        capture_output=True,
        text=True,
    ).stdout.split()
    if out:
        subprocess.run(["docker", "rmi", "-f", *out], capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--turtle", default="target/release/turtle")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--settle", default="5s")
    args = ap.parse_args()
    subprocess.run(["sh", str(common.REPO / "images/test-busybox/build.sh"), common.IMAGE],
                   check=True, capture_output=True, env={**os.environ, "TURTLE": args.turtle})
    tmp = Path(tempfile.mkdtemp(prefix="turtle-bench-release-"))
    tool = Tool(os.path.abspath(args.turtle), tmp)
    tool.start()
    res: dict[str, list[float]] = {k: [] for k in ["push", "switch", "compose", "rollback", "badpush"]}
    try:
        for r in range(args.runs):
            # turtle
            tp = f"tbrel{os.getpid()}t{r}"
            d = tmp / tp
            write_sources(d, "1")
            (d / "compose.yaml").write_text(stack_yaml({}).replace("PROJECT", tp))
            total, _, err, code = tool.push(tp, d, args.settle)
            assert code == 0, err
            write_sources(d, "2")
            total, switched, err, code = tool.push(tp, d, args.settle)
            assert code == 0, err
            res["push"].append(total)
            res["switch"].append(switched or total)
            # a bad release: the changed service never healthy
            write_sources(d, "3")
            (d / "compose.yaml").write_text(
                stack_yaml({CHANGED: "false"}).replace("PROJECT", tp)
            )
            total, _, err, code = tool.push(tp, d, args.settle)
            assert code != 0 and "rolled back" in err, err
            m = re.search(r"serves again after (\d+) ms", err)
            assert m, err
            res["rollback"].append(int(m.group(1)) / 1000)
            res["badpush"].append(total)
            remove(tp)

            # compose
            cp = f"tbrel{os.getpid()}c{r}"
            d = tmp / cp
            write_sources(d, "1")
            f = d / "docker-compose.yml"
            f.write_text(stack_yaml({}).replace("PROJECT", cp))
            subprocess.run(["docker-compose", "-f", str(f), "-p", cp, "up", "-d", "--build"],
                           check=True, capture_output=True)
            old = service_id(cp)
            write_sources(d, "2")
            t0 = time.perf_counter()
            subprocess.run(["docker-compose", "-f", str(f), "-p", cp, "up", "-d", "--build"],
                           check=True, capture_output=True)
            deadline = time.monotonic() + 120
            while not changed_ready(cp, old):
                if time.monotonic() > deadline:
                    raise RuntimeError("compose: the changed service never became healthy")
                time.sleep(common.POLL)
            res["compose"].append(time.perf_counter() - t0)
            subprocess.run(["docker-compose", "-f", str(f), "-p", cp, "down", "--rmi", "local"],
                           capture_output=True)
            remove(cp)
    finally:
        tool.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"one-service change on a {N}-service stack, {args.runs} run(s), medians:")
    print(f"  turtle push to committed (settle {args.settle}): {med['push']:.2f} s")
    print(f"  turtle push to the switch done (gate starts):   {med['switch']:.2f} s")
    print(f"  docker-compose up -d --build to healthy:       {med['compose']:.2f} s")
    print(f"  ratio (turtle to switch / compose):            {med['switch'] / med['compose']:.2f}x")
    print(f"bad release (healthcheck fails), settle {args.settle}:")
    print(f"  verdict -> old release serving again:          {med['rollback']:.2f} s")
    print(f"  whole push (download, switch, gate, rollback): {med['badpush']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
