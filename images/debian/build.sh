#!/bin/sh
# Builds turtle-debian:bookworm, the base of every image Turtle builds.
#
# The base is debian:bookworm-slim. Where it can be pulled, it is pulled and
# tagged; where it cannot (an air-gapped site, a machine without a registry),
# the same base is bootstrapped from Debian packages with debootstrap
# (--variant=minbase, then trimmed as the slim image is) and imported. The
# script says which it did. Idempotent: an existing turtle-debian:bookworm is
# kept unless --rebuild is given.
#
# Usage: images/debian/build.sh [--rebuild]
# Environment:
#   TURTLE_DEBIAN_MIRROR  Debian mirror for debootstrap (default http://deb.debian.org/debian),
#                         e.g. a site's local mirror
#   TURTLE_DEBIAN_SUITE   suite (default bookworm)
set -eu

suite="${TURTLE_DEBIAN_SUITE:-bookworm}"
mirror="${TURTLE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
tag="turtle-debian:$suite"

if [ "${1:-}" != "--rebuild" ] && docker image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag: present, kept" >&2
    echo "$tag"
    exit 0
fi

if docker pull -q "debian:$suite-slim" >/dev/null 2>&1; then
    docker tag "debian:$suite-slim" "$tag"
    echo "$tag: pulled debian:$suite-slim" >&2
    echo "$tag"
    exit 0
fi

echo "$tag: debian:$suite-slim cannot be pulled; bootstrapping it from $mirror" >&2
if ! command -v debootstrap >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
        echo "build.sh: debootstrap is missing and installing it needs root (apt-get install debootstrap)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q debootstrap >/dev/null 2>&1 || {
        apt-get update -q >/dev/null
        apt-get install -y -q debootstrap >/dev/null
    }
fi
if [ "$(id -u)" != 0 ]; then
    echo "build.sh: debootstrap needs root" >&2
    exit 1
fi

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
if ! debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.log" 2>&1; then
    tail -20 "$root.log" >&2
    rm -f "$root.log"
    echo "build.sh: debootstrap from $mirror failed; set TURTLE_DEBIAN_MIRROR to a reachable mirror" >&2
    exit 1
fi
rm -f "$root.log"
# Trim as debian:*-slim does: no package caches, lists, docs or man pages.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
    "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
    "$root"/usr/share/info/* "$root"/var/log/*.log "$root"/tmp/* 2>/dev/null || true
# The same mirror inside the image, so builds FROM it install from it too.
printf 'deb %s %s main\n' "$mirror" "$suite" >"$root/etc/apt/sources.list"
tar -C "$root" -c . | docker import \
    -c 'CMD ["bash"]' \
    -c 'ENV LANG=C.UTF-8' \
    -m "debootstrap --variant=minbase $suite $mirror" - "$tag" >/dev/null
echo "$tag: bootstrapped from $mirror" >&2
echo "$tag"
