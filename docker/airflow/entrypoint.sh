#!/usr/bin/env bash
# ShopStream's entrypoint for every container built from docker/airflow.Dockerfile: rewrites the AIRFLOW_CONN_*
# connections of .env for the compose network (loopback hosts -> the compose services, see container_env.py),
# exports PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE, KAFKA_BOOTSTRAP and DUMMYJSON_HOST/PORT like
# scripts/conn_env.py does natively, then hands over to the official image's /entrypoint.
# Also usable as a prefix inside a running container, e.g.
#   docker compose exec airflow-worker shopstream-env airflow connections get warehouse_db
#   docker compose exec airflow-worker shopstream-env bash
set -euo pipefail
here="${SHOPSTREAM_DOCKER_DIR:-/opt/shopstream}"
exports="$(python "$here/container_env.py" exports)"
eval "$exports"
if [ "$(basename "$0")" = shopstream-env ]; then
  exec "$@"
fi
exec "${SHOPSTREAM_NEXT_ENTRYPOINT:-/entrypoint}" "$@"
