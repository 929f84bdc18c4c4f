#!/usr/bin/env python3
"""Fleet scale on one parent: how many devices the backend stack takes on the
1 GB board's profile (raspberrypi3 budgets) with p99 under 100 ms.

The backend stack is brought up by `turtle up` (release build) with the
raspberrypi3 profile, a fleet is made, and the largest N of the ladder is
seeded as device rows (`turtle-fleet-sim seed-sql`: registration is rate-limited
per key by design). Then for each N of the ladder, `turtle-fleet-sim run`
holds the agent's conversation for N devices (ETag polls of the target every
--interval, a state report every ten polls, a batch of log lines after every
poll) through the proxy (TLS) over --connections connections, open-loop. For
each step: calls per second, p50/p99 of every call, failures, and the CPU and
memory of the api, db and proxy containers (their cgroups) and of the
simulator. The ladder stops at the first step whose p99 passes 100 ms or whose
calls fail (more than 0.1 %).

Python 3.11 standard library only; needs root (reads cgroups and /proc of
container processes) and the Docker engine, with the stack's images built or
buildable (`turtle up` builds them).

Usage: python3 bench/fleet_scale.py [--ladder 1000,10000,...] [--interval 60]
       [--duration 120] [--connections 100] [--quick] [--write-md]
  --quick: ladder 200,1000, interval 10 s, 20 s measured: a 3-minute smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import REPO, Stack, container_pids, mb, pss_rss, sh  # noqa: E402

P99_LIMIT_MS = 100.0
FAIL_LIMIT = 0.001
PREFIX = "sim-"
WATCHED = ["api", "db", "proxy"]


def release_bin(name: str) -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "release" / name


def cgroup_dir(pid: int, controller: str) -> Path | None:
    """The cgroup directory of a process for a v1 controller, or the unified one."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if controller in ctrls.split(","):
            return Path("/sys/fs/cgroup") / ctrls / path.lstrip("/")
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return Path("/sys/fs/cgroup") / line[3:].lstrip("/")
    return None


class Container:
    """CPU seconds and memory of a container, from its cgroup."""

    def __init__(self, name: str):
        self.name = name
        _, out = sh(["docker", "inspect", "-f", "{{.State.Pid}}", name])
        pid = int(out.strip())
        self.cpu = cgroup_dir(pid, "cpuacct")
        self.mem = cgroup_dir(pid, "memory")

    def cpu_seconds(self) -> float:
        v1 = self.cpu / "cpuacct.usage"
        if v1.exists():
            return int(v1.read_text()) / 1e9
        for line in (self.cpu / "cpu.stat").read_text().splitlines():
            k, v = line.split()
            if k == "usage_usec":
                return int(v) / 1e6
        return 0.0

    def memory(self) -> int:
        for f in ("memory.usage_in_bytes", "memory.current"):
            if (self.mem / f).exists():
                return int((self.mem / f).read_text())
        return 0

    def limit(self) -> int:
        for f in ("memory.limit_in_bytes", "memory.max"):
            if (self.mem / f).exists():
                t = (self.mem / f).read_text().strip()
                return 0 if t == "max" else int(t)
        return 0


def psql(stack: Stack, sql: str) -> str:
    cmd = ["docker", "exec", "-i", stack.container("db"), "sh", "-c",
           'PGPASSWORD="$(cat /run/turtle/secrets/db-password)" '
           "psql -h 127.0.0.1 -U turtle -d turtle -v ON_ERROR_STOP=1 -qAt"]
    p = subprocess.run(cmd, input=sql, text=True, capture_output=True)
    if p.returncode != 0:
        sys.exit(f"psql failed: {p.stderr}")
    return p.stdout.strip()


def step(args, sim: Path, stack: Stack, api: str, ca: Path, n: int) -> dict:
    watched = {s: Container(stack.container(s)) for s in WATCHED}
    cmd = [str(sim), "run", "--api", api, "--ca", str(ca), "--devices", str(n),
           "--key-prefix", PREFIX, "--interval", str(args.interval),
           "--warmup", str(args.interval), "--duration", str(args.duration),
           "--connections", str(args.connections), "--json"]
    started = time.monotonic()
    out = open(Path(args.tmp) / f"sim-{n}.json", "w+")
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, text=True)
    # The window the simulator measures: after one interval of warm-up.
    time.sleep(max(0.0, started + args.interval - time.monotonic()))
    cpu0 = {s: c.cpu_seconds() for s, c in watched.items()}
    t0 = time.monotonic()
    time.sleep(max(0.0, t0 + args.duration - time.monotonic()))
    cpu1 = {s: c.cpu_seconds() for s, c in watched.items()}
    window = time.monotonic() - t0
    mem = {s: c.memory() for s, c in watched.items()}
    pss = {s: pss_rss(container_pids(stack.container(s)))[0] for s in WATCHED}
    _, status, rusage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read()
    if p.returncode != 0:
        sys.exit(f"turtle-fleet-sim failed ({p.returncode}): {err}")
    out.seek(0)
    summary = json.loads(out.read())
    total = time.monotonic() - started
    return {
        "n": n,
        "sim": summary,
        "cpu": {s: (cpu1[s] - cpu0[s]) / window for s in WATCHED},
        "memory": mem,
        "pss": pss,
        "limit": {s: c.limit() for s, c in watched.items()},
        "sim_cpu": (rusage.ru_utime + rusage.ru_stime) / total,
        "sim_rss": rusage.ru_maxrss * 1024,
    }


def passes(r: dict) -> bool:
    s = r["sim"]
    return s["p99_ms"] < P99_LIMIT_MS and s["errors"] <= FAIL_LIMIT * max(1, s["requests"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turtle", default=str(release_bin("turtle")))
    ap.add_argument("--sim", default=str(release_bin("turtle-fleet-sim")))
    ap.add_argument("--ladder", default="1000,5000,10000,20000,50000,100000")
    ap.add_argument("--interval", type=float, default=60.0)
    ap.add_argument("--duration", type=float, default=120.0)
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--write-md", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.ladder, args.interval, args.duration = "200,1000", 10.0, 20.0
    ladder = [int(x) for x in args.ladder.split(",")]
    if not Path(args.turtle).exists() or not Path(args.sim).exists():
        sh(["cargo", "build", "--release", "-p", "turtle", "-p", "turtle-fleet-sim"], capture=False)
    results = []
    with tempfile.TemporaryDirectory(prefix="turtle-fleet-scale-") as t:
        tmp = Path(t)
        args.tmp = t
        stack = Stack(args.turtle, tmp)
        try:
            stack.start_daemon()
            up, _ = stack.up()
            print(f"stack up in {up:.0f} s", file=sys.stderr)
            ca = tmp / "root.pem"
            _, pem = sh(stack.cmd("ca", "export"), env=stack.env)
            ca.write_text(pem)
            api = f"https://api.{stack.project}.bench.local:{stack.env['TURTLE_HTTPS_PORT']}"
            sh(stack.cmd("fleet", "create", "sim", "--stack", stack.project), env=stack.env)
            fleet = int(psql(stack, "SELECT id FROM fleets WHERE name = 'sim'"))
            t0 = time.monotonic()
            _, sql = sh([args.sim, "seed-sql", "--fleet-id", str(fleet), "--devices", str(max(ladder)),
                         "--key-prefix", PREFIX])
            psql(stack, sql)
            print(f"seeded {max(ladder)} devices in {time.monotonic() - t0:.1f} s", file=sys.stderr)
            for n in ladder:
                r = step(args, Path(args.sim), stack, api, ca, n)
                results.append(r)
                s = r["sim"]
                print(f"N={n}: {s['requests_per_sec']:.0f} calls/s, p50 {s['p50_ms']:.1f} ms, "
                      f"p99 {s['p99_ms']:.1f} ms, failed {s['errors']}; cpu api {r['cpu']['api']:.2f} "
                      f"db {r['cpu']['db']:.2f} proxy {r['cpu']['proxy']:.2f} sim {r['sim_cpu']:.2f}",
                      file=sys.stderr)
                if not passes(r):
                    break
            results_db = psql(stack, "SELECT pg_size_pretty(pg_database_size('turtle'))")
        finally:
            stack.down(volumes=True)
            stack.stop_daemon()
    print(json.dumps(results, indent=2))
    if args.write_md:
        print(report(results, args, results_db))


def report(results: list[dict], args, db_size: str) -> str:
    ok = [r["n"] for r in results if passes(r)]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: `python3 bench/fleet_scale.py"
        f"{' --quick' if args.quick else ''}` (poll interval {args.interval:.0f} s, {args.duration:.0f} s "
        f"measured after one interval of warm-up, {args.connections} connections through the proxy).",
        "",
        "| devices | calls/s | p50 | p99 | max | failed | api CPU | db CPU | proxy CPU | simulator CPU "
        "| api memory | db memory |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r["sim"]
        lines.append(
            f"| {r['n']} | {s['requests_per_sec']:.0f} | {s['p50_ms']:.1f} ms | {s['p99_ms']:.1f} ms "
            f"| {s['max_ms']:.0f} ms | {s['errors']} | {r['cpu']['api']:.2f} | {r['cpu']['db']:.2f} "
            f"| {r['cpu']['proxy']:.2f} | {r['sim_cpu']:.2f} | {mb(r['memory']['api'])} "
            f"(PSS {mb(r['pss']['api'])}) | {mb(r['memory']['db'])} (PSS {mb(r['pss']['db'])}) |")
    lines.append("")
    lines.append(f"Largest N with p99 under {P99_LIMIT_MS:.0f} ms: {max(ok) if ok else 'none'}; "
                 f"database after the run: {db_size}. CPU is cores (1.00 = one core busy) over the "
                 "measured window; memory is the cgroup's (page cache included) and the processes' PSS.")
    for r in results:
        kinds = ", ".join(f"{k} p99 {v['p99_ms']:.1f} ms ({v['count']} calls)" for k, v in r["sim"]["kinds"].items())
        lines.append(f"- N={r['n']}: {kinds}; limits api {mb(r['limit']['api'])}, db {mb(r['limit']['db'])}")
        for m in r["sim"]["error_messages"]:
            lines.append(f"  - failure: {m}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
