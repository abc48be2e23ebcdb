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
exec docker-entrypoint.sh "$@"
