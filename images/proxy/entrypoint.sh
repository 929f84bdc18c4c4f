#!/bin/sh
# Starts HAProxy as turtle-proxy (uid 10002), never as root.
#
# The container starts as root with two capabilities, SETUID and SETGID, for
# one reason: the leaf's key is root's (0600, as Turtle's CA writes keys).
# This script reads it, hands leaf and key joined to a process of uid 10002
# that writes the one file HAProxy reads (in a tmpfs only uid 10002 can
# enter), and execs HAProxy as that uid: a change of uid from root drops
# every capability. HAProxy binds 80 and 443 unprivileged
# (net.ipv4.ip_unprivileged_port_start=0 in the container's own network
# namespace). A renewed leaf restarts this container (the supervisor does
# it), which runs this again.
#
# Limits (environment; see haproxy.cfg and stack/README.md):
#   TURTLE_PROXY_MAXCONN             TLS connections at once (default "auto": from
#                                    the container's memory limit, 256 KiB each)
#   TURTLE_PROXY_MAXCONN_PER_SOURCE  connections one source address may hold (128)
set -eu
say() { echo "turtle-proxy: $*" >&2; }
: "${TURTLE_DOMAIN:?TURTLE_DOMAIN is not set (Turtle sets it in every container)}"
export TURTLE_HTTPS_PORT="${TURTLE_HTTPS_PORT:-443}"
uid=10002
gid=10002
tls=/etc/turtle/tls
run=/run/haproxy

# A positive whole number, or the default.
count() { # name value default
    case "$2" in
        "" | auto) echo "$3" ;;
        *[!0-9]* | 0*) say "$1=$2: expected a positive whole number (or auto)"; exit 1 ;;
        *) echo "$2" ;;
    esac
}

# The memory limit of this container (cgroup v2, then v1), in bytes; empty
# when there is none.
memory_limit() {
    for f in /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes; do
        if [ -r "$f" ]; then
            v="$(cat "$f")"
            # "max", or v1's "no limit" (close to 2^63).
            case "$v" in *[!0-9]*) return ;; esac
            [ "${#v}" -lt 16 ] && echo "$v"
            return
        fi
    done
}

# Each TLS connection is two inside HAProxy (the layer-4 split, then the
# HTTPS frontend), each with up to two 32 KiB buffers, plus OpenSSL's state:
# 256 KiB is the worst case of one that streams both ways. 32 MiB stay for
# HAProxy itself. No limit: what a 256 MiB budget (the 1 GB board's
# "critical" priority) holds.
limit="$(memory_limit)"
auto=896
if [ -n "$limit" ]; then
    auto=$(( (limit / 1048576 - 32) * 4 ))
    [ "$auto" -ge 64 ] || auto=64
    [ "$auto" -le 20000 ] || auto=20000
fi
TURTLE_PROXY_MAXCONN="$(count TURTLE_PROXY_MAXCONN "${TURTLE_PROXY_MAXCONN:-}" "$auto")"
TURTLE_PROXY_MAXCONN_PER_SOURCE="$(count TURTLE_PROXY_MAXCONN_PER_SOURCE "${TURTLE_PROXY_MAXCONN_PER_SOURCE:-}" 128)"
# Port 80 only redirects: a quarter of the TLS connections.
TURTLE_PROXY_HTTP_MAXCONN=$(( TURTLE_PROXY_MAXCONN / 4 + 16 ))
# Every TLS connection is accepted twice (see above), plus port 80 and the health frontend.
TURTLE_PROXY_GLOBAL_MAXCONN=$(( TURTLE_PROXY_MAXCONN * 2 + TURTLE_PROXY_HTTP_MAXCONN + 16 ))
export TURTLE_PROXY_MAXCONN TURTLE_PROXY_MAXCONN_PER_SOURCE TURTLE_PROXY_HTTP_MAXCONN TURTLE_PROXY_GLOBAL_MAXCONN
say "at most $TURTLE_PROXY_MAXCONN TLS connections ($TURTLE_PROXY_MAXCONN_PER_SOURCE per source address), memory limit ${limit:-none}"

if [ ! -r "$tls/fullchain.pem" ] || [ ! -r "$tls/key.pem" ]; then
    say "cannot read a certificate in $tls (is io.turtle.tls set on this service?)"
    exit 1
fi
# Everything below runs as uid 10002: started as root, through setpriv;
# started as another user (it must then read the key itself), as that user.
set --
if [ "$(id -u)" = 0 ]; then
    set -- setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all
fi
if ! cat "$tls/fullchain.pem" "$tls/key.pem" | "$@" sh -c 'umask 077 && cat > "$1"' sh "$run/site.pem"; then
    say "cannot write $run/site.pem as uid $uid: mount a tmpfs there (tmpfs: [\"$run:uid=$uid,gid=$gid,mode=0700\"]) and keep the capabilities SETUID and SETGID"
    exit 1
fi
exec "$@" haproxy -db -f /etc/turtle-proxy/haproxy.cfg
