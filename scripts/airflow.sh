#!/usr/bin/env bash
# Local Airflow (native path): AIRFLOW_HOME under .local/airflow, SQLite metadata DB, the project's dags/ and
# plugins/, connections from .env (AIRFLOW_CONN_*), the UI login from .env (AIRFLOW_ADMIN_USER/PASSWORD).
# Usage: scripts/airflow.sh init|start|stop|status|run <airflow args>
source "$(dirname "$0")/common.sh"

AF="$VENV/bin/airflow"
PIDFILE="$AIRFLOW_HOME/standalone.pid"
LOGFILE="$AIRFLOW_HOME/logs/standalone.log"
PORT="${AIRFLOW_WEB_PORT:-8080}"

: "${AIRFLOW_ADMIN_USER:?AIRFLOW_ADMIN_USER is not set: set it in .env (see .env.example)}"
: "${AIRFLOW_ADMIN_PASSWORD:?AIRFLOW_ADMIN_PASSWORD is not set: set it in .env (see .env.example)}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${AIRFLOW_ADMIN_USER}:admin"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/passwords.json"
export AIRFLOW__API__PORT="$PORT"
export AIRFLOW__API__BASE_URL="http://localhost:$PORT"
export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK=True
# A quick local loop: the dag processor rescans often, the scheduler looks for work often.
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-30}"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="${AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION:-True}"

init() {
  "$ROOT/scripts/bootstrap.sh"
  mkdir -p "$AIRFLOW_HOME/logs"
  # The UI password comes from .env, never a generated default.
  python3 -c 'import json,os,sys; json.dump({os.environ["AIRFLOW_ADMIN_USER"]: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, open(sys.argv[1],"w"))' \
    "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
  chmod 600 "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
  local stamp="$AIRFLOW_HOME/.migrated-$(sha1sum "$ROOT/requirements.lock" | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    info "migrating the Airflow metadata database ($AIRFLOW_HOME/airflow.db)"
    "$AF" db migrate >"$AIRFLOW_HOME/logs/db-migrate.log" 2>&1 || die "airflow db migrate failed; see $AIRFLOW_HOME/logs/db-migrate.log"
    touch "$stamp"
  fi
}

is_running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

start() {
  init
  if is_running; then
    info "Airflow already running (pid $(cat "$PIDFILE"))"
  else
    if port_in_use "$PORT"; then
      die "port $PORT is taken by $(port_owner "$PORT" || echo 'another process'); stop it or set AIRFLOW_WEB_PORT in .env."
    fi
    info "starting Airflow (api-server, scheduler, dag-processor, triggerer) on http://localhost:$PORT"
    setsid nohup "$AF" standalone >"$LOGFILE" 2>&1 < /dev/null &
    echo $! >"$PIDFILE"
    local i
    for i in $(seq 1 120); do
      if curl -fsS "http://127.0.0.1:$PORT/api/v2/monitor/health" >/dev/null 2>&1; then break; fi
      is_running || { tail -n 40 "$LOGFILE" >&2; die "Airflow exited during start-up; see $LOGFILE"; }
      sleep 1
    done
    curl -fsS "http://127.0.0.1:$PORT/api/v2/monitor/health" >/dev/null 2>&1 \
      || { tail -n 40 "$LOGFILE" >&2; die "Airflow did not become healthy in 120 s; see $LOGFILE"; }
  fi
  echo "Airflow UI: http://localhost:$PORT   login: $AIRFLOW_ADMIN_USER / (AIRFLOW_ADMIN_PASSWORD in .env)"
}

stop() {
  if is_running; then
    local pid; pid="$(cat "$PIDFILE")"
    info "stopping Airflow (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  else
    info "Airflow is not running"
  fi
  rm -f "$PIDFILE"
}

status() {
  if is_running && curl -fsS "http://127.0.0.1:$PORT/api/v2/monitor/health" >/dev/null 2>&1; then
    echo "airflow: running on http://localhost:$PORT (pid $(cat "$PIDFILE"))"
  else
    echo "airflow: stopped"; return 1
  fi
}

case "${1:-}" in
  init) init ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  run) shift; init; exec "$AF" "$@" ;;
  *) echo "usage: $0 init|start|stop|status|run <airflow args>" >&2; exit 2 ;;
esac
