#!/bin/sh
# Joins the leaf and its key into the one file HAProxy reads, then runs
# HAProxy in the foreground. A renewed leaf restarts this container (the
# supervisor does it), which runs this again.
set -eu
: "${TURTLE_DOMAIN:?TURTLE_DOMAIN is not set (Turtle sets it in every container)}"
export TURTLE_HTTPS_PORT="${TURTLE_HTTPS_PORT:-443}"
tls=/etc/turtle/tls
if [ ! -r "$tls/fullchain.pem" ] || [ ! -r "$tls/key.pem" ]; then
    echo "turtle-proxy: no certificate in $tls (is io.turtle.tls set on this service?)" >&2
    exit 1
fi
umask 077
cat "$tls/fullchain.pem" "$tls/key.pem" > /run/haproxy/site.pem
exec haproxy -W -db -f /etc/turtle-proxy/haproxy.cfg
