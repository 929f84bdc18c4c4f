#!/usr/bin/env python3
"""The management backend's numbers: image builds from nothing, `turtle up` to
all healthy, and the idle stack's memory with the 1 GB board's profile.

Python 3.11 standard library only; needs root (reads /proc of container
processes) and the Docker engine. What it measures, in order:

  base      `turtle base --rebuild`: the Debian base bootstrapped with debootstrap
            (pulled instead where debian:bookworm-slim can be pulled)
  build     every image of stack/docker-compose.yml built from the base, by
            Turtle (`turtle up`, four builds at once) and by docker-compose
            (`build --parallel`, same recipes, the turtle executable copied into
            the context by hand since compose cannot add it)
  up        `turtle up --wait` with the images built, no containers and empty
            volumes, to every service healthy; then again with the data kept
            (`down` without -v), the restart case
  idle      after --settle seconds idle: per service the PSS (shared pages split
            between the processes sharing them, so the sum is the real total)
            and the RSS sum of its processes, and the turtle daemon's own

docker-compose cannot run this stack itself (the secrets, the TLS leaves and
the engine's registry trust are Turtle's), so the `up` and `idle` rows have no
compose column.

Usage: python3 bench/stack.py [--turtle PATH] [--runs N] [--settle S] [--skip-base] [--write-md]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "stack" / "docker-compose.yml"
SERVICES = ["proxy", "api", "db", "registry", "builder", "vpn"]
BUILD_RE = re.compile(r"✔ build image .+? \((\d+) ms\)")
OWN_IMAGES = ["turtle/proxy:bookworm-2", "turtle/postgres:bookworm-2", "turtle/registry:bookworm-1"]


def sh(cmd: list[str], env=None, check=True, capture=True) -> tuple[float, str]:
    t = time.monotonic()
    p = subprocess.run(cmd, env=env, text=True, capture_output=capture, stdin=subprocess.DEVNULL)
    dt = time.monotonic() - t
    if check and p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return dt, (p.stdout or "") + (p.stderr or "")


def free_port(kind=socket.SOCK_STREAM) -> int:
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("0.0.0.0", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Stack:
    def __init__(self, turtle: str, tmp: Path):
        self.turtle = turtle
        self.tmp = tmp
        self.project = f"tbstack{os.getpid()}"
        self.state = tmp / "state"
        self.config = tmp / "turtle.yaml"
        self.config.write_text(
            f"domain: {self.project}.bench.local\nmdns: {{enabled: false}}\n"
            "device: {profile: raspberrypi3, tune: false, shed: false}\n"
        )
        self.env = dict(os.environ)
        self.env.update(
            TURTLE_STATE_DIR=str(self.state),
            TURTLE_CONFIG=str(self.config),
            TURTLE_HTTP_PORT=str(free_port()),
            TURTLE_HTTPS_PORT=str(free_port()),
            TURTLE_VPN_PORT=str(free_port(socket.SOCK_DGRAM)),
        )
        self.daemon = None

    def cmd(self, *args: str) -> list[str]:
        return [self.turtle, *args]

    def start_daemon(self) -> None:
        log = open(self.tmp / "daemon.log", "w")
        self.daemon = subprocess.Popen(
            self.cmd("daemon"), env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )
        sock = self.state / "turtle.sock"
        deadline = time.monotonic() + 30
        while not sock.exists():
            if time.monotonic() > deadline:
                sys.exit("the turtle daemon did not start")
            time.sleep(0.05)

    def stop_daemon(self) -> None:
        if self.daemon:
            self.daemon.terminate()
            self.daemon.wait(30)
            self.daemon = None

    def up(self) -> tuple[float, float]:
        """Seconds to all healthy, and the longest build step (the builds run
        at once from the start, so that is their wall time; 0 when none)."""
        dt, out = sh(
            self.cmd("up", "-f", str(COMPOSE), "-p", self.project, "--wait", "--wait-timeout", "1800"),
            env=self.env,
        )
        builds = [int(m.group(1)) for m in BUILD_RE.finditer(out)]
        return dt, max(builds, default=0) / 1000

    def down(self, volumes: bool) -> None:
        args = ["down", "-p", self.project] + (["-v"] if volumes else [])
        sh(self.cmd(*args), env=self.env, check=False)

    def container(self, service: str) -> str:
        return f"{self.project}-{service}-1"


def stack_image() -> str:
    _, out = sh(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "turtle/stack"])
    return [l for l in out.split() if l]


def remove_images(tags: list[str]) -> None:
    for t in tags:
        sh(["docker", "rmi", "-f", t], check=False)


def pss_rss(pids: list[int]) -> tuple[int, int]:
    pss = rss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                k, _, v = line.partition(":")
                if k == "Pss":
                    pss += int(v.split()[0])
                elif k == "Rss":
                    rss += int(v.split()[0])
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return pss * 1024, rss * 1024


def container_pids(name: str) -> list[int]:
    _, out = sh(["docker", "top", name, "-eo", "pid"], check=False)
    return [int(x) for x in out.split()[1:] if x.isdigit()]


def mb(b: float) -> str:
    return f"{b / 1e6:.1f} MB"


def bench_compose_build(turtle: str, tmp: Path) -> float:
    """docker-compose build --parallel of the same recipes, from the base."""
    ctx = tmp / "compose-build"
    shutil.copytree(REPO / "images", ctx / "images")
    shutil.copytree(REPO / "stack", ctx / "stack")
    shutil.copy2(turtle, ctx / "images" / "turtle" / "turtle")
    # docker-compose v1 wants a version and knows no top-level `name:`.
    f = ctx / "stack" / "docker-compose.yml"
    text = "\n".join(l for l in f.read_text().splitlines() if not l.startswith("name:"))
    f.write_text('version: "2.4"\n' + text + "\n")
    env = dict(os.environ, TURTLE_BUILD_ID="compose-bench", COMPOSE_DOCKER_CLI_BUILD="0")
    dt, _ = sh(
        ["docker-compose", "-f", str(ctx / "stack" / "docker-compose.yml"), "-p", "tbcompose",
         "build", "--parallel"],
        env=env,
    )
    remove_images(OWN_IMAGES + ["turtle/stack:compose-bench"])
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turtle", default=str(REPO / "target" / "release" / "turtle"))
    ap.add_argument("--runs", type=int, default=3, help="runs of each up measurement")
    ap.add_argument("--settle", type=float, default=60.0, help="idle seconds before memory is read")
    ap.add_argument("--skip-base", action="store_true", help="keep the base image (no debootstrap)")
    ap.add_argument("--write-md", action="store_true", help="print a Markdown block for BENCHMARKS.md")
    args = ap.parse_args()
    if not Path(args.turtle).exists():
        sh(["cargo", "build", "--release", "-p", "turtle"], capture=False)
    # It removes and rebuilds the stack's images: never under a running stack.
    _, users = sh(["docker", "ps", "-a", "--format", "{{.Names}} {{.Image}}"])
    busy = [l for l in users.splitlines() if " turtle/" in l or l.endswith(" turtle-debian:bookworm")]
    if busy:
        sys.exit("bench/stack.py removes and rebuilds the stack's images; containers use them:\n  "
                 + "\n  ".join(busy) + "\n(run it on a box without a stack, or `turtle down` first)")
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="turtle-stack-bench-") as t:
        tmp = Path(t)
        stack = Stack(args.turtle, tmp)
        try:
            remove_images(OWN_IMAGES + stack_image())
            if not args.skip_base:
                results["base"], out = sh(stack.cmd("base", "--rebuild"), env=stack.env)
                # turtle base's last line says how: "turtle: REF: bootstrapped with ...".
                last = out.strip().splitlines()[-1] if out.strip() else ""
                results["base_how"] = last.split(": ", 2)[-1]
            # Compose first (it leaves no images behind), then Turtle from the same start.
            results["compose_build"] = bench_compose_build(args.turtle, tmp)
            stack.start_daemon()
            # Builds every image, then up to healthy.
            results["first_up"], results["turtle_build"] = stack.up()
            ups, restarts = [], []
            for _ in range(args.runs):
                stack.down(volumes=True)
                ups.append(stack.up()[0])
            for _ in range(args.runs):
                stack.down(volumes=False)
                restarts.append(stack.up()[0])
            results["up_fresh"] = ups
            results["up_kept"] = restarts
            time.sleep(args.settle)
            idle = {}
            for s in SERVICES:
                idle[s] = pss_rss(container_pids(stack.container(s)))
            idle["turtle daemon"] = pss_rss([stack.daemon.pid])
            results["idle"] = idle
        finally:
            stack.down(volumes=True)
            stack.stop_daemon()
            remove_images(OWN_IMAGES + stack_image())
    print(json.dumps(results, indent=2))
    if args.write_md:
        print(report(results, args))


def report(r: dict, args) -> str:
    med = statistics.median
    lines = []
    lines.append(f"Measured {time.strftime('%Y-%m-%d')} on {os.uname().machine}, "
                 f"{os.cpu_count()} cores; `python3 bench/stack.py --runs {args.runs}"
                 f"{' --skip-base' if args.skip_base else ''}` (turtle release build). "
                 "Profile raspberrypi3 (1 GB board).\n")
    lines.append("| Measure | Turtle | docker-compose 1.29.2 | Ratio |")
    lines.append("|---|---|---|---|")
    if "base" in r:
        lines.append(f"| Debian base from nothing ({r.get('base_how', '')}) | {r['base']:.1f} s | cannot | |")
    build = r["turtle_build"]
    lines.append(f"| Build every stack image from the base (four at once) | {build:.1f} s "
                 f"| {r['compose_build']:.1f} s (`build --parallel`) | {build / r['compose_build']:.2f}x |")
    lines.append(f"| First `up`: build everything, then all healthy | {r['first_up']:.1f} s | | |")
    lines.append(f"| `up` to all healthy, images built, empty volumes (median of {args.runs}) | {med(r['up_fresh']):.1f} s | cannot run the stack | |")
    lines.append(f"| `up` to all healthy after `down`, data kept (median of {args.runs}) | {med(r['up_kept']):.1f} s | | |")
    lines.append("")
    lines.append("Idle memory after %d s (PSS: shared pages split, so it sums; RSS: the sum of each process's resident set):\n" % args.settle)
    lines.append("| Service | PSS | RSS (sum) |")
    lines.append("|---|---|---|")
    tp = tr = 0
    for s, (pss, rss) in r["idle"].items():
        lines.append(f"| {s} | {mb(pss)} | {mb(rss)} |")
        if s != "turtle daemon":
            tp += pss
            tr += rss
    lines.append(f"| **stack total** (six services) | **{mb(tp)}** | {mb(tr)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
