#!/bin/sh
# Makes turtle-debian:bookworm, the base of every image Turtle builds, with
# `turtle base`: loaded from a bundle, pulled as debian:bookworm-slim, or
# bootstrapped from Debian packages with debootstrap, saying which.
# (`turtle up` does the same when a build needs the base.)
#
# Usage: images/debian/build.sh [--rebuild]
# Environment:
#   TURTLE                the turtle executable (default: turtle on PATH)
#   TURTLE_DEBIAN_MIRROR  Debian mirror for debootstrap, e.g. a site's own
set -eu
exec "${TURTLE:-turtle}" base "$@"
