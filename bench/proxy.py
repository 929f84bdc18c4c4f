#!/usr/bin/env python3
"""The stack's proxy under starvation attacks: latency of `GET /v1/health`
through the proxy with no attack, while idle connections are held, and while
request bodies trickle in.

Python 3.11 standard library only. Runs against a stack that is up (it starts
nothing), over 127.0.0.1 only. Phases, each bounded in requests and time:

  none    --requests health requests, one after another, each on a new TLS
          connection (what a device polling its target state does)
  idle    the same while --idle TCP connections to the HTTPS port that never
          start TLS are held open; each one the proxy closes is opened again
  slow    the same while --slow requests to the api (POST /v1/devices/register,
          a body of 1000 bytes announced) send their body a byte every
          --trickle seconds; each one the proxy cuts is started again

A health request that takes more than --timeout seconds, is refused or
answers anything but 200 is a failure; p50/p99 count failures as slower than
any success (so a p99 of "fail" means more than 1% failed). For the attack
phases it also prints how long the proxy kept an attacking connection (median
over those it closed) and, with --container, the proxy's memory.

Every client here comes from one address as the proxy sees it (the Docker
bridge's gateway, through the engine's port forwarding), so the proxy's
per-source limit (TURTLE_PROXY_MAXCONN_PER_SOURCE) refuses the health
requests too while the attacker holds its share. Run the stack with that limit
above the attack to measure an attacker at another address.

Usage:
  python3 bench/proxy.py --port HTTPS_PORT --domain DOMAIN --cacert ROOT_PEM
      [--requests 100] [--idle 300] [--slow 300] [--trickle 20] [--timeout 5]
      [--window 60] [--container PROXY_CONTAINER] [--phases none,idle,slow]

ROOT_PEM is Turtle's root (`turtle ca export`); DOMAIN the stack's domain
(the proxy is reached as api.DOMAIN on 127.0.0.1:HTTPS_PORT).
"""

from __future__ import annotations

import argparse
import http.client
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time


def health(port: int, host: str, ctx: ssl.SSLContext, timeout: float) -> float | None:
    """Seconds for one health request on a new connection; None when it failed."""
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        # TLS verified as the api's name (and sent as SNI), to 127.0.0.1.
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        conn.sock = ctx.wrap_socket(raw, server_hostname=host)
        conn.request("GET", "/v1/health", headers={"Host": host})
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            return None
        return time.monotonic() - start
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


class Attack:
    """`count` attacking connections kept open by one thread each."""

    def __init__(self, count: int, run) -> None:
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.open = 0
        self.lifetimes: list[float] = []
        self.threads = [threading.Thread(target=self._loop, args=(run,), daemon=True) for _ in range(count)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _loop(self, run) -> None:
        while not self.stop.is_set():
            try:
                opened, closed = run(self)
            except OSError:
                opened = closed = None
            if opened is not None and closed is not None:
                with self.lock:
                    self.lifetimes.append(closed - opened)
            # A refused connection is opened again, but not in a tight loop.
            self.stop.wait(0.05)

    def held(self, delta: int) -> None:
        with self.lock:
            self.open += delta

    def end(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)


def hold_idle(port: int):
    """An attacking connection that never starts TLS: (opened, closed)."""

    def run(attack: Attack):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        opened = time.monotonic()
        attack.held(1)
        try:
            sock.settimeout(0.5)
            while not attack.stop.is_set():
                try:
                    if not sock.recv(64):
                        return opened, time.monotonic()
                except socket.timeout:
                    continue
                except OSError:
                    return opened, time.monotonic()
            return opened, None
        finally:
            attack.held(-1)
            sock.close()

    return run


def hold_slow_body(port: int, host: str, ctx: ssl.SSLContext, trickle: float):
    """An attacking request whose body comes a byte every `trickle` seconds."""

    def run(attack: Attack):
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock = ctx.wrap_socket(raw, server_hostname=host)
        sock.sendall(
            f"POST /v1/devices/register HTTP/1.1\r\nHost: {host}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n".encode()
        )
        opened = time.monotonic()
        attack.held(1)
        try:
            sock.settimeout(0.5)
            next_byte = opened
            while not attack.stop.is_set():
                now = time.monotonic()
                if now >= next_byte:
                    sock.sendall(b" ")
                    next_byte = now + trickle
                try:
                    # An answer (408) or the end: cut off.
                    sock.recv(256)
                    return opened, time.monotonic()
                except socket.timeout:
                    continue
            return opened, None
        except OSError:
            return opened, time.monotonic()
        finally:
            attack.held(-1)
            sock.close()

    return run


def memory(container: str | None) -> str:
    if not container:
        return "-"
    p = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", container],
        capture_output=True, text=True,
    )
    return p.stdout.strip().split(" / ")[0] or "-"


def ms(seconds: float | None) -> str:
    return "fail" if seconds is None else f"{seconds * 1000:.1f} ms"


def measure(args, ctx: ssl.SSLContext, host: str) -> dict:
    """Health latencies for --requests requests or --window seconds."""
    lat: list[float | None] = []
    deadline = time.monotonic() + args.window
    while len(lat) < args.requests and time.monotonic() < deadline:
        lat.append(health(args.port, host, ctx, args.timeout))
        time.sleep(0.05)
    ok = sorted(x for x in lat if x is not None)
    # Failures rank after every success.
    ranked = ok + [None] * (len(lat) - len(ok))

    def pct(p: float) -> float | None:
        return ranked[min(len(ranked) - 1, int(p * len(ranked)))] if ranked else None

    return {"n": len(lat), "failed": len(lat) - len(ok), "p50": pct(0.50), "p99": pct(0.99)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True, help="the stack's HTTPS port on 127.0.0.1")
    ap.add_argument("--domain", required=True)
    ap.add_argument("--cacert", required=True, help="Turtle's root (turtle ca export)")
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--idle", type=int, default=300)
    ap.add_argument("--slow", type=int, default=300)
    ap.add_argument("--trickle", type=float, default=20.0, help="seconds between two body bytes")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds a health request may take")
    ap.add_argument("--window", type=float, default=60.0, help="longest time per phase, seconds")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds between starting an attack and measuring")
    ap.add_argument("--container", help="the proxy's container, for its memory")
    ap.add_argument("--phases", default="none,idle,slow")
    args = ap.parse_args()
    ctx = ssl.create_default_context(cafile=args.cacert)
    host = f"api.{args.domain}"
    if health(args.port, host, ctx, args.timeout) is None:
        sys.exit(f"GET https://{host}:{args.port}/v1/health on 127.0.0.1 does not answer 200: is the stack up?")

    rows = []
    for phase in args.phases.split(","):
        attack = None
        if phase == "idle":
            attack = Attack(args.idle, hold_idle(args.port))
        elif phase == "slow":
            attack = Attack(args.slow, hold_slow_body(args.port, host, ctx, args.trickle))
        elif phase != "none":
            sys.exit(f"unknown phase {phase!r} (none, idle, slow)")
        if attack:
            attack.start()
            time.sleep(args.settle)
        held = attack.open if attack else 0
        mem = memory(args.container)
        r = measure(args, ctx, host)
        if attack:
            attack.end()
            life = statistics.median(attack.lifetimes) if attack.lifetimes else None
            closed = len(attack.lifetimes)
        else:
            life, closed = None, 0
        rows.append((phase, r, held, closed, life, mem))
        print(f"{phase}: {r['n']} requests, {r['failed']} failed, p50 {ms(r['p50'])}, p99 {ms(r['p99'])}"
              + (f"; attack held {held} at start, proxy closed {closed}"
                 + (f" (median after {life:.1f} s)" if life is not None else "") if attack else "")
              + f"; proxy memory {mem}", flush=True)
        # Let the proxy drop what the attack left before the next phase.
        time.sleep(args.settle)

    print()
    print("| attack | health p50 | health p99 | failed | attacking connections closed by the proxy (median lifetime) | proxy memory |")
    print("|---|---|---|---|---|---|")
    for phase, r, held, closed, life, mem in rows:
        what = {"none": "none", "idle": f"{args.idle} idle TCP connections",
                "slow": f"{args.slow} bodies at 1 byte / {args.trickle:g} s"}[phase]
        kept = "-" if phase == "none" else f"{closed}" + (f" ({life:.1f} s)" if life is not None else "")
        print(f"| {what} | {ms(r['p50'])} | {ms(r['p99'])} | {r['failed']}/{r['n']} | {kept} | {mem} |")


if __name__ == "__main__":
    main()
