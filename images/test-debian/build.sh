#!/bin/sh
# Builds turtle-test-debian:latest (curl, python3, openssl on the Debian base),
# building the base first when it is missing. The engine's build cache makes a
# rebuild quick.
#
# Usage: images/test-debian/build.sh [TAG]   (default turtle-test-debian:latest)
set -eu
tag="${1:-turtle-test-debian:latest}"
here="$(cd "$(dirname "$0")" && pwd)"
"$here/../debian/build.sh" >/dev/null
if ! out="$(DOCKER_BUILDKIT=0 docker build -q -t "$tag" "$here" 2>&1)"; then
    echo "$out" >&2
    echo "build.sh: docker build of $tag failed" >&2
    exit 1
fi
echo "$tag"
