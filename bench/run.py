#!/usr/bin/env python3
"""Speed benchmark: `turtle up` against `docker-compose up -d` on the local engine.

Python 3.11 standard library only. Talks to the Docker engine directly over its
unix socket (one cheap API call per poll) to decide when a stack is ready, so
the polling adds almost no load to the machine being measured.

Scenarios (each run starts from nothing; teardown is untimed):
  flat10 / flat50   N independent `sleep 3600` services
  chain10           10 httpd services, each `depends_on: service_healthy` on the
                    previous one, healthcheck interval 1s
  kill9             `kill -9` of a service's process -> running again (engine
                    restart policy `always`, for both tools)
  unhealthy         healthcheck starts failing -> running and healthy again
                    (turtle restarts it; compose/engine never does)
  idle              turtle daemon RSS and CPU while supervising 10 services
  noop50            `up` of an already up-to-date 50-service stack
  probecost         what fast health costs: `turtle up --wait` of 50 services that
                    become ready 2 s after they start (healthcheck interval 30 s),
                    with probing on and off: engine (dockerd + containerd and
                    their shims) and whole-machine CPU during the up, and over
                    an idle window once all are healthy (turtle only)

Usage: python3 bench/run.py [--runs N] [--turtle PATH] [--quick] [--write-md]
See BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGE = "turtle-test-busybox:latest"
DOCKER_SOCK = "/var/run/docker.sock"
POLL = 0.02  # seconds between two readiness polls
READY_TIMEOUT = 180.0

# --------------------------------------------------------------------------
# Docker engine API over the unix socket


class _UnixConn(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30.0):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


def api(method: str, path: str, body=None):
    """One engine API call; `body` (if any) is sent as JSON."""
    conn = _UnixConn(DOCKER_SOCK)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, "/v1.41" + path, body=data, headers=headers)
        r = conn.getresponse()
        out = r.read()
    finally:
        conn.close()
    if r.status >= 400:
        raise RuntimeError(f"engine {method} {path}: {r.status} {out[:200]!r}")
    return json.loads(out) if out else None


def project_containers(project: str) -> list[dict]:
    f = json.dumps({"label": [f"com.docker.compose.project={project}"]})
    return api("GET", "/containers/json?all=1&filters=" + urllib.parse.quote(f))


def project_networks(project: str) -> list[dict]:
    f = json.dumps({"label": [f"com.docker.compose.project={project}"]})
    return api("GET", "/networks?filters=" + urllib.parse.quote(f))


def inspect(cid: str) -> dict:
    return api("GET", f"/containers/{cid}/json")


def is_ready(c: dict) -> bool:
    """Running, and healthy when the container has a healthcheck."""
    status = c.get("Status", "")
    return (
        c.get("State") == "running"
        and "(health: starting)" not in status
        and "(unhealthy)" not in status
    )


def wait_ready(project: str, n: int, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        cs = project_containers(project)
        if len(cs) == n and all(is_ready(c) for c in cs):
            return
        if time.monotonic() > deadline:
            states = sorted((c["Names"][0], c["State"], c["Status"]) for c in cs)
            raise RuntimeError(f"{project}: not ready after {timeout}s: {states}")
        time.sleep(POLL)


# --------------------------------------------------------------------------
# Compose files (accepted by both docker-compose v1.29 and turtle)

HEADER = 'version: "2.4"\nservices:\n'
# Both tools honour stop_grace_period; 0s keeps the untimed teardown quick
# (`sleep`/`httpd` as PID 1 ignore SIGTERM) and does not affect `up`.


def flat_yaml(n: int) -> str:
    out = [HEADER]
    for i in range(n):
        out.append(
            f"  s{i:02d}:\n"
            f"    image: {IMAGE}\n"
            f'    command: ["sleep", "3600"]\n'
            f"    stop_grace_period: 0s\n"
        )
    return "".join(out)


def chain_yaml(n: int) -> str:
    out = [HEADER]
    for i in range(n):
        out.append(
            f"  c{i:02d}:\n"
            f"    image: {IMAGE}\n"
            f'    command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"]\n'
            f"    stop_grace_period: 0s\n"
            f"    healthcheck:\n"
            f'      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]\n'
            f"      interval: 1s\n"
            f"      timeout: 1s\n"
            f"      retries: 3\n"
        )
        if i > 0:
            out.append(
                f"    depends_on:\n"
                f"      c{i - 1:02d}:\n"
                f"        condition: service_healthy\n"
            )
    return "".join(out)


def restart_yaml() -> str:
    return (
        HEADER + f"  victim:\n"
        f"    image: {IMAGE}\n"
        f'    command: ["sleep", "3600"]\n'
        f"    restart: always\n"
        f"    stop_grace_period: 0s\n"
    )


def unhealthy_yaml() -> str:
    return (
        HEADER + f"  sick:\n"
        f"    image: {IMAGE}\n"
        f'    command: ["sh", "-c", "touch /tmp/ok; exec sleep 3600"]\n'
        f"    restart: unless-stopped\n"
        f"    init: true\n"
        f"    healthcheck:\n"
        f'      test: ["CMD", "test", "-f", "/tmp/ok"]\n'
        f"      interval: 1s\n"
        f"      timeout: 1s\n"
        f"      retries: 1\n"
    )


# --------------------------------------------------------------------------
# The two tools


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="turtle-bench-"))
        self.prefix = f"tb{os.getpid()}"
        self.counter = 0
        self.daemon: subprocess.Popen | None = None
        self.state_dir: Path | None = None
        # (tool, project, file) still possibly up, torn down in cleanup()
        self.live: dict[str, tuple[str, Path]] = {}
        self.turtle = args.turtle
        self.step_log: list[tuple[str, list[tuple[str, int]]]] = []
        self.engine_n = 0

    # -- helpers -----------------------------------------------------------

    def write(self, name: str, text: str) -> Path:
        p = self.tmp / f"{name}.yml"
        p.write_text(text)
        return p

    def project(self, tag: str) -> str:
        self.counter += 1
        return f"{self.prefix}{tag}{self.counter}"

    def env(self) -> dict:
        e = dict(os.environ)
        e.pop("COMPOSE_PROJECT_NAME", None)
        if self.state_dir is not None:
            e["TURTLE_STATE_DIR"] = str(self.state_dir)
            # The daemon as deployed (CA, trust injection, mDNS, budgets,
            # shedding), except that it leaves this machine's swap alone.
            config = self.state_dir / "turtle.yaml"
            if not config.exists():
                config.write_text("device: {tune: false}\n")
            e["TURTLE_CONFIG"] = str(config)
        return e

    def run(self, cmd: list[str], check: bool = True) -> tuple[float, str]:
        t0 = time.perf_counter()
        p = subprocess.run(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env(), text=True
        )
        dt = time.perf_counter() - t0
        if check and p.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} exited {p.returncode}\n{p.stdout}\n{p.stderr}"
            )
        return dt, p.stderr

    # -- daemon ------------------------------------------------------------

    def start_daemon(self, config: str | None = None) -> None:
        assert self.daemon is None
        self.state_dir = Path(tempfile.mkdtemp(prefix="state-", dir=self.tmp))
        if config is not None:
            (self.state_dir / "turtle.yaml").write_text(config)
        log = open(self.state_dir / "daemon.log", "w")
        self.daemon = subprocess.Popen(
            [self.turtle, "daemon", "--state-dir", str(self.state_dir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=self.env(),
            start_new_session=True,
        )
        log.close()
        sock = self.state_dir / "turtle.sock"
        deadline = time.monotonic() + 15
        while not sock.exists():
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "turtle daemon did not start: "
                    + (self.state_dir / "daemon.log").read_text()
                )
            time.sleep(0.02)

    def stop_daemon(self) -> None:
        d, self.daemon = self.daemon, None
        if d is None:
            return
        if d.poll() is None:
            os.kill(d.pid, signal.SIGTERM)
            try:
                d.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(d.pid, signal.SIGKILL)
                d.wait()

    # -- up / down ---------------------------------------------------------

    def up(self, tool: str, project: str, file: Path) -> tuple[float, str]:
        self.live[project] = (tool, file)
        if tool == "engine":
            t0 = time.perf_counter()
            engine_up(project, self.engine_n)
            return time.perf_counter() - t0, ""
        if tool == "turtle":
            dt, err = self.run([self.turtle, "up", "-f", str(file), "-p", project])
            self.step_log.append((project, parse_steps(err)))
            return dt, err
        return self.run(["docker-compose", "-f", str(file), "-p", project, "up", "-d"])

    def down(self, project: str) -> None:
        tool, file = self.live.pop(project)
        if tool == "engine":
            pass  # sweep() below removes it
        else:
            cmd = (
                [self.turtle, "down", "-f", str(file), "-p", project]
                if tool == "turtle"
                else ["docker-compose", "-f", str(file), "-p", project, "down", "-t", "0"]
            )
            p = subprocess.run(cmd, capture_output=True, text=True, env=self.env())
            if p.returncode != 0:
                print(f"  warning: {tool} down {project} exited {p.returncode}: "
                      f"{p.stderr.strip()[-300:]}", file=sys.stderr)
        sweep(project)

    def timed_up(self, tool: str, file: Path, n: int, tag: str) -> tuple[float, float]:
        """(command seconds, seconds until every container is ready)."""
        project = self.project(tag)
        t0 = time.perf_counter()
        cmd, _ = self.up(tool, project, file)
        wait_ready(project, n)
        ready = time.perf_counter() - t0
        self.down(project)
        return cmd, ready

    def cleanup(self) -> None:
        for project in list(self.live):
            try:
                self.down(project)
            except Exception as e:  # keep cleaning
                print(f"cleanup of {project}: {e}", file=sys.stderr)
        try:
            self.stop_daemon()
        except Exception as e:
            print(f"stopping the daemon: {e}", file=sys.stderr)
        shutil.rmtree(self.tmp, ignore_errors=True)


def engine_up(project: str, n: int) -> None:
    """The floor: a network and n containers created and started straight
    through the engine API, all at once from threads (no tool, no process start)."""
    from concurrent.futures import ThreadPoolExecutor

    labels = {"com.docker.compose.project": project}
    net = f"{project}_default"
    api("POST", "/networks/create", {"Name": net, "Labels": labels})

    def one(i: int) -> None:
        body = {
            "Image": IMAGE,
            "Cmd": ["sleep", "3600"],
            "Labels": {**labels, "com.docker.compose.service": f"s{i:02d}"},
            "StopTimeout": 0,
            "HostConfig": {"NetworkMode": net},
        }
        cid = api("POST", f"/containers/create?name={project}-s{i:02d}-1", body)["Id"]
        api("POST", f"/containers/{cid}/start")

    with ThreadPoolExecutor(max_workers=n) as pool:
        list(pool.map(one, range(n)))


def sweep(project: str) -> None:
    """Last resort after a `down`: remove what is left of the project."""
    for c in project_containers(project):
        api("DELETE", f"/containers/{c['Id']}?force=1&v=1")
    for n in project_networks(project):
        try:
            api("DELETE", f"/networks/{n['Id']}")
        except RuntimeError as e:
            print(f"  warning: network {n['Name']} left behind: {e}", file=sys.stderr)


STEP_RE = re.compile(r"✔ (.+?) \((\d+) ms\)")


def parse_steps(stderr: str) -> list[tuple[str, int]]:
    return [(m.group(1), int(m.group(2))) for m in STEP_RE.finditer(stderr)]


def med(xs: list[float]) -> float:
    return statistics.median(xs)


# --------------------------------------------------------------------------
# Scenarios


def bench_up(b: Bench, name: str, yaml: str, n: int, runs: int, floor: bool) -> dict:
    """Interleaved turtle / compose (/ raw engine API) runs of one stack, each
    from nothing."""
    file = b.write(name, yaml)
    res = {"turtle": ([], []), "compose": ([], []), "engine": ([], [])}
    b.engine_n = n
    steps: list[list[tuple[str, int]]] = []
    b.start_daemon()
    try:
        for i in range(runs):
            order = ("turtle", "compose") if i % 2 == 0 else ("compose", "turtle")
            if floor:
                order += ("engine",)
            for tool in order:
                cmd, ready = b.timed_up(tool, file, n, name)
                res[tool][0].append(cmd)
                res[tool][1].append(ready)
                if tool == "turtle":
                    steps.append(b.step_log[-1][1])
                print(f"  {name} run {i + 1} {tool:8s} command {cmd:6.2f}s  ready {ready:6.2f}s",
                      flush=True)
    finally:
        b.stop_daemon()
    return {"res": res, "steps": steps}


def bench_kill9(b: Bench, runs: int) -> dict:
    file = b.write("restart", restart_yaml())
    out = {}
    b.start_daemon()
    try:
        for tool in ("turtle", "compose"):
            project = b.project("k9" + tool[0])
            b.up(tool, project, file)
            wait_ready(project, 1)
            times = []
            for i in range(runs):
                cid = project_containers(project)[0]["Id"]
                st = inspect(cid)["State"]
                old_pid = st["Pid"]
                os.kill(old_pid, signal.SIGKILL)
                t0 = time.perf_counter()
                while True:
                    s = inspect(cid)["State"]
                    if s["Running"] and s["Pid"] not in (0, old_pid):
                        break
                    if time.perf_counter() - t0 > 60:
                        raise RuntimeError(f"{project}: not restarted after kill -9")
                    time.sleep(POLL / 2)
                dt = time.perf_counter() - t0
                times.append(dt)
                print(f"  kill9 {tool:8s} run {i + 1}: running again after {dt * 1000:.0f} ms",
                      flush=True)
                # The engine doubles its restart delay (100 ms, 200 ms, ...)
                # when a container dies within 10 s of starting: let it settle.
                time.sleep(10.5)
            out[tool] = times
            b.down(project)
    finally:
        b.stop_daemon()
    return out


def bench_unhealthy(b: Bench, runs: int, compose_watch: float) -> dict:
    file = b.write("unhealthy", unhealthy_yaml())
    out = {"turtle": [], "compose": None}
    b.start_daemon()
    try:
        # Turtle: one fresh project per run (its restart backoff is per container).
        for i in range(runs):
            project = b.project("uh")
            b.up("turtle", project, file)
            wait_ready(project, 1)
            cid = project_containers(project)[0]["Id"]
            started = inspect(cid)["State"]["StartedAt"]
            t0 = time.perf_counter()
            subprocess.run(["docker", "exec", cid, "rm", "/tmp/ok"], check=True)
            while True:
                s = inspect(cid)["State"]
                if (
                    s["Running"]
                    and s["StartedAt"] != started
                    and s.get("Health", {}).get("Status") == "healthy"
                ):
                    break
                if time.perf_counter() - t0 > 60:
                    raise RuntimeError(f"{project}: not healthy again after 60 s")
                time.sleep(POLL)
            dt = time.perf_counter() - t0
            out["turtle"].append(dt)
            print(f"  unhealthy turtle   run {i + 1}: healthy again after {dt:.2f} s", flush=True)
            b.down(project)
        # Compose: the engine never restarts an unhealthy container; check it stays so.
        project = b.project("uhc")
        b.up("compose", project, file)
        wait_ready(project, 1)
        cid = project_containers(project)[0]["Id"]
        started = inspect(cid)["State"]["StartedAt"]
        subprocess.run(["docker", "exec", cid, "rm", "/tmp/ok"], check=True)
        t0 = time.perf_counter()
        recovered = None
        saw_unhealthy = False
        while time.perf_counter() - t0 < compose_watch:
            s = inspect(cid)["State"]
            h = s.get("Health", {}).get("Status")
            saw_unhealthy |= h == "unhealthy"
            if s["StartedAt"] != started or (saw_unhealthy and h == "healthy"):
                recovered = time.perf_counter() - t0
                break
            time.sleep(0.2)
        out["compose"] = {"recovered": recovered, "watched": compose_watch,
                          "saw_unhealthy": saw_unhealthy}
        print(f"  unhealthy compose: {'recovered after %.2f s' % recovered if recovered else 'still unhealthy after %.0f s' % compose_watch}",
              flush=True)
        b.down(project)
    finally:
        b.stop_daemon()
    return out


def bench_idle(b: Bench, settle: float, window: float) -> dict:
    file = b.write("idle", flat_yaml(10))
    b.start_daemon()
    try:
        pid = b.daemon.pid
        project = b.project("idle")
        b.up("turtle", project, file)
        wait_ready(project, 10)
        time.sleep(settle)
        tick = os.sysconf("SC_CLK_TCK")

        def cpu() -> int:
            # utime + stime: fields 14 and 15; split after the ")" of comm.
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return int(f[11]) + int(f[12])

        def rss_kb() -> int:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
            raise RuntimeError("no VmRSS")

        c0, t0 = cpu(), time.monotonic()
        rss = []
        while time.monotonic() - t0 < window:
            rss.append(rss_kb())
            time.sleep(1)
        c1, t1 = cpu(), time.monotonic()
        b.down(project)
        return {
            "rss_mb_median": med(rss) / 1024,
            "rss_mb_max": max(rss) / 1024,
            "cpu_pct": (c1 - c0) / tick / (t1 - t0) * 100,
            "window_s": t1 - t0,
        }
    finally:
        b.stop_daemon()


def probe_yaml(n: int) -> str:
    out = [HEADER]
    for i in range(n):
        out.append(
            f"  p{i:02d}:\n"
            f"    image: {IMAGE}\n"
            f'    command: ["sh", "-c", "sleep 2; touch /tmp/ready; exec sleep 3600"]\n'
            f"    stop_grace_period: 0s\n"
            f"    healthcheck:\n"
            f'      test: ["CMD-SHELL", "test -f /tmp/ready"]\n'
            f"      interval: 30s\n"
            f"      timeout: 5s\n"
            f"      retries: 3\n"
        )
    return "".join(out)


def _pids(name: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                comm = (d / "comm").read_text().strip()
            except OSError:
                continue
            if comm == name or comm.startswith(name):
                out.append(int(d.name))
    return out


def engine_cpu_ticks() -> int:
    """utime + stime (+ reaped children's) of dockerd, containerd and the
    shims: what the engine spends, execs included."""
    total = 0
    for name in ("dockerd", "containerd"):
        for pid in _pids(name):
            try:
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total


def busy_ticks() -> int:
    """Whole-machine busy time (all but idle and iowait), in ticks."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(f) - f[3] - f[4]


def bench_probe_cost(b: Bench, n: int, runs: int, window: float) -> dict:
    file = b.write(f"probe{n}", probe_yaml(n))
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for mode in ("on", "off"):
        b.start_daemon(f"device: {{tune: false}}\nhealth: {{probe: {'true' if mode == 'on' else 'false'}}}\n")
        rows = []
        try:
            for i in range(runs):
                project = b.project(f"probe{mode}")
                b.live[project] = ("turtle", file)
                e0, s0, t0 = engine_cpu_ticks(), busy_ticks(), time.perf_counter()
                b.run([b.turtle, "up", "--wait", "-f", str(file), "-p", project])
                t1, e1, s1 = time.perf_counter(), engine_cpu_ticks(), busy_ticks()
                time.sleep(2)  # let the last execs' shims settle
                e2, s2, t2 = engine_cpu_ticks(), busy_ticks(), time.perf_counter()
                time.sleep(window)
                e3, s3, t3 = engine_cpu_ticks(), busy_ticks(), time.perf_counter()
                b.down(project)
                rows.append({
                    "up_s": t1 - t0,
                    "up_engine_cpu_s": (e1 - e0) / tick,
                    "up_busy_cpu_s": (s1 - s0) / tick,
                    "idle_engine_pct": (e3 - e2) / tick / (t3 - t2) * 100,
                    "idle_busy_pct": (s3 - s2) / tick / (t3 - t2) * 100,
                })
                r = rows[-1]
                print(f"  probecost {mode} run {i + 1}: up {r['up_s']:.2f}s, engine CPU "
                      f"{r['up_engine_cpu_s']:.2f}s, machine busy {r['up_busy_cpu_s']:.2f}s; idle "
                      f"engine {r['idle_engine_pct']:.2f} %, machine {r['idle_busy_pct']:.2f} %",
                      flush=True)
        finally:
            b.stop_daemon()
        out[mode] = rows
    return out


def bench_noop(b: Bench, n: int, runs: int) -> dict:
    file = b.write(f"noop{n}", flat_yaml(n))
    out = {"turtle": [], "compose": []}
    b.start_daemon()
    try:
        projects = {}
        for tool in ("turtle", "compose"):
            projects[tool] = b.project("noop" + tool[0])
            b.up(tool, projects[tool], file)
            wait_ready(projects[tool], n)
        for i in range(runs):
            order = ("turtle", "compose") if i % 2 == 0 else ("compose", "turtle")
            for tool in order:
                cids = {c["Id"] for c in project_containers(projects[tool])}
                dt, _ = b.up(tool, projects[tool], file)
                if {c["Id"] for c in project_containers(projects[tool])} != cids:
                    raise RuntimeError(f"no-op up of {tool} re-created containers")
                out[tool].append(dt)
                print(f"  noop{n} run {i + 1} {tool:8s} {dt * 1000:7.0f} ms", flush=True)
        for p in projects.values():
            b.down(p)
    finally:
        b.stop_daemon()
    return out


# --------------------------------------------------------------------------
# Report


def machine_info() -> dict:
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "?"

    v = api("GET", "/version")
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "docker": f"{v['Version']} (API {v['ApiVersion']})",
        "compose": out(["docker-compose", "version", "--short"]),
        "turtle": out([str(Path(os.environ.get("TURTLE_BIN", "turtle"))), "--version"]),
    }


def step_summary(steps: list[list[tuple[str, int]]]) -> str:
    """Median over runs of the slowest container step and of the network step."""
    if not steps:
        return ""
    net = [max([ms for w, ms in s if w.startswith("create network")] or [0]) for s in steps]
    cont = [max([ms for w, ms in s if "container" in w] or [0]) for s in steps]
    return f"network {med(net):.0f} ms, slowest container step {med(cont):.0f} ms"


def report(results: dict, info: dict, args) -> str:
    rows = []

    def up_rows(key: str, label: str, target: float):
        if key not in results:
            return
        r = results[key]["res"]
        tc, tr = med(r["turtle"][0]), med(r["turtle"][1])
        cc, cr = med(r["compose"][0]), med(r["compose"][1])
        rows.append((f"{label}: command returned", f"{tc:.2f} s", f"{cc:.2f} s",
                     f"{tc / cc:.2f}x", ""))
        ok = "met" if tr / cr <= target else "NOT met"
        rows.append((f"{label}: all running{' & healthy' if 'chain' in key else ''}",
                     f"{tr:.2f} s", f"{cr:.2f} s", f"{tr / cr:.2f}x",
                     f"<= {target}x: {ok}"))
        if r["engine"][1]:
            er = med(r["engine"][1])
            rows.append((f"{label}: raw engine API floor", f"{er:.2f} s", "", "", ""))

    nf = results.get("sizes", {})
    up_rows("flat_small", f"flat {nf.get('flat_small')} services", 0.5)
    up_rows("flat_large", f"flat {nf.get('flat_large')} services", 0.5)
    up_rows("chain", f"chain of {nf.get('chain')} (service_healthy)", 0.35)
    if "kill9" in results:
        k = results["kill9"]
        t, c = med(k["turtle"]) * 1000, med(k["compose"]) * 1000
        rows.append(("kill -9 -> running again (engine restart policy)",
                     f"{t:.0f} ms", f"{c:.0f} ms", f"{t / c:.2f}x", ""))
    if "unhealthy" in results:
        u = results["unhealthy"]
        c = u["compose"]
        cs = (f"{c['recovered']:.1f} s" if c["recovered"] is not None
              else f"never (unhealthy for {c['watched']:.0f} s)")
        rows.append(("unhealthy -> running & healthy", f"{med(u['turtle']):.2f} s", cs, "", ""))
    if "noop" in results:
        o = results["noop"]
        t, c = med(o["turtle"]) * 1000, med(o["compose"]) * 1000
        ok = "met" if t < 100 else "NOT met"
        rows.append((f"no-op up, {nf.get('noop')} services", f"{t:.0f} ms", f"{c:.0f} ms",
                     f"{t / c:.3f}x", f"< 100 ms: {ok}"))
    if "idle" in results:
        i = results["idle"]
        ok = "met" if i["rss_mb_max"] < 20 else "NOT met"
        rows.append((f"daemon idle RSS, {nf.get('idle')} services",
                     f"{i['rss_mb_median']:.1f} MB (max {i['rss_mb_max']:.1f})", "", "",
                     f"< 20 MB: {ok}"))
        rows.append((f"daemon idle CPU over {i['window_s']:.0f} s", f"{i['cpu_pct']:.2f} %",
                     "", "", ""))

    if "probecost" in results:
        pc = results["probecost"]
        n = nf.get("probecost")
        for mode in ("on", "off"):
            rs = pc[mode]
            rows.append((f"probing {mode}: up --wait of {n} services ready after 2 s",
                         f"{med([r['up_s'] for r in rs]):.2f} s", "", "", ""))
            rows.append((f"probing {mode}: engine CPU during that up",
                         f"{med([r['up_engine_cpu_s'] for r in rs]):.2f} s "
                         f"(machine busy {med([r['up_busy_cpu_s'] for r in rs]):.2f} s)", "", "", ""))
            rows.append((f"probing {mode}: engine CPU once all are healthy",
                         f"{med([r['idle_engine_pct'] for r in rs]):.2f} % "
                         f"(machine {med([r['idle_busy_pct'] for r in rs]):.2f} %)", "", "", ""))

    head = ("measure (median)", "turtle", "docker-compose", "ratio", "target")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(5)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths)) + " |")
    table = "\n".join(lines)

    details = []
    for key in ("flat_small", "flat_large", "chain"):
        if key in results:
            s = step_summary(results[key]["steps"])
            r = results[key]["res"]
            details.append(
                f"- {key}: turtle steps (per-step ms from `turtle up`): {s}; "
                f"runs turtle ready {[round(x, 2) for x in r['turtle'][1]]}, "
                f"compose ready {[round(x, 2) for x in r['compose'][1]]}"
                + (f", engine floor {[round(x, 2) for x in r['engine'][1]]}" if r["engine"][1] else "")
            )
    if "kill9" in results:
        details.append(f"- kill9 runs (ms): turtle {[round(x * 1000) for x in results['kill9']['turtle']]}, "
                       f"compose {[round(x * 1000) for x in results['kill9']['compose']]}")
    if "unhealthy" in results:
        details.append(f"- unhealthy runs (s): turtle {[round(x, 2) for x in results['unhealthy']['turtle']]}")
    if "noop" in results:
        details.append(f"- noop runs (ms): turtle {[round(x * 1000) for x in results['noop']['turtle']]}, "
                       f"compose {[round(x * 1000) for x in results['noop']['compose']]}")

    cmdline = "python3 bench/run.py" + (" " + " ".join(args.argv) if args.argv else "")
    mach = (f"{info['date']}; {info['nproc']} cores ({info['cpu']}); kernel {info['kernel']}; "
            f"Docker engine {info['docker']}; docker-compose {info['compose']}; {info['turtle']}; "
            f"{args.runs} runs per figure")
    return (f"Command: `{cmdline}`\n\nMachine: {mach}\n\n{table}\n\nDetails:\n\n"
            + "\n".join(details) + "\n")


BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"


def write_md(text: str) -> None:
    md = REPO / "BENCHMARKS.md"
    body = md.read_text() if md.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in body:
        body += f"\n{BEGIN}\n{END}\n"
    pre, rest = body.split(BEGIN, 1)
    post = rest.split(END, 1)[1]
    md.write_text(f"{pre}{BEGIN}\n{text}{END}{post}")
    print(f"wrote the results into {md}")


# --------------------------------------------------------------------------


def build_turtle() -> str:
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    print(f"building turtle (release) into {target} ...", flush=True)
    subprocess.run(["cargo", "build", "--release", "-p", "turtle"], cwd=REPO, check=True)
    return str(target / "release" / "turtle")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="runs per figure (default 5)")
    ap.add_argument("--turtle", help="turtle binary (default: cargo build --release)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: small stacks, 2 runs, short idle/watch windows")
    ap.add_argument("--only", default="flat,chain,kill9,unhealthy,idle,noop,probecost",
                    help="comma-separated scenarios (default: all)")
    ap.add_argument("--write-md", action="store_true",
                    help="write the results between the markers of BENCHMARKS.md")
    args = ap.parse_args()
    args.argv = sys.argv[1:]
    if args.quick and "--runs" not in " ".join(sys.argv):
        args.runs = 2
    only = set(args.only.split(","))

    if api("GET", "/images/json?filters=" + urllib.parse.quote(
            json.dumps({"reference": [IMAGE]}))) == []:
        print(f"{IMAGE} is missing: run sh images/test-busybox/build.sh", file=sys.stderr)
        return 2
    args.turtle = os.path.abspath(args.turtle) if args.turtle else build_turtle()
    os.environ["TURTLE_BIN"] = args.turtle

    q = args.quick
    sizes = {"flat_small": 3 if q else 10, "flat_large": 10 if q else 50,
             "chain": 3 if q else 10, "noop": 10 if q else 50, "idle": 10,
             "probecost": 10 if q else 50}
    idle_settle, idle_window = (2, 5) if q else (10, 30)
    compose_watch = 5 if q else 20

    # Ctrl-C and SIGTERM both unwind through the finally below.
    def on_term(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    b = Bench(args)
    results: dict = {"sizes": sizes}
    try:
        info = machine_info()
        if "flat" in only:
            print(f"flat stack of {sizes['flat_small']}", flush=True)
            results["flat_small"] = bench_up(b, "flats", flat_yaml(sizes["flat_small"]),
                                             sizes["flat_small"], args.runs, True)
            print(f"flat stack of {sizes['flat_large']}", flush=True)
            results["flat_large"] = bench_up(b, "flatl", flat_yaml(sizes["flat_large"]),
                                             sizes["flat_large"], args.runs, True)
        if "chain" in only:
            print(f"chain of {sizes['chain']} (service_healthy)", flush=True)
            results["chain"] = bench_up(b, "chain", chain_yaml(sizes["chain"]),
                                        sizes["chain"], args.runs, False)
        if "kill9" in only:
            print("kill -9 -> running again", flush=True)
            results["kill9"] = bench_kill9(b, args.runs)
        if "unhealthy" in only:
            print("unhealthy -> running and healthy", flush=True)
            results["unhealthy"] = bench_unhealthy(b, args.runs, compose_watch)
        if "idle" in only:
            print("idle daemon with 10 services", flush=True)
            results["idle"] = bench_idle(b, idle_settle, idle_window)
        if "noop" in only:
            print(f"no-op up on {sizes['noop']} services", flush=True)
            results["noop"] = bench_noop(b, sizes["noop"], args.runs)
        if "probecost" in only:
            print(f"what probing costs, {sizes['probecost']} services", flush=True)
            results["probecost"] = bench_probe_cost(
                b, sizes["probecost"], max(1, min(args.runs, 3)), idle_window)
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        b.cleanup()

    text = report(results, info, args)
    print()
    print(text)
    if args.write_md:
        write_md(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
