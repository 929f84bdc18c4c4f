#!/usr/bin/env python3
"""Signed offline bundles of the management backend: `turtle bundle create`,
`verify` and `apply` times and sizes, full and delta (one service changed).

Python 3.11 standard library only; needs root (it starts a private dockerd)
and the Docker engine. What it does, in order:

  images    the stack's images built on the machine's engine by `turtle up
            --wait` of stack/docker-compose.yml (the Debian base first, by
            `turtle base`, when the engine lacks it), then `down -v`: only the
            images are needed
  full      `turtle bundle create --key` of the stack (its six services' four
            images and the Debian base they build FROM), then `bundle verify`
  change    one service changed: the db's image rebuilt with one more layer
            (a file under /tmp), under a tag of its own, in a copy of the stack
  delta     `bundle create --since full.tbundle` of the changed copy, then
            `bundle verify`
  apply     onto an empty box: a private dockerd (its own data root, socket
            and containerd, no networking) started by this script and ended by
            PID; `bundle apply --load-only` of the full bundle (verify, then
            load every image), then of the delta on top (verify, the check of
            its required layers, the load); the delta alone onto the emptied
            engine, refused before anything is loaded. The engine is emptied
            between runs. --load-only: the push after the load (the health
            gate, a 30 s settle) is measured by the release benchmarks.

Each time is the median of --runs runs. The machine's engine keeps every image
it had; the bench removes what it built (unless --keep-images).

Usage: python3 bench/bundle.py [--turtle PATH] [--runs N] [--keep-images] [--write-md]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import COMPOSE, OWN_IMAGES, REPO, Stack, remove_images, sh, stack_image  # noqa: E402

BASE_IMAGE = "turtle-debian:bookworm"


def mb(b: float) -> str:
    return f"{b / 1e6:.1f} MB"


def timed(cmd: list[str], env: dict, check: bool = True) -> tuple[float, str, int]:
    t = time.monotonic()
    p = subprocess.run(cmd, env=env, text=True, capture_output=True, stdin=subprocess.DEVNULL)
    dt = time.monotonic() - t
    if check and p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return dt, p.stdout + p.stderr, p.returncode


def manifest(out: str) -> dict:
    """The JSON `bundle manifest` prints (stdout, before its report on stderr)."""
    return json.JSONDecoder().raw_decode(out[out.index("{"):])[0]


def images_present() -> set[str]:
    _, out = sh(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"])
    return {l for l in out.split() if l}


class PrivateEngine:
    """A second dockerd: an empty box to load bundles into. Its data root,
    exec root, socket and containerd are its own, and it runs in a network
    namespace of its own: dockerd started with `bridge: none` deletes any
    interface named docker0 it can see, which in the machine's namespace is
    the machine engine's default bridge (builds and `docker run` then fail).
    In its namespace it sees none, and touches no iptables."""

    def __init__(self, tmp: Path):
        self.dir = tmp / "box"
        self.dir.mkdir()
        self.sock = self.dir / "docker.sock"
        self.config = self.dir / "daemon.json"
        self.config.write_text(json.dumps({
            "storage-driver": "fuse-overlayfs",
            "bridge": "none",
            "iptables": False,
            "ip-masq": False,
        }))
        self.proc = None

    @property
    def host(self) -> str:
        return f"unix://{self.sock}"

    def start(self) -> None:
        log = open(self.dir / "dockerd.log", "w")
        # unshare, not `ip netns exec`: that one remounts /sys, and dockerd
        # then finds no cgroups.
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--", "dockerd", "--config-file", str(self.config), "--data-root", str(self.dir / "data"),
             "--exec-root", str(self.dir / "exec"), "--pidfile", str(self.dir / "dockerd.pid"),
             "-H", self.host],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while subprocess.run(["docker", "-H", self.host, "version"], capture_output=True).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                sys.exit(f"the private dockerd did not start: see {self.dir / 'dockerd.log'}")
            time.sleep(0.2)

    def images(self) -> list[str]:
        _, out = sh(["docker", "-H", self.host, "images", "-aq"])
        return sorted(set(out.split()))

    def empty(self) -> None:
        ids = self.images()
        if ids:
            sh(["docker", "-H", self.host, "rmi", "-f", *ids])
        left = self.images()
        if left:
            sys.exit(f"the private engine still has images: {left}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            # unshare execs dockerd: this PID is dockerd's.
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turtle", default=str(REPO / "target" / "release" / "turtle"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep-images", action="store_true", help="leave the images this run built")
    ap.add_argument("--write-md", action="store_true", help="print a Markdown block for BENCHMARKS.md")
    args = ap.parse_args()
    if not Path(args.turtle).exists():
        sh(["cargo", "build", "--release", "-p", "turtle"], capture=False)
    if shutil.which("dockerd") is None:
        sys.exit("bench/bundle.py needs dockerd (it starts a private one as the empty box)")
    r: dict = {"runs": args.runs}
    before = images_present()
    with tempfile.TemporaryDirectory(prefix="turtle-bundle-bench-", dir="/var/tmp") as t:
        tmp = Path(t)
        stack = Stack(args.turtle, tmp)
        stack.project = f"tbbundle{os.getpid()}"
        box = PrivateEngine(tmp)
        changed_tag = f"turtle/postgres:bench-{os.getpid()}"
        try:
            # The stack's images (and the base), built once.
            if BASE_IMAGE not in before:
                r["base"], out, _ = timed(stack.cmd("base"), stack.env)
            stack.start_daemon()
            stack.up()
            stack.down(volumes=True)
            stack.stop_daemon()
            key = tmp / "bench-key"
            _, out, _ = timed(stack.cmd("bundle", "keygen", str(key)), stack.env)
            public = tmp / "bench-key.pub"
            full = tmp / "full.tbundle"
            create = stack.cmd("bundle", "create", "-f", str(COMPOSE), "-p", stack.project,
                               "--key", str(key), "-o", str(full))
            r["full_create"] = [timed(create, stack.env)[0] for _ in range(args.runs)]
            r["full_size"] = full.stat().st_size
            verify = stack.cmd("bundle", "verify", "--key", str(public), str(full))
            r["full_verify"] = [timed(verify, stack.env)[0] for _ in range(args.runs)]
            _, out, _ = timed(stack.cmd("bundle", "manifest", "--key", str(public), str(full)), stack.env)
            m = manifest(out)
            r["full_images"] = len(m["images"])
            r["bases"] = m.get("bases", [])

            # One service changed: the db's image, one more layer, its own tag.
            copy = tmp / "src"
            shutil.copytree(REPO / "images", copy / "images")
            shutil.copytree(REPO / "stack", copy / "stack", ignore=shutil.ignore_patterns("target"))
            dockerfile = copy / "images" / "postgres" / "Dockerfile"
            dockerfile.write_text(dockerfile.read_text()
                                  + "\nRUN echo 'bench: one service changed' > /tmp/turtle-bench-change\n")
            compose = copy / "stack" / "docker-compose.yml"
            compose.write_text(compose.read_text().replace("image: turtle/postgres:bookworm-2",
                                                           f"image: {changed_tag}"))
            sh(["docker", "build", "-q", "--force-rm", "-t", changed_tag, str(copy / "images" / "postgres")],
               env=dict(os.environ, DOCKER_BUILDKIT="0"))
            delta = tmp / "delta.tbundle"
            create = stack.cmd("bundle", "create", "-f", str(compose), "-p", stack.project,
                               "--key", str(key), "--since", str(full), "-o", str(delta))
            r["delta_create"] = [timed(create, stack.env)[0] for _ in range(args.runs)]
            r["delta_size"] = delta.stat().st_size
            verify = stack.cmd("bundle", "verify", "--key", str(public), str(delta))
            r["delta_verify"] = [timed(verify, stack.env)[0] for _ in range(args.runs)]
            _, out, _ = timed(stack.cmd("bundle", "manifest", "--key", str(public), str(delta)), stack.env)
            m = manifest(out)
            r["delta_requires"] = len(m["delta"]["requires"])
            r["delta_omitted"] = len(m["delta"]["omitted"])

            # Apply onto an empty box.
            box.start()
            on_box = stack.cmd("--docker-socket", box.host, "bundle", "apply", "--key", str(public), "--load-only")
            r["full_apply"], r["delta_apply"], r["delta_refused"] = [], [], []
            for _ in range(args.runs):
                box.empty()
                dt, out, code = timed(on_box + [str(delta)], stack.env, check=False)
                if code == 0 or "before anything was loaded" not in out or box.images():
                    sys.exit(f"the delta was not refused on an empty engine:\n{out}")
                r["delta_refused"].append(dt)
                r["full_apply"].append(timed(on_box + [str(full)], stack.env)[0])
                r["delta_apply"].append(timed(on_box + [str(delta)], stack.env)[0])
            _, out = sh(["docker", "-H", box.host, "images", "--format", "{{.Repository}}:{{.Tag}}"])
            r["box_images"] = sorted(out.split())
        finally:
            box.stop()
            stack.down(volumes=True)
            stack.stop_daemon()
            if not args.keep_images:
                built = (set(OWN_IMAGES) | set(stack_image()) | {BASE_IMAGE, changed_tag}) - before
                remove_images(sorted(built))
    print(json.dumps(r, indent=2))
    if args.write_md:
        print(report(r))


def report(r: dict) -> str:
    med = statistics.median
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.uname().machine}, "
        f"{os.cpu_count()} cores, Docker {engine_version()}; `python3 bench/bundle.py --runs {r['runs']}` "
        "(turtle release build; medians). The box is a private dockerd with no images; "
        "apply is `bundle apply --load-only` (verify, then load).\n",
        "| Bundle | Size | Create | Verify | Apply onto the box |",
        "|---|---|---|---|---|",
        f"| Full: the stack's {r['full_images']} images with the base ({', '.join(r['bases']) or 'none'}) "
        f"| {mb(r['full_size'])} | {med(r['full_create']):.1f} s | {med(r['full_verify']):.1f} s "
        f"| {med(r['full_apply']):.1f} s (empty engine) |",
        f"| Delta, the db changed (one layer): {r['delta_omitted']} layer files left out, "
        f"{r['delta_requires']} layers required | {r['delta_size'] / 1e3:.1f} kB "
        f"| {med(r['delta_create']):.1f} s | {med(r['delta_verify']):.2f} s "
        f"| {med(r['delta_apply']):.1f} s (on the full one) |",
        f"| The delta onto the empty engine | | | | refused in {med(r['delta_refused']):.2f} s, nothing loaded |",
    ]
    return "\n".join(lines)


def engine_version() -> str:
    _, out = sh(["docker", "version", "--format", "{{.Server.Version}}"])
    return out.strip()


if __name__ == "__main__":
    main()
