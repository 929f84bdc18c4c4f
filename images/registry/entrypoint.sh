#!/bin/sh
# Starts the registry with token auth against the stack's api: the realm is
# https://api.<domain>[:port]/v1/registry/token, the service registry.<domain>[:port].
set -eu
: "${TURTLE_DOMAIN:?TURTLE_DOMAIN is not set (Turtle sets it in every container)}"
port="${TURTLE_HTTPS_PORT:-443}"
suffix=""
[ "$port" = 443 ] || suffix=":$port"
export REGISTRY_AUTH_TOKEN_REALM="${REGISTRY_AUTH_TOKEN_REALM:-https://api.$TURTLE_DOMAIN$suffix/v1/registry/token}"
export REGISTRY_AUTH_TOKEN_SERVICE="${REGISTRY_AUTH_TOKEN_SERVICE:-registry.$TURTLE_DOMAIN$suffix}"
exec /usr/bin/docker-registry serve /etc/turtle-registry/config.yml
