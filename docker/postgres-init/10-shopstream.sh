#!/usr/bin/env bash
# Runs once, when the postgres volume is first initialised (/docker-entrypoint-initdb.d), as the superuser.
# Creates what the native path's scripts/postgres.sh (ensure_warehouse) creates, from the same variable:
#   - the warehouse role (login/password of AIRFLOW_CONN_WAREHOUSE_DB) and its database (`schema`);
#   - Airflow's metadata database ($SHOPSTREAM_METADATA_DB, default `airflow`), owned by the same role
#     (docker/airflow/container_env.py builds AIRFLOW__DATABASE__SQL_ALCHEMY_CONN from it);
#   - Superset's metadata database ($SUPERSET_METADATA_DB, when set), owned by the same role.
# The JSON is parsed by PostgreSQL itself (the image has no Python). Idempotent: safe to run again by hand,
# e.g. after changing the password in .env:
#   docker compose exec postgres bash /docker-entrypoint-initdb.d/10-shopstream.sh
set -eo pipefail
: "${AIRFLOW_CONN_WAREHOUSE_DB:?AIRFLOW_CONN_WAREHOUSE_DB is not set: set it in .env (see .env.example)}"
psql -X -q -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  -v conn="$AIRFLOW_CONN_WAREHOUSE_DB" -v metadata_db="${SHOPSTREAM_METADATA_DB:-airflow}" \
  -v superset_db="${SUPERSET_METADATA_DB:-}" <<'SQL'
SELECT coalesce(c->>'login', 'shopstream') AS role,
       coalesce(c->>'password', '') AS pw,
       coalesce(c->>'schema', 'shopstream') AS db
  FROM (SELECT CAST(:'conn' AS jsonb) AS c) AS conn \gset
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'metadata_db', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'metadata_db') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'superset_db', :'role')
 WHERE :'superset_db' <> '' AND NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'superset_db') \gexec
SQL
echo "shopstream: warehouse role, warehouse database and the Airflow (and Superset) metadata databases are ready"
