#!/usr/bin/env bash
# The project's own PostgreSQL cluster under .local/pg (never the system cluster).
# Usage: scripts/postgres.sh start|stop|status|psql [args]   — start/stop are idempotent.
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

superuser_psql() { as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PGPORT" -U postgres -d postgres "$@"; }

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
    info "starting PostgreSQL on 127.0.0.1:$PGPORT"
    as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
      -o "-p $PGPORT -k $SOCK -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null \
      || die "PostgreSQL did not start; see $LOG"
  fi
  ensure_warehouse
}

# Role and database from AIRFLOW_CONN_WAREHOUSE_DB; the role's password follows .env on every start.
ensure_warehouse() {
  superuser_psql -v role="$PGUSER" -v pw="$PGPASSWORD" -v db="$PGDATABASE" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN PASSWORD :'pw';
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

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) status ;;
  psql) shift; exec psql -X -h 127.0.0.1 -p "$PGPORT" -U "$PGUSER" -d "$PGDATABASE" "$@" ;;
  *) echo "usage: $0 start|stop|restart|status|psql" >&2; exit 2 ;;
esac
