#!/usr/bin/env bash
# Local Airflow (native path): AIRFLOW_HOME under .local/airflow, the project's dags/ and plugins/, connections
# from .env (AIRFLOW_CONN_*), the UI login from .env (AIRFLOW_ADMIN_USER/PASSWORD).
#
# - Metadata database: a PostgreSQL database in the project's own cluster (scripts/postgres.sh), owned by the
#   warehouse role of AIRFLOW_CONN_WAREHOUSE_DB (its credentials, never literals). Its name is
#   AIRFLOW_METADATA_DB, by default `airflow` for .local/airflow and `airflow_<folder>` for another AIRFLOW_HOME.
#   It is created from a template database migrated once per requirements.lock (`airflow db migrate` costs
#   ~30 s; a copy of the template < 1 s). Set AIRFLOW__DATABASE__SQL_ALCHEMY_CONN to use another database.
# - LocalExecutor, AIRFLOW__CORE__PARALLELISM task processes at a time (default 4: two cores, and a task spends
#   much of its time waiting on PostgreSQL/Kafka).
# - Four processes, each with its own pid file and log under $AIRFLOW_HOME: api-server (UI + REST + the task
#   execution API), scheduler (runs the LocalExecutor), dag-processor, triggerer.
# Usage: scripts/airflow.sh init|start|stop|status|run <airflow args>
#   start/stop/drop-db at the same time wait for each other (a lock, $AIRFLOW_HOME/.lock): two `make airflow`
#   never start the processes twice.
source "$(dirname "$0")/common.sh"

AF="$VENV/bin/airflow"
PY="$VENV/bin/python"
RUNDIR="$AIRFLOW_HOME/run"
LOGDIR="$AIRFLOW_HOME/logs"
PORT="${AIRFLOW_WEB_PORT:-8080}"
COMPONENTS=(api-server scheduler dag-processor triggerer)

: "${AIRFLOW_ADMIN_USER:?AIRFLOW_ADMIN_USER is not set: set it in .env (see .env.example)}"
: "${AIRFLOW_ADMIN_PASSWORD:?AIRFLOW_ADMIN_PASSWORD is not set: set it in .env (see .env.example)}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${AIRFLOW_ADMIN_USER}:admin"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/passwords.json"
export AIRFLOW__CORE__AUTH_MANAGER="${AIRFLOW__CORE__AUTH_MANAGER:-airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager}"
export AIRFLOW__API__PORT="$PORT"
export AIRFLOW__API__BASE_URL="http://localhost:$PORT"
export AIRFLOW__API__WORKERS="${AIRFLOW__API__WORKERS:-1}"
export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
export AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES="${AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES:-1}"
export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK=True
# A quick local loop: the dag processor rescans often, the scheduler looks for work often.
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-30}"
# When a loop found nothing to do the scheduler sleeps this long (Airflow's default 1 s) before it looks again, so
# every task that waits for another waits ~0.5 s more on average; a dbt run is a chain of 6 model tasks, an hour a
# chain of ~12 tasks (bench/README.md). 0.25 s costs the idle scheduler ~2% of a core here.
export AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME="${AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME:-0.25}"
# A task's supervisor (in the LocalExecutor worker) waits on the task's sockets at most this long between looks
# (Airflow's default 5 s). When a task closes its sockets a moment before its process ends, the supervisor
# misses the exit and sleeps the whole interval: the worker slot stays taken ~5 s after a task that took 0.3 s
# (measured: 50 of 196 tasks of a backfill, 271 of 388 slot-seconds; bench/README.md). 1 s bounds that; the price
# is one heartbeat call per running task per second to the API server.
export AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL="${AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL:-1}"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="${AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION:-True}"

if [ -z "${AIRFLOW_METADATA_DB:-}" ]; then
  if [ "$AIRFLOW_HOME" = "$LOCAL/airflow" ]; then
    AIRFLOW_METADATA_DB=airflow
  else
    AIRFLOW_METADATA_DB="airflow_$(basename "$AIRFLOW_HOME" | tr -c 'a-zA-Z0-9_\n' '_' | tr 'A-Z' 'a-z')"
  fi
fi
export AIRFLOW_METADATA_DB
LOCK_HASH="$(sha1sum "$ROOT/requirements.lock" | cut -c1-12)"
export LOCK_HASH AF

# metadata_db ensure|drop: the metadata database in the project's cluster (superuser over the cluster's
# private Unix socket, like scripts/postgres.sh; the database is owned by the warehouse role).
metadata_db() {
  "$PY" - "$1" <<'PY'
import os, subprocess, sys
import psycopg
from psycopg import sql

action = sys.argv[1]
db, role = os.environ["AIRFLOW_METADATA_DB"], os.environ["PGUSER"]
template = f"airflow_template_{os.environ['LOCK_HASH']}"
admin = dict(host=os.path.join(os.environ["SHOPSTREAM_PG_ROOT"], "run"), port=os.environ["PGPORT"], user="postgres",
             dbname="postgres", autocommit=True)

def exists(conn, name):
    return conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone() is not None

with psycopg.connect(**admin) as conn:
    if action == "drop":
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(db)))
        sys.exit(0)
    if exists(conn, db):
        print("exists")
        sys.exit(0)
    # One migrated template per lock file; an advisory lock keeps concurrent starts from migrating it twice.
    conn.execute("select pg_advisory_lock(hashtext('shopstream-airflow-template'))")
    if not exists(conn, template):
        for (old,) in conn.execute("select datname from pg_database where datname like 'airflow\\_template\\_%%'").fetchall():
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(old)))
        building = template + "_building"
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(building)))
        conn.execute(sql.SQL("create database {} owner {}").format(sql.Identifier(building), sql.Identifier(role)))
        env = {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": os.environ["SQL_ALCHEMY_CONN_BASE"] + building}
        log = os.path.join(os.environ["AIRFLOW_HOME"], "logs", "db-migrate.log")
        with open(log, "w") as out:
            rc = subprocess.run([os.environ["AF"], "db", "migrate"], env=env, stdout=out, stderr=subprocess.STDOUT).returncode
        if rc != 0:
            sys.exit(f"airflow db migrate failed; see {log}")
        conn.execute(sql.SQL("alter database {} rename to {}").format(sql.Identifier(building), sql.Identifier(template)))
    conn.execute(sql.SQL("create database {} template {} owner {}").format(
        sql.Identifier(db), sql.Identifier(template), sql.Identifier(role)))
    conn.execute("select pg_advisory_unlock(hashtext('shopstream-airflow-template'))")
    print("created")
PY
}

init() {
  "$ROOT/scripts/bootstrap.sh"
  mkdir -p "$LOGDIR" "$RUNDIR" "$AIRFLOW_HOME/config"
  # Local settings (preloads dbt/Cosmos/task modules in the scheduler and DAG processor, see shopstream.preload):
  # linked from the repository, unless this AIRFLOW_HOME has a settings file of its own (a test's, a user's).
  local settings="$AIRFLOW_HOME/config/airflow_local_settings.py"
  if [ -L "$settings" ] || [ ! -e "$settings" ]; then
    ln -sfn "$ROOT/include/airflow/airflow_local_settings.py" "$settings"
  fi
  # The UI password comes from .env, never a generated default.
  python3 -c 'import json,os,sys; json.dump({os.environ["AIRFLOW_ADMIN_USER"]: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, open(sys.argv[1],"w"))' \
    "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
  chmod 600 "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
  # The processes must share their secrets (the API server signs the task tokens the workers present): generated
  # once per AIRFLOW_HOME into a mode-600 file, not left to each process's first write of airflow.cfg (a race
  # when the four start together). Values already in the environment win.
  local secrets="$AIRFLOW_HOME/secrets.env"
  if [ ! -s "$secrets" ]; then
    (umask 077; python3 -c 'import base64, os, secrets
print("AIRFLOW__API_AUTH__JWT_SECRET=" + secrets.token_urlsafe(32))
print("AIRFLOW__API__SECRET_KEY=" + secrets.token_urlsafe(32))
print("AIRFLOW__CORE__FERNET_KEY=" + base64.urlsafe_b64encode(os.urandom(32)).decode())' >"$secrets")
  fi
  local line key
  while IFS= read -r line; do
    key="${line%%=*}"
    [ -n "${!key:-}" ] || export "$line"
  done <"$secrets"
  if [ -n "${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-}" ]; then
    local stamp="$AIRFLOW_HOME/.migrated-$LOCK_HASH"
    if [ ! -f "$stamp" ]; then
      info "migrating the Airflow metadata database (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN)"
      "$AF" db migrate >"$LOGDIR/db-migrate.log" 2>&1 || die "airflow db migrate failed; see $LOGDIR/db-migrate.log"
      touch "$stamp"
    fi
    return
  fi
  "$ROOT/scripts/postgres.sh" status >/dev/null 2>&1 || "$ROOT/scripts/postgres.sh" start
  # The warehouse role's URL (driver psycopg2) without a database name; credentials from the environment.
  export SQL_ALCHEMY_CONN_BASE
  SQL_ALCHEMY_CONN_BASE="$("$PY" -c 'import os; from sqlalchemy.engine import URL
print(URL.create("postgresql+psycopg2", username=os.environ["PGUSER"], password=os.environ["PGPASSWORD"],
                 host=os.environ["PGHOST"], port=int(os.environ["PGPORT"])).render_as_string(hide_password=False) + "/")')"
  local state
  state="$(metadata_db ensure)" \
    || die "could not create the Airflow metadata database $AIRFLOW_METADATA_DB"
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="$SQL_ALCHEMY_CONN_BASE$AIRFLOW_METADATA_DB"
  local stamp="$AIRFLOW_HOME/.migrated-$LOCK_HASH-$AIRFLOW_METADATA_DB"
  if [ "$state" = created ]; then
    info "created the Airflow metadata database $AIRFLOW_METADATA_DB (PostgreSQL, port $PGPORT)"
    touch "$stamp"
  elif [ ! -f "$stamp" ]; then  # an existing database, migrated by an older lock file
    info "migrating the Airflow metadata database $AIRFLOW_METADATA_DB"
    "$AF" db migrate >"$LOGDIR/db-migrate.log" 2>&1 || die "airflow db migrate failed; see $LOGDIR/db-migrate.log"
    touch "$stamp"
  fi
}

pid_of() { cat "$RUNDIR/$1.pid" 2>/dev/null; }
component_running() { local pid; pid="$(pid_of "$1")"; [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
any_running() { local c; for c in "${COMPONENTS[@]}"; do component_running "$c" && return 0; done; return 1; }
healthy() {
  # API up, and the scheduler's heartbeat recorded in the metadata database.
  curl -fsS "http://127.0.0.1:$PORT/api/v2/monitor/health" 2>/dev/null \
    | python3 -c 'import json,sys; h=json.load(sys.stdin); sys.exit(0 if h["metadatabase"]["status"]=="healthy" and h["scheduler"]["status"]=="healthy" else 1)' 2>/dev/null
}

start() {
  init
  local c
  any_running || info "starting Airflow (api-server, scheduler, dag-processor, triggerer) on http://localhost:$PORT"
  for c in "${COMPONENTS[@]}"; do
    if component_running "$c"; then continue; fi
    if [ "$c" = api-server ] && port_in_use "$PORT"; then
      die "port $PORT is taken by $(port_owner "$PORT" || echo 'another process'); stop it or set AIRFLOW_WEB_PORT in .env."
    fi
    info "starting Airflow $c (log: $LOGDIR/$c.log)"
    setsid nohup "$AF" "$c" >"$LOGDIR/$c.log" 2>&1 < /dev/null 8>&- &  # 8>&-: never hold the start lock
    echo $! >"$RUNDIR/$c.pid"
  done
  local i
  for i in $(seq 1 180); do
    healthy && break
    for c in "${COMPONENTS[@]}"; do
      component_running "$c" || { tail -n 40 "$LOGDIR/$c.log" >&2; die "Airflow $c exited during start-up; see $LOGDIR/$c.log"; }
    done
    sleep 1
  done
  healthy || { tail -n 40 "$LOGDIR/api-server.log" "$LOGDIR/scheduler.log" >&2; die "Airflow did not become healthy in 180 s; see $LOGDIR/"; }
  echo "Airflow UI: http://localhost:$PORT   login: $AIRFLOW_ADMIN_USER / (AIRFLOW_ADMIN_PASSWORD in .env)   metadata DB: $AIRFLOW_METADATA_DB, LocalExecutor x$AIRFLOW__CORE__PARALLELISM"
}

stop_pid() {  # stop_pid NAME PID: TERM its process group, wait up to 30 s, then KILL
  local name="$1" pid="$2"
  info "stopping Airflow $name (pid $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
}

stop() {
  local c stopped=0
  # The scheduler first (its LocalExecutor's running tasks still reach the API server while they end), the
  # API server last.
  for c in scheduler triggerer dag-processor api-server; do
    if component_running "$c"; then stop_pid "$c" "$(pid_of "$c")"; stopped=1; fi
    rm -f "$RUNDIR/$c.pid"
  done
  # An `airflow standalone` started by an older version of this script.
  if [ -f "$AIRFLOW_HOME/standalone.pid" ]; then
    local pid; pid="$(cat "$AIRFLOW_HOME/standalone.pid")"
    if kill -0 "$pid" 2>/dev/null; then stop_pid standalone "$pid"; stopped=1; fi
    rm -f "$AIRFLOW_HOME/standalone.pid"
  fi
  [ "$stopped" = 1 ] || info "Airflow is not running"
}

status() {
  local c down=()
  for c in "${COMPONENTS[@]}"; do component_running "$c" || down+=("$c"); done
  if [ "${#down[@]}" = 0 ] && healthy; then
    echo "airflow: running on http://localhost:$PORT (metadata DB $AIRFLOW_METADATA_DB, LocalExecutor x$AIRFLOW__CORE__PARALLELISM)"
  elif any_running; then
    echo "airflow: degraded (not running: ${down[*]:-none}; health: $(curl -fsS "http://127.0.0.1:$PORT/api/v2/monitor/health" 2>/dev/null || echo 'no answer'))"; return 1
  else
    echo "airflow: stopped"; return 1
  fi
}

case "${1:-}" in
  start|stop|drop-db) mkdir -p "$AIRFLOW_HOME"; hold_lock "$AIRFLOW_HOME/.lock" "scripts/airflow.sh $1" ;;
esac
case "${1:-}" in
  init) init ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  drop-db) stop; metadata_db drop ;;
  run) shift; init; exec "$AF" "$@" ;;
  *) echo "usage: $0 init|start|stop|status|drop-db|run <airflow args>" >&2; exit 2 ;;
esac
