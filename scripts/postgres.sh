#!/usr/bin/env bash
# The project's own PostgreSQL cluster under .local/pg (never the system cluster).
# Usage: scripts/postgres.sh start|stop|status|psql [--as ROLE] [args]|apply-ddl [DB]|secure DB|createdb DB
#   start/stop are idempotent; two at once wait for each other (a lock in the cluster's folder).
# `start` also creates the least-privilege roles and applies the bronze DDL (as the owner role) and the grants
# to the warehouse database (include/sql/security/); `apply-ddl [DB]` does only that, explicitly (the loader
# never applies DDL: it verifies), for the warehouse database or DB; `secure DB` is its older name.
# `psql --as dbt|loader|analyst|owner` logs in as that role (default dbt, the warehouse role; owner = the
# superuser over the cluster's socket with SET ROLE to the NOLOGIN owner, for by-hand repairs of bronze).
source "$(dirname "$0")/common.sh"

PGROOT="$SHOPSTREAM_PG_ROOT"
DATA="$PGROOT/data"
SOCK="$PGROOT/run"
LOG="$PGROOT/log/postgres.log"

find_bindir() {
  if [ -n "${PG_BINDIR:-}" ]; then echo "$PG_BINDIR"; return; fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ] && { pg_config --bindir; return; }
  die "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them: 'apt-get install postgresql'
       (Debian/Ubuntu), or set PG_BINDIR to the folder that holds initdb."
}
BIN="$(find_bindir)"

# initdb refuses to run as root: as root, run the server as the 'postgres' OS user.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

is_running() { as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

superuser_psql() { superuser_psql_in postgres "$@"; }
superuser_psql_in() {
  local db="$1"; shift
  as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PGPORT" -U postgres -d "$db" "$@"
}

SECURITY_SQL="$ROOT/include/sql/security"
TLS="$PGROOT/tls"

# TLS (SHOPSTREAM_PG_SSL=on): a self-signed certificate for 127.0.0.1/localhost, made once with openssl. The
# certificate is its own CA: clients use sslmode=require, or verify-full with sslrootcert=$TLS/server.crt.
ensure_tls_files() {
  [ -s "$TLS/server.crt" ] && [ -s "$TLS/server.key" ] && return 0
  command -v openssl >/dev/null || die "SHOPSTREAM_PG_SSL=on needs openssl to make the server certificate: apt-get install openssl"
  info "generating a self-signed TLS certificate in $TLS"
  mkdir -p "$TLS"
  openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=localhost" \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$TLS/server.key" -out "$TLS/server.crt" >"$PGROOT/log/openssl.log" 2>&1 \
    || die "openssl could not create the certificate; see $PGROOT/log/openssl.log"
  chmod 600 "$TLS/server.key"; chmod 644 "$TLS/server.crt"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$TLS" || true
}

ssl_options() {
  case "${SHOPSTREAM_PG_SSL:-off}" in
    on)  ensure_tls_files
         echo "-c ssl=on -c ssl_cert_file=$(sh_quote "$TLS/server.crt") -c ssl_key_file=$(sh_quote "$TLS/server.key")" ;;
    off) echo "" ;;
    *)   die "SHOPSTREAM_PG_SSL must be 'on' or 'off' (got '${SHOPSTREAM_PG_SSL}'); fix it in .env" ;;
  esac
}

start() {
  mkdir -p "$PGROOT/log" "$SOCK"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$PGROOT" 2>/dev/null || true
  if [ ! -f "$DATA/PG_VERSION" ]; then
    info "initialising PostgreSQL cluster in $DATA ($("$BIN/postgres" --version))"
    as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --encoding=UTF8 --locale=C.UTF-8 >"$PGROOT/log/initdb.log" 2>&1 \
      || die "initdb failed; see $PGROOT/log/initdb.log"
  fi
  if is_running; then
    info "PostgreSQL already running on port $PGPORT"
  else
    if port_in_use "$PGPORT"; then
      die "port $PGPORT (from AIRFLOW_CONN_WAREHOUSE_DB in .env) is taken by $(port_owner "$PGPORT" || echo 'another process').
       Stop that process or change the port in .env."
    fi
    local ssl; ssl="$(ssl_options)"
    info "starting PostgreSQL on 127.0.0.1:$PGPORT${ssl:+ (TLS on)}"
    # pg_ctl starts the server through /bin/sh with -D and -l inside double quotes, where a `$`, `"` or `\` of the
    # checkout path is expanded: the data folder goes through PGDATA, the log through our own redirection (the
    # server inherits it), the paths in -o single-quoted. 8>&-: the server must not hold the start lock.
    as_owner env PGDATA="$DATA" "$BIN/pg_ctl" -w -t 60 \
      -o "-p $PGPORT -k $(sh_quote "$SOCK") -c listen_addresses=127.0.0.1 -c max_connections=200 $ssl" start \
      >>"$LOG" 2>&1 </dev/null 8>&- \
      || { tail -n 20 "$LOG" >&2; die "PostgreSQL did not start (log above); see $LOG"; }
  fi
  if [ "${SHOPSTREAM_PG_SSL:-off}" = on ] && [ "$(superuser_psql -Atc 'SHOW ssl')" != on ]; then
    info "warning: SHOPSTREAM_PG_SSL=on but the running cluster has ssl=off; apply it with: scripts/postgres.sh restart"
  fi
  ensure_warehouse
  if roles_distinct; then
    ensure_roles
    secure_database "$PGDATABASE"
  else
    info "single-role configuration (the connections share a login): least-privilege setup skipped for $PGDATABASE"
  fi
}

# The four roles must differ (and none be the superuser): the setup would otherwise grant one role two jobs
# (e.g. make the dbt role read-only). A test database whose connections all use the warehouse role is such a
# single-role configuration: `start` leaves it alone, `secure` refuses it.
roles_distinct() {
  local roles=("$PGUSER" "$BRONZE_PGUSER" "$ANALYST_PGUSER" "$SHOPSTREAM_PG_OWNER_ROLE")
  [ "$(printf '%s\n' "${roles[@]}" | sort -u | wc -l)" = 4 ] || return 1
  ! printf '%s\n' "${roles[@]}" | grep -qx postgres
}

# Least privilege (include/sql/security/): the owner, loader and analyst roles (cluster-wide), then for one
# database the bronze DDL applied as the owner role and every role's grants, in one transaction. Idempotent.
ensure_roles() {
  superuser_psql -v owner="$SHOPSTREAM_PG_OWNER_ROLE" -v loader="$BRONZE_PGUSER" -v loader_pw="$BRONZE_PGPASSWORD" \
    -v analyst="$ANALYST_PGUSER" -v analyst_pw="$ANALYST_PGPASSWORD" -f - <"$SECURITY_SQL/10_roles.sql" >/dev/null
}

secure_database() {
  local db="$1" f
  {
    echo "SET client_min_messages = warning;"
    echo "BEGIN;"
    cat "$SECURITY_SQL/20_database_begin.sql"
    for f in "$ROOT"/include/sql/bronze/*.sql "$ROOT"/include/sql/ops/*.sql "$ROOT"/include/sql/dbt/*.sql; do cat "$f"; echo; done
    cat "$SECURITY_SQL/30_database_grants.sql"
    echo "COMMIT;"
  } | superuser_psql_in "$db" -v db="$db" -v owner="$SHOPSTREAM_PG_OWNER_ROLE" -v dbt="$PGUSER" \
        -v loader="$BRONZE_PGUSER" -v analyst="$ANALYST_PGUSER" -f - >/dev/null \
    || die "could not apply the roles and grants (include/sql/security) to database $db"
}

# Role and database from AIRFLOW_CONN_WAREHOUSE_DB; the role's password follows .env on every start.
ensure_warehouse() {
  superuser_psql -v role="$PGUSER" -v pw="$PGPASSWORD" -v db="$PGDATABASE" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
}

# A database of the cluster owned by the warehouse role (e.g. Superset's metadata), created when missing.
ensure_database() {
  superuser_psql -v role="$PGUSER" -v db="$1" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
}

stop() {
  if is_running; then
    info "stopping PostgreSQL"
    as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
  else
    info "PostgreSQL is not running"
  fi
}

status() {
  if is_running; then
    echo "postgres: running on 127.0.0.1:$PGPORT (data $DATA)"
  else
    echo "postgres: stopped"; return 1
  fi
}

# psql_as ROLE [psql args]: a psql session as one of the project's roles on the warehouse database (a script fed
# to it stops at its first error and exits non-zero: ON_ERROR_STOP).
psql_as() {
  local role="$1"; shift
  case "$role" in
    dbt) exec psql -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U "$PGUSER" -d "$PGDATABASE" "$@" ;;
    loader) PGPASSWORD="$BRONZE_PGPASSWORD" exec psql -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" \
              -U "$BRONZE_PGUSER" -d "$PGDATABASE" "$@" ;;
    analyst) PGPASSWORD="$ANALYST_PGPASSWORD" exec psql -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" \
               -U "$ANALYST_PGUSER" -d "$PGDATABASE" "$@" ;;
    owner) PGOPTIONS="-c role=$SHOPSTREAM_PG_OWNER_ROLE" superuser_psql_in "$PGDATABASE" "$@" ;;
    *) die "scripts/postgres.sh psql --as: unknown role '$role'; use dbt, loader, analyst or owner" ;;
  esac
}

# apply_ddl DB: the bronze DDL (as the owner role) and every role's grants, the explicit setup step.
apply_ddl() {
  roles_distinct || die "the logins of AIRFLOW_CONN_WAREHOUSE_DB ($PGUSER), AIRFLOW_CONN_BRONZE_DB ($BRONZE_PGUSER),
       AIRFLOW_CONN_ANALYST_DB ($ANALYST_PGUSER) and SHOPSTREAM_PG_OWNER_ROLE ($SHOPSTREAM_PG_OWNER_ROLE) must be four
       different roles, none of them 'postgres'. Fix them in .env."
  is_running || die "PostgreSQL is not running; start it first: scripts/postgres.sh start"
  ensure_roles; secure_database "$1"
  info "bronze DDL and grants applied to database $1 (include/sql/bronze, include/sql/dbt, include/sql/security)"
}

case "${1:-}" in
  start|stop|restart|apply-ddl|secure) mkdir -p "$PGROOT"; hold_lock "$PGROOT/.lock" "scripts/postgres.sh $1" ;;
esac
case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) status ;;
  # Apply the least-privilege setup to another database of the cluster (the roles exist after `start`).
  apply-ddl) apply_ddl "${2:-$PGDATABASE}" ;;
  secure) [ -n "${2:-}" ] || die "usage: $0 secure DATABASE"; apply_ddl "$2" ;;
  createdb) shift; [ -n "${1:-}" ] || die "usage: $0 createdb DATABASE"; ensure_database "$1" ;;
  psql)
    shift
    if [ "${1:-}" = --as ]; then [ -n "${2:-}" ] || die "usage: $0 psql --as dbt|loader|analyst|owner [psql args]"
      role="$2"; shift 2; psql_as "$role" "$@"; exit
    fi
    psql_as dbt "$@" ;;
  *) echo "usage: $0 start|stop|restart|status|psql [--as dbt|loader|analyst|owner]|apply-ddl [DB]|secure DB|createdb DB" >&2; exit 2 ;;
esac
