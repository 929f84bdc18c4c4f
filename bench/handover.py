#!/usr/bin/env python3
"""Requests failed during an update: Turtle's hand-over against
`docker compose up -d` (`docker-compose` v1 where there is no v2), the same
change, the same client.

Runs the engine test that measures it (supervisor/runtime/tests/handover.rs,
`a_hand_over_under_load_fails_no_request_and_compose_is_measured_beside_it`)
--runs times and adds up what it prints. Each run: one web service (busybox
httpd that serves at once and is ready 2 s later, healthcheck every 1 s,
`init: true`) published on 127.0.0.1; two clients, each one request at a
time on a new connection (loopback only): `GET /` at most 20 a second, and
`GET /cgi-bin/v`, which takes 200 ms; from 5 answers each before the update
until the new version has answered each 5 times after it; the update swaps
the image v1 -> v2. Turtle hands over (`handover::replace`: the new container
beside the old one, the port held by the service's forwarder); compose
recreates (stop, remove, create, start). A request fails when it is refused,
reset, not answered 200 or not answered within 10 s.

Python 3.11 standard library only; needs cargo, the Docker socket and
docker compose or docker-compose. Usage: python3 bench/handover.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEST = "a_hand_over_under_load_fails_no_request_and_compose_is_measured_beside_it"
LINE = re.compile(r"^(hand-over \(turtle\)|docker-compose up -d|docker compose up -d): (\d+) requests, (\d+) failed")


def run_once(env: dict[str, str]) -> dict[str, tuple[int, int]]:
    p = subprocess.run(
        ["cargo", "test", "-q", "-p", "turtle-runtime", "--test", "handover", "--",
         "--exact", TEST, "--nocapture"],
        cwd=REPO, env=env, capture_output=True, text=True,
    )
    out: dict[str, tuple[int, int]] = {}
    for line in (p.stdout + p.stderr).splitlines():
        m = LINE.match(line.strip())
        if m:
            who = "turtle" if m.group(1).startswith("hand-over") else "compose"
            out[who] = (int(m.group(2)), int(m.group(3)))
    if p.returncode != 0 or len(out) != 2:
        sys.stderr.write(p.stdout[-3000:] + p.stderr[-3000:])
        raise SystemExit(f"the test failed (exit {p.returncode})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    env = dict(os.environ)
    subprocess.run(["cargo", "test", "-q", "-p", "turtle-runtime", "--test", "handover", "--no-run"],
                   cwd=REPO, env=env, check=True)
    totals = {"turtle": [0, 0], "compose": [0, 0]}
    print(f"{'run':>3}  {'turtle failed/requests':>24}  {'compose failed/requests':>24}")
    for i in range(1, a.runs + 1):
        r = run_once(env)
        for k, (req, failed) in r.items():
            totals[k][0] += req
            totals[k][1] += failed
        t, c = r["turtle"], r["compose"]
        print(f"{i:>3}  {t[1]:>12}/{t[0]:<11}  {c[1]:>12}/{c[0]:<11}", flush=True)
    t, c = totals["turtle"], totals["compose"]
    print(f"all  {t[1]:>12}/{t[0]:<11}  {c[1]:>12}/{c[0]:<11}")
    print(f"failed per update: turtle {t[1] / a.runs:.1f}, compose {c[1] / a.runs:.1f}")


if __name__ == "__main__":
    main()
