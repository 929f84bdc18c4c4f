#!/bin/sh
# Builds turtle-test-busybox:latest, the image of the engine tests, with no
# registry: a FROM scratch image holding Debian's static busybox.
#
# Idempotent and quick: installs busybox-static when /bin/busybox is missing
# (as root, via apt-get), then runs `docker build` on a temporary context; the
# engine's build cache makes a rebuild take well under a second.
#
# Usage: images/test-busybox/build.sh [TAG]   (default turtle-test-busybox:latest)
set -eu

tag="${1:-turtle-test-busybox:latest}"
here="$(cd "$(dirname "$0")" && pwd)"

# A dynamically linked busybox would not run in an empty image.
is_static() {
    [ -x "$1" ] && case "$(ldd "$1" 2>&1 || true)" in
        *"not a dynamic"*|*"statically linked"*) true ;;
        *) false ;;
    esac
}

busybox=""
for candidate in /bin/busybox /usr/bin/busybox; do
    if is_static "$candidate"; then
        busybox="$candidate"
        break
    fi
done
if [ -z "$busybox" ]; then
    echo "build.sh: no static busybox found; installing Debian's busybox-static" >&2
    if [ "$(id -u)" != 0 ]; then
        echo "build.sh: need root to apt-get install busybox-static" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q busybox-static >/dev/null 2>&1 || {
        apt-get update -q >/dev/null
        apt-get install -y -q busybox-static >/dev/null
    }
    busybox=/bin/busybox
    is_static "$busybox" || { echo "build.sh: $busybox is not static" >&2; exit 1; }
fi

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$busybox" "$ctx/busybox"
cp "$here/Dockerfile" "$ctx/Dockerfile"
# The classic builder: the machines have no BuildKit.
# Output only on failure (the CLI warns that the legacy builder is deprecated).
if ! out="$(DOCKER_BUILDKIT=0 docker build -q -t "$tag" "$ctx" 2>&1)"; then
    echo "$out" >&2
    echo "build.sh: docker build of $tag failed" >&2
    exit 1
fi
echo "$tag"
