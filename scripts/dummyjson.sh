#!/usr/bin/env bash
# The local DummyJSON-compatible API (plugins/shopstream/dummyjson_stub/) for the offline demo and the
# Airflow UI, on the host/port of AIRFLOW_CONN_DUMMYJSON_API (DUMMYJSON_HOST/DUMMYJSON_PORT from common.sh).
# Usage: scripts/dummyjson.sh start|stop|restart|status   — start/stop are idempotent; two at once wait for
# each other (a lock in .local/dummyjson/).
#   start    serve SHOPSTREAM_DUMMYJSON_DATA (relative to the repo root; DummyJSON's users/products/carts.json)
#            or, when that folder is missing, a generated catalogue (fixed seed); wait until it answers
#   stop     SIGTERM, SIGKILL after 10 s as a last resort
#   status   running/stopped, URL, data source; exit 1 when stopped
# Pid file and log: .local/dummyjson/. When the connection points at a remote host (the real dummyjson.com)
# there is nothing to run and every command says so.
# Optional environment: SHOPSTREAM_DUMMYJSON_RATE_LIMIT (requests per 10 s per client, default 100, 0 = off),
# SHOPSTREAM_DUMMYJSON_FAULTS (fault-injection spec, JSON or @file; see plugins/shopstream/dummyjson_stub/fault_rules.py),
# DUMMYJSON_START_TIMEOUT (s, default 30).
source "$(dirname "$0")/common.sh"

DROOT="$LOCAL/dummyjson"
PIDFILE="$DROOT/server.pid"
LOG="$DROOT/server.log"
MODULE=shopstream.dummyjson_stub
SEED=42
GENERATED_SIZES="users=208,products=194,carts=208"
RATE_LIMIT="${SHOPSTREAM_DUMMYJSON_RATE_LIMIT:-100}"
START_TIMEOUT="${DUMMYJSON_START_TIMEOUT:-30}"
HOST="${DUMMYJSON_HOST#*://}"; HOST="${HOST%%/*}"; HOST="${HOST%%:*}"
PORT="$DUMMYJSON_PORT"
URL="http://$HOST:$PORT"
mkdir -p "$DROOT"

is_local_host() { case "$HOST" in 127.*|localhost|0.0.0.0|::1|'') return 0 ;; *) return 1 ;; esac; }

# is_our_server PID -> true when PID is a live server of this module listening on our port.
is_our_server() { command_line "${1:-}" | grep -qE -- "-m $MODULE .*--port $PORT( |$)"; }

# server_pid -> the running server's pid (empty when stopped); see daemon_pid in common.sh.
server_pid() { daemon_pid "$PIDFILE" "$PORT" is_our_server; }

answers() { curl -sf -m 2 "$URL/__health" >/dev/null 2>&1; }

# data_args -> the server's data arguments, one per line (a folder path may hold spaces).
data_args() {
  local data="${SHOPSTREAM_DUMMYJSON_DATA:-../shared/dummyjson}"
  case "$data" in /*) ;; *) data="$ROOT/$data" ;; esac
  if [ -f "$data/users.json" ] && [ -f "$data/products.json" ] && [ -f "$data/carts.json" ]; then
    printf '%s\n' --data "$(cd "$data" && pwd)"
  else
    info "no DummyJSON snapshot in $data; serving a generated catalogue ($GENERATED_SIZES, seed $SEED)"
    printf '%s\n' --generate "$GENERATED_SIZES" --seed "$SEED"
  fi
}

start() {
  if ! is_local_host; then
    info "AIRFLOW_CONN_DUMMYJSON_API points at $HOST (not this machine); no local server to start"
    return
  fi
  [ -x "$VENV/bin/python" ] || die "the project venv is missing ($VENV). Run scripts/bootstrap.sh first."
  local pid; pid="$(server_pid)"
  if [ -n "$pid" ]; then
    answers || die "the DummyJSON server (pid $pid) does not answer on $URL; see $LOG"
    info "DummyJSON server already running on $URL (pid $pid); nothing to start"
    return
  fi
  if port_in_use "$PORT"; then
    die "port $PORT (DummyJSON server, from AIRFLOW_CONN_DUMMYJSON_API in .env) is taken by $(port_owner "$PORT" || true)
       (not this project's server). Stop that process, or change the port in .env."
  fi
  local args; mapfile -t args < <(data_args)
  info "starting the DummyJSON-compatible server on $URL (${args[*]}, rate limit $RATE_LIMIT/10s)"
  echo "---- $(date -u +%FT%TZ) start" >>"$LOG"
  PYTHONPATH="$ROOT/plugins" nohup "$VENV/bin/python" -m "$MODULE" --host "$HOST" --port "$PORT" \
    "${args[@]}" --rate-limit "$RATE_LIMIT" --access-log >>"$LOG" 2>&1 </dev/null 8>&- &
  pid=$!
  echo "$pid" >"$PIDFILE"
  local waited=0
  until answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PIDFILE"
      tail -n 15 "$LOG" >&2
      die "the DummyJSON server exited during start-up (log above; full log $LOG)"
    fi
    if [ "$waited" -ge $((START_TIMEOUT * 10)) ]; then
      die "the DummyJSON server (pid $pid) did not answer on $URL within ${START_TIMEOUT}s; see $LOG"
    fi
    sleep 0.1; waited=$((waited + 1))
  done
  info "DummyJSON server is up on $URL (pid $pid)"
}

stop() {
  if ! is_local_host; then info "AIRFLOW_CONN_DUMMYJSON_API points at $HOST; no local server to stop"; return; fi
  local pid; pid="$(server_pid)"
  if [ -z "$pid" ]; then info "DummyJSON server is not running"; return; fi
  info "stopping the DummyJSON server (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    info "still running after 10 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
}

status() {
  if ! is_local_host; then echo "dummyjson: remote API at $HOST (no local server)"; return; fi
  local pid; pid="$(server_pid)"
  if [ -n "$pid" ] && answers; then
    local health; health="$(curl -sf -m 2 "$URL/__health")"
    echo "dummyjson: running on $URL (pid $pid) $health"
  elif [ -n "$pid" ]; then
    echo "dummyjson: pid $pid is running but $URL does not answer; see $LOG"; return 1
  else
    echo "dummyjson: stopped"; return 1
  fi
}

case "${1:-}" in
  start|stop|restart) hold_lock "$DROOT/.lock" "scripts/dummyjson.sh $1" ;;
esac
case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) status ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
