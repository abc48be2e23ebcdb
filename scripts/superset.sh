#!/usr/bin/env bash
# Local Apache Superset (native path, `make bi`): the BI server on gold, with the dashboards as code of
# include/superset/assets/ imported on every start.
#
# - Its own virtualenv .venv-bi from requirements-bi.lock (Superset pins SQLAlchemy 1.4 and pandas 2.1: it cannot
#   share Airflow's .venv), created or synced when the lock changed.
# - Metadata: the PostgreSQL database SUPERSET_METADATA_DB (default `superset`) of the project's cluster, created
#   here and owned by the warehouse role (as Airflow's metadata database); config include/superset/superset_config.py.
# - The warehouse is queried with the analysts' connection AIRFLOW_CONN_ANALYST_DB (read-only, gold only).
# - Login SUPERSET_ADMIN_USER / SUPERSET_ADMIN_PASSWORD and SUPERSET_SECRET_KEY from .env (generated there by
#   scripts/common.sh). Port SUPERSET_PORT (default 8088). Files, pid and logs under SUPERSET_HOME (.local/superset).
# - One gunicorn process (threads, not workers: the machine has 2 cores) serves the UI and runs the charts' queries.
# Usage: scripts/superset.sh start|stop|status|venv   — start and stop are idempotent.
source "$(dirname "$0")/common.sh"

BI_VENV="$ROOT/.venv-bi"
BI_LOCK="$ROOT/requirements-bi.lock"
PORT="${SUPERSET_PORT:-8088}"
export SUPERSET_HOME="${SUPERSET_HOME:-$LOCAL/superset}"
export SUPERSET_CONFIG_PATH="$ROOT/include/superset/superset_config.py"
export SUPERSET_METADATA_DB="${SUPERSET_METADATA_DB:-superset}"
export FLASK_APP=superset
LOGDIR="$SUPERSET_HOME/logs"
PIDFILE="$SUPERSET_HOME/gunicorn.pid"
START_TIMEOUT="${SUPERSET_START_TIMEOUT:-180}"

: "${SUPERSET_ADMIN_USER:?SUPERSET_ADMIN_USER is not set: set it in .env (see .env.example)}"
: "${SUPERSET_ADMIN_PASSWORD:?SUPERSET_ADMIN_PASSWORD is not set: set it in .env (see .env.example)}"
: "${SUPERSET_SECRET_KEY:?SUPERSET_SECRET_KEY is not set: set it in .env (see .env.example)}"

# .venv-bi from requirements-bi.lock with uv (as scripts/bootstrap.sh does for .venv), when missing or stale.
ensure_venv() {
  local stamp="$BI_VENV/.lock-installed"
  if [ -f "$stamp" ] && cmp -s "$stamp" "$BI_LOCK"; then return; fi
  local uv; uv="$(command -v uv || true)"
  if [ -z "$uv" ]; then
    info "installing uv (the installer used for requirements-bi.lock)"
    python3 -m pip install --quiet --disable-pip-version-check uv || die "could not pip install uv; check access to PyPI."
    uv="$(python3 -c 'import shutil; print(shutil.which("uv") or "")')"
    [ -n "$uv" ] || die "uv was installed but is not on PATH; add pip's script folder to PATH."
  fi
  if [ ! -x "$BI_VENV/bin/python" ]; then
    info "creating .venv-bi (Python 3.11) for Superset"
    "$uv" venv --quiet --python 3.11 "$BI_VENV" || die "could not create $BI_VENV with Python 3.11"
  fi
  info "installing requirements-bi.lock into .venv-bi"
  VIRTUAL_ENV="$BI_VENV" "$uv" pip sync --quiet "$BI_LOCK" || die "uv pip sync of requirements-bi.lock failed; see above."
  cp "$BI_LOCK" "$stamp"
}

pid() { cat "$PIDFILE" 2>/dev/null; }
running() { local p; p="$(pid)"; [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
healthy() { [ "$(curl -fsS --max-time 5 "http://127.0.0.1:$PORT/health" 2>/dev/null)" = OK ]; }

# Metadata database, migrations, roles (once per lock and database), admin login, the dashboards' import.
provision() {
  "$ROOT/scripts/postgres.sh" status >/dev/null 2>&1 || "$ROOT/scripts/postgres.sh" start
  "$ROOT/scripts/postgres.sh" createdb "$SUPERSET_METADATA_DB" \
    || die "could not create Superset's metadata database $SUPERSET_METADATA_DB"
  local stamp="$SUPERSET_HOME/.initialised-$(sha1sum "$BI_LOCK" | cut -c1-12)-$SUPERSET_METADATA_DB" init=()
  [ -f "$stamp" ] || init=(--init)
  info "Superset: migrating $SUPERSET_METADATA_DB${init:+, syncing roles}, importing the dashboards (log: $LOGDIR/provision.log)"
  "$BI_VENV/bin/python" "$ROOT/include/superset/provision.py" "${init[@]}" >"$LOGDIR/provision.log" 2>&1 \
    || { tail -n 30 "$LOGDIR/provision.log" >&2; die "Superset's setup failed; see $LOGDIR/provision.log"; }
  touch "$stamp"
}

start() {
  mkdir -p "$LOGDIR"
  ensure_venv
  provision
  if running; then
    healthy && { echo "Superset: running on http://localhost:$PORT (dashboards re-imported)"; return; }
  else
    port_in_use "$PORT" && die "port $PORT is taken by $(port_owner "$PORT" || echo 'another process'); stop it or set SUPERSET_PORT in .env."
    info "starting Superset on http://localhost:$PORT (log: $LOGDIR/superset.log)"
    setsid nohup "$BI_VENV/bin/gunicorn" --bind "127.0.0.1:$PORT" --workers 1 --worker-class gthread --threads 8 \
      --timeout 120 --limit-request-line 0 --limit-request-field_size 0 "superset.app:create_app()" \
      >"$LOGDIR/superset.log" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
  fi
  local i
  for i in $(seq 1 "$START_TIMEOUT"); do
    healthy && break
    running || { tail -n 40 "$LOGDIR/superset.log" >&2; die "Superset exited during start-up; see $LOGDIR/superset.log"; }
    sleep 1
  done
  healthy || { tail -n 40 "$LOGDIR/superset.log" >&2; die "Superset did not answer /health in $START_TIMEOUT s; see $LOGDIR/superset.log"; }
  echo "Superset: http://localhost:$PORT   login: $SUPERSET_ADMIN_USER / (SUPERSET_ADMIN_PASSWORD in .env)   dashboards: Pipeline health, Sales, Clickstream"
}

stop() {
  if running; then
    local p; p="$(pid)"
    info "stopping Superset (pid $p)"
    kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$p" 2>/dev/null || true
  else
    info "Superset is not running"
  fi
  rm -f "$PIDFILE"
}

status() {
  if running && healthy; then
    echo "superset: running on http://localhost:$PORT (metadata DB $SUPERSET_METADATA_DB)"
  elif running; then
    echo "superset: starting or unhealthy (pid $(pid), no OK from /health)"; return 1
  else
    echo "superset: stopped"; return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  venv) ensure_venv ;;
  *) echo "usage: $0 start|stop|status|venv" >&2; exit 2 ;;
esac
