#!/usr/bin/env bash
# Wraps the postgres image's own entrypoint. The image insists on a superuser password before it initialises
# an empty volume; ShopStream never uses one over the network (the superuser logs in through the container's
# local socket: `docker compose exec postgres psql -U postgres`), so it gets a random one nobody knows.
# The warehouse role/database and Airflow's metadata database come from docker/postgres-init/.
set -euo pipefail
if [ -z "${POSTGRES_PASSWORD:-}" ] && [ -z "${POSTGRES_PASSWORD_FILE:-}" ]; then
  POSTGRES_PASSWORD="$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
  export POSTGRES_PASSWORD
fi
# SHOPSTREAM_PG_SSL=on: TLS with a self-signed certificate for the `postgres` service name (made once, kept
# in the data volume's parent; clients use sslmode=require, or verify-full with this server.crt as sslrootcert).
if [ "${SHOPSTREAM_PG_SSL:-off}" = on ]; then
  tls=/var/lib/postgresql/tls
  if [ ! -s "$tls/server.key" ]; then
    command -v openssl >/dev/null || { echo "error: SHOPSTREAM_PG_SSL=on needs openssl in the image" >&2; exit 1; }
    mkdir -p "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=postgres" \
      -addext "subjectAltName=DNS:postgres,DNS:localhost,IP:127.0.0.1" \
      -keyout "$tls/server.key" -out "$tls/server.crt" >/dev/null 2>&1
    chown -R postgres: "$tls" 2>/dev/null || true
    chmod 600 "$tls/server.key"
  fi
  set -- "$@" -c ssl=on -c ssl_cert_file="$tls/server.crt" -c ssl_key_file="$tls/server.key"
elif [ "${SHOPSTREAM_PG_SSL:-off}" != off ]; then
  echo "error: SHOPSTREAM_PG_SSL must be on or off (got '${SHOPSTREAM_PG_SSL}'); fix it in .env" >&2
  exit 1
fi
exec docker-entrypoint.sh "$@"
