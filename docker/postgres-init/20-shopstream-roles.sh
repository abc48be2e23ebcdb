#!/usr/bin/env bash
# Runs after 10-shopstream.sh when the postgres volume is first initialised, as the superuser: the least-privilege
# setup that scripts/postgres.sh applies natively (include/sql/security, mounted at /opt/shopstream/sql):
#   - the owner role (SHOPSTREAM_PG_OWNER_ROLE, NOLOGIN), the bronze loader's login (AIRFLOW_CONN_BRONZE_DB) and
#     the analysts' login (AIRFLOW_CONN_ANALYST_DB);
#   - in the warehouse database: the bronze DDL applied as the owner role, the grants of every role (dbt is the
#     warehouse role of AIRFLOW_CONN_WAREHOUSE_DB).
# Refuses a `change-me` password. Idempotent: run it again after changing .env, e.g.
#   docker compose exec postgres bash /docker-entrypoint-initdb.d/20-shopstream-roles.sh
set -eo pipefail
: "${AIRFLOW_CONN_WAREHOUSE_DB:?AIRFLOW_CONN_WAREHOUSE_DB is not set: set it in .env (see .env.example)}"
if [ -z "${AIRFLOW_CONN_BRONZE_DB:-}" ] || [ -z "${AIRFLOW_CONN_ANALYST_DB:-}" ]; then
  echo "shopstream: AIRFLOW_CONN_BRONZE_DB / AIRFLOW_CONN_ANALYST_DB not set: least-privilege roles skipped" >&2
  exit 0
fi
sql="${SHOPSTREAM_SQL_DIR:-/opt/shopstream/sql}"
{
  cat <<'SQL'
SET client_min_messages = warning;
SELECT coalesce(w->>'login', 'shopstream') AS dbt, coalesce(w->>'schema', 'shopstream') AS db,
       b->>'login' AS loader, coalesce(b->>'password', '') AS loader_pw,
       a->>'login' AS analyst, coalesce(a->>'password', '') AS analyst_pw,
       coalesce(b->>'password', '') IN ('', 'change-me') OR coalesce(a->>'password', '') IN ('', 'change-me') AS placeholder,
       cardinality(ARRAY(SELECT DISTINCT unnest(ARRAY[w->>'login', b->>'login', a->>'login', :'owner', 'postgres']))) <> 5
         AS shared
  FROM (SELECT CAST(:'wh' AS jsonb) AS w, CAST(:'bronze' AS jsonb) AS b, CAST(:'analyst_conn' AS jsonb) AS a) AS c \gset
\if :placeholder
DO $$ BEGIN RAISE EXCEPTION 'AIRFLOW_CONN_BRONZE_DB / AIRFLOW_CONN_ANALYST_DB still hold an empty or change-me password: set real secrets in .env'; END $$;
\endif
\if :shared
DO $$ BEGIN RAISE EXCEPTION 'the warehouse, bronze and analyst logins and SHOPSTREAM_PG_OWNER_ROLE must be four different roles (none postgres): fix .env'; END $$;
\endif
SQL
  echo "\\i $sql/security/10_roles.sql"
  echo "\\connect :\"db\""
  echo "SET client_min_messages = warning;"
  echo "BEGIN;"
  echo "\\i $sql/security/20_database_begin.sql"
  for f in "$sql"/bronze/*.sql "$sql"/ops/*.sql "$sql"/dbt/*.sql; do echo "\\i $f"; done
  echo "\\i $sql/security/30_database_grants.sql"
  echo "COMMIT;"
} | psql -X -q -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
      -v wh="$AIRFLOW_CONN_WAREHOUSE_DB" -v bronze="$AIRFLOW_CONN_BRONZE_DB" -v analyst_conn="$AIRFLOW_CONN_ANALYST_DB" \
      -v owner="${SHOPSTREAM_PG_OWNER_ROLE:-shopstream_owner}" -f - >/dev/null
echo "shopstream: least-privilege roles and grants are ready (owner, loader, analyst; dbt = the warehouse role)"
