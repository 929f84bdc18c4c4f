#!/usr/bin/env python3
"""Children following a push: from `turtle fleet push` to every child committed,
for 2 and 5 children (or --children), with the parts the parent can see.

The backend stack comes up (release build, raspberrypi3 profile), a fleet is
made and N children are created one after the other (`turtle child create`,
each a container with its own Docker engine and turtle, half raspberrypi3 and
half intel-nuc). Release 1 is pushed and every child waits on it; then
release 2 is pushed (a one-service context built by the backend's builder) and
the script polls `turtle devices --format json` every 0.2 s until each child
reports release 2 committed. Per child count: the time from the push's start
to its commit; the push itself (context to the builder, build, registry push,
release); the child's memory (its container's cgroup, nested engine and
turtle and the service).

Python 3.11 standard library only; needs root and the Docker engine (the
child image is built on first use: Debian's docker.io in a turtle image).

Usage: python3 bench/children.py [--children 2,5] [--turtle PATH] [--write-md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet_scale import Container, release_bin  # noqa: E402
from stack import Stack, mb, sh  # noqa: E402

SERVICE = """services:
  web:
    build: ./web
    image: web
    command: ["sh", "-c", "exec sleep 3600"]
    restart: unless-stopped
    stop_signal: SIGKILL
    healthcheck: {{test: ["CMD-SHELL", "cat /built"], interval: 1s, retries: 2}}
    labels: {{io.turtle.settle: 3s, bench.version: "{v}"}}
"""


def write_release(root: Path, version: int) -> Path:
    d = root / f"v{version}"
    (d / "web").mkdir(parents=True, exist_ok=True)
    (d / "web" / "Dockerfile").write_text(f"FROM turtle-test-busybox:latest\nRUN echo {version} > /built\n")
    (d / "compose.yaml").write_text(SERVICE.format(v=version))
    return d


def devices(stack: Stack) -> dict[str, dict]:
    _, out = sh(stack.cmd("devices", "--format", "json", "--stack", stack.project), env=stack.env)
    return {d.get("name"): d for d in json.loads(out)}


def committed(d: dict, version: str) -> bool:
    cur = (d.get("state") or {}).get("current_release") or {}
    return str(cur.get("version")) == version and isinstance(cur.get("fleet_release"), int)


def wait_all(stack: Stack, names: list[str], version: str, since: float, limit: float) -> dict[str, float]:
    done: dict[str, float] = {}
    while len(done) < len(names):
        if time.monotonic() - since > limit:
            sys.exit(f"children not on release {version} after {limit:.0f} s: "
                     f"{sorted(set(names) - set(done))}")
        for name, d in devices(stack).items():
            if name in names and name not in done and committed(d, version):
                done[name] = time.monotonic() - since
        time.sleep(0.2)
    return done


def push(stack: Stack, fleet: str, context: Path) -> dict:
    """`turtle fleet push`, timed as a whole and in its parts by the lines it
    prints: up to the build's start (reading the fleet and its releases, the
    context tarred), the builder's build and registry push, the release
    made. Wall-clock `released_at` is when the release was made."""
    t = time.monotonic()
    p = subprocess.Popen(stack.cmd("fleet", "push", fleet, str(context), "--stack", stack.project),
                         env=stack.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    marks = {}
    lines = []
    for line in p.stderr:
        lines.append(line)
        if ": building " in line:
            marks["build"] = time.monotonic()
        elif line.startswith("turtle: release "):
            marks["released"] = time.monotonic()
            released_at = time.time()
    if p.wait() != 0 or len(marks) != 2:
        sys.exit("turtle fleet push failed:\n" + "".join(lines))
    return {
        "push": time.monotonic() - t,
        "push_prepare": marks["build"] - t,
        "push_build": marks["released"] - marks["build"],
        "released_at": released_at,
    }


def run(stack: Stack, tmp: Path, n: int, fleet: str) -> dict:
    names = [f"b{os.getpid() % 10000}n{n}c{i}" for i in range(n)]
    created = []
    r: dict = {"n": n}
    try:
        t0 = time.monotonic()
        for i, name in enumerate(names):
            t = time.monotonic()
            sh(stack.cmd("child", "create", name, "--fleet", fleet, "--stack", stack.project,
                         "--profile", "raspberrypi3" if i % 2 == 0 else "intel-nuc"), env=stack.env)
            created.append(name)
            r.setdefault("create", []).append(time.monotonic() - t)
        r["creates"] = time.monotonic() - t0
        # Each size starts from the fleet's newest release and pushes the next one.
        r["first"] = wait_all(stack, names, str(stack.version), t0, 900)
        stack.version += 1
        d = write_release(tmp, stack.version)
        t = time.monotonic()
        r.update(push(stack, fleet, d))
        r["commit"] = wait_all(stack, names, str(stack.version), t, 600)
        # Each child's own account of its update (same clock: one host):
        # from the release made to its download starting (the long-poll's
        # answer), and from there to committed (pull, apply, settle).
        released = r["released_at"]
        for name, dev in devices(stack).items():
            if name in names:
                cur = dev["state"]["current_release"]
                r.setdefault("learn", []).append(cur["started_ms"] / 1000 - released)
                r.setdefault("apply", []).append((cur["finished_ms"] - cur["started_ms"]) / 1000)
        r["memory"] = [Container(f"child-{name}-device-1").memory() for name in names]
    finally:
        for name in created:
            sh(stack.cmd("child", "rm", name), env=stack.env, check=False)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turtle", default=str(release_bin("turtle")))
    ap.add_argument("--children", default="2,5")
    ap.add_argument("--write-md", action="store_true")
    args = ap.parse_args()
    ladder = [int(x) for x in args.children.split(",")]
    if not Path(args.turtle).exists():
        sh(["cargo", "build", "--release", "-p", "turtle"], capture=False)
    sh(["sh", str(Path(__file__).resolve().parent.parent / "images/test-busybox/build.sh")])
    results = []
    with tempfile.TemporaryDirectory(prefix="turtle-children-bench-") as t:
        tmp = Path(t)
        stack = Stack(args.turtle, tmp)
        fleet = f"bench{os.getpid() % 100000}"
        try:
            stack.start_daemon()
            stack.up()
            sh(stack.cmd("fleet", "create", fleet, "--stack", stack.project), env=stack.env)
            stack.version = 1
            sh(stack.cmd("fleet", "push", fleet, str(write_release(tmp, 1)), "--stack", stack.project),
               env=stack.env)
            for n in ladder:
                r = run(stack, tmp, n, fleet)
                results.append(r)
                print(f"{n} children: created in {r['creates']:.1f} s, push {r['push']:.1f} s, "
                      f"all committed {max(r['commit'].values()):.1f} s after the push began",
                      file=sys.stderr)
        finally:
            stack.down(volumes=True)
            stack.stop_daemon()
    print(json.dumps(results, indent=2))
    if args.write_md:
        print(report(results))


def report(results: list[dict]) -> str:
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: `python3 bench/children.py` "
        "(release build; the stack's and the child's images built before).",
        "",
        "| children | creates, one after the other (each) | first release committed on all | "
        "`turtle fleet push` | push start to first child committed | ... to every child committed "
        "| memory per child |",
        "|---|---|---|---|---|---|---|",
    ]
    parts = [
        "",
        "The push's parts, and each child's own account of its update (its report's "
        "`started_ms` and `finished_ms`; one host, one clock), medians over the children:",
        "",
        "| children | push: fleet read, context tarred | push: build and registry push (the builder) "
        "| release made to a child's download starting (long-poll answer) "
        "| download starting to committed (pull, apply, 3 s settle) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        commits = sorted(r["commit"].values())
        lines.append(
            f"| {r['n']} | {r['creates']:.1f} s ({statistics.median(r['create']):.1f} s median) "
            f"| {max(r['first'].values()):.1f} s after the first create | {r['push']:.1f} s "
            f"| {commits[0]:.1f} s | {commits[-1]:.1f} s | {mb(statistics.median(r['memory']))} median |")
        parts.append(
            f"| {r['n']} | {r['push_prepare']:.2f} s | {r['push_build']:.2f} s "
            f"| {statistics.median(r['learn']):.2f} s (max {max(r['learn']):.2f} s) "
            f"| {statistics.median(r['apply']):.1f} s (max {max(r['apply']):.1f} s) |")
    return "\n".join(lines + parts)


if __name__ == "__main__":
    main()
