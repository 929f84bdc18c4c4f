#!/bin/sh
# A child device's start: its own engine, then turtle's daemon.
#
# The engine keeps off the parent's address ranges (the default bridge
# 172.17/16 and the pools compose networks come from), or the child loses
# its route to the parent (host-gateway); its MTU fits inside the parent's
# (1400 here) with room for the child's own encapsulation.
set -eu
state=/var/lib/turtle
mkdir -p "$state" /etc/docker
# The provisioning config is mounted read-only; the agent works on a copy it
# may rewrite (the key is dropped once registered). A restart keeps the copy.
[ -f "$state/provisioning.json" ] || cp /etc/turtle/provisioning.json "$state/provisioning.json"
dockerd --storage-driver=fuse-overlayfs \
    --bip 192.168.240.1/24 \
    --default-address-pool base=10.240.0.0/16,size=24 \
    --mtu 1350 \
    >/var/log/dockerd.log 2>&1 &
i=0
until docker info >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 600 ]; then
        echo "turtle-child: the engine did not start in 60 s:" >&2
        tail -n 30 /var/log/dockerd.log >&2
        exit 1
    fi
    sleep 0.1
done
export TURTLE_STATE_DIR="$state" TURTLE_CONFIG=/etc/turtle/turtle.yaml
exec /usr/local/bin/turtle daemon
