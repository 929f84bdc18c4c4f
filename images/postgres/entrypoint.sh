#!/bin/sh
# Starts PostgreSQL for the stack. On first start (an empty volume), makes
# the cluster and the application's role and database, with the password
# from the secret file. Every start after keeps the data as it is, and sets
# the role's password again, so the secret file stays the one truth.
#
# Environment: POSTGRES_USER, POSTGRES_DB (default turtle), POSTGRES_PASSWORD_FILE
# (default /run/turtle/secrets/db-password), PGDATA. Extra arguments go to postgres
# (e.g. -c shared_buffers=16MB).
set -eu
user="${POSTGRES_USER:-turtle}"
db="${POSTGRES_DB:-turtle}"
pwfile="${POSTGRES_PASSWORD_FILE:-/run/turtle/secrets/db-password}"
if [ ! -r "$pwfile" ]; then
    echo "turtle-postgres: cannot read the password file $pwfile (is io.turtle.secrets: db-password set on this service?)" >&2
    exit 1
fi
pw="$(tr -d ' \n\r\t' < "$pwfile")"
case "$user$db" in
    *[!a-z0-9_]*) echo "turtle-postgres: POSTGRES_USER and POSTGRES_DB must be [a-z0-9_]" >&2; exit 1 ;;
esac
case "$pw" in
    *[!A-Za-z0-9]*) echo "turtle-postgres: the password must be alphanumeric (the secrets Turtle makes are)" >&2; exit 1 ;;
esac

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "turtle-postgres: no cluster in $PGDATA: creating one" >&2
    initdb -D "$PGDATA" -U postgres -E UTF8 --locale=C --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    {
        echo "host all all 0.0.0.0/0 scram-sha-256"
        echo "host all all ::/0 scram-sha-256"
    } >> "$PGDATA/pg_hba.conf"
    echo "CREATE ROLE $user LOGIN PASSWORD '$pw'" | postgres --single -D "$PGDATA" postgres >/dev/null
    echo "CREATE DATABASE $db OWNER $user" | postgres --single -D "$PGDATA" postgres >/dev/null
else
    echo "ALTER ROLE $user PASSWORD '$pw'" | postgres --single -D "$PGDATA" postgres >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/run/postgresql "$@"
