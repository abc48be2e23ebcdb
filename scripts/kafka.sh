#!/usr/bin/env bash
# The project's own single-node Apache Kafka broker (KRaft, combined broker+controller) under .local/kafka,
# run from Apache Kafka's jars resolved from Maven Central by tools/kafka/pom.xml (no Docker, no tarball).
# Usage: scripts/kafka.sh start|stop|restart|status|topics   — start/stop are idempotent.
#   start    resolve the jars (once per version), format the storage (once), start the broker, wait until it
#            answers a metadata request, ensure the topics customers/products/orders/events exist
#   stop     SIGTERM (clean shutdown, up to 30 s), SIGKILL as a last resort; data in .local/kafka/data stays
#   status   running/stopped, bootstrap address, topic/partition counts; exit 1 when stopped
#   topics   (re)create the four project topics if missing (broker must be running)
# Optional environment: KAFKA_HEAP_OPTS (default "-Xms256m -Xmx512m"), KAFKA_START_TIMEOUT (s, default 60).
source "$(dirname "$0")/common.sh"

KROOT="$LOCAL/kafka"
LIBS="$KROOT/libs"
DATA="$KROOT/data"
LOGDIR="$KROOT/logs"
PROPS="$KROOT/server.properties"
PIDFILE="$KROOT/kafka.pid"
CLUSTER_ID_FILE="$KROOT/cluster.id"
POM="$ROOT/tools/kafka/pom.xml"
BROKER_CONFIG="$ROOT/tools/kafka/broker_config.py"
ADMIN_PY="$ROOT/tools/kafka/kafka_admin.py"

KAFKA_VERSION="${SHOPSTREAM_KAFKA_VERSION:-4.1.1}"
CONTROLLER_PORT="${SHOPSTREAM_KAFKA_CONTROLLER_PORT:-59093}"
PARTITIONS="${SHOPSTREAM_KAFKA_PARTITIONS:-3}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
TOPICS=(customers products orders events)

BROKER_MAIN=kafka.Kafka               # in kafka_2.13-<version>.jar
STORAGE_MAIN=kafka.tools.StorageTool  # same jar; what bin/kafka-storage.sh runs

mkdir -p "$KROOT"

# ---------------------------------------------------------------------------------------------- helpers

# is_our_broker PID -> true when PID is a live broker JVM started with our server.properties.
# (A zombie or a reused PID has another/empty command line, so a stale pid file never matches.)
is_our_broker() { command_line "${1:-}" | grep -qF -- "$BROKER_MAIN $PROPS"; }

# broker_pid -> prints the running broker's pid (empty when stopped); see daemon_pid in common.sh.
broker_pid() { daemon_pid "$PIDFILE" "$KAFKA_PORT" is_our_broker; }

require_venv() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import confluent_kafka' 2>/dev/null \
    || die "the project venv with confluent-kafka is missing ($VENV). Run scripts/bootstrap.sh first."
}

admin() { "$VENV/bin/python" "$ADMIN_PY" "$@"; }

require_java() {
  command -v java >/dev/null \
    || die "java not found. Kafka $KAFKA_VERSION needs Java 17+: 'apt-get install openjdk-17-jre-headless'
       (Debian/Ubuntu), or put a JDK 17+ 'java' on PATH."
  local v major
  v="$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -1)"
  major="${v%%.*}"; [ "$major" = 1 ] && major="$(echo "$v" | cut -d. -f2)"
  [ -n "$major" ] && [ "$major" -ge 17 ] 2>/dev/null \
    || die "java on PATH is version '${v:-unknown}'; Kafka $KAFKA_VERSION needs Java 17+.
       Install openjdk-17-jre-headless and make it the default java (update-alternatives --config java)."
}

# Jars: resolved once per (Kafka version, pom) into .local/kafka/libs; ~/.m2 caches the downloads.
ensure_libs() {
  local stamp="$LIBS/.resolved" want
  want="kafka=$KAFKA_VERSION pom=$(sha256sum "$POM" | cut -c1-16)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  command -v mvn >/dev/null \
    || die "mvn not found; it resolves Kafka's jars from Maven Central once. Install it: 'apt-get install maven'."
  mkdir -p "$LOGDIR"
  info "resolving Apache Kafka $KAFKA_VERSION jars from Maven Central (once; cached in ~/.m2 and $LIBS)"
  local tmp="$KROOT/libs.tmp"
  rm -rf "$tmp"
  if ! mvn -B -q -f "$POM" -Dkafka.version="$KAFKA_VERSION" \
        dependency:copy-dependencies -DoutputDirectory="$tmp" >"$LOGDIR/mvn.log" 2>&1; then
    tail -n 30 "$LOGDIR/mvn.log" >&2
    die "Maven could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (full output: $LOGDIR/mvn.log).
       Check access to Maven Central (repo.maven.apache.org) and SHOPSTREAM_KAFKA_VERSION in .env."
  fi
  ls "$tmp"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1 || die "kafka_2.13-$KAFKA_VERSION.jar missing after resolve"
  rm -rf "$LIBS"; mv "$tmp" "$LIBS"
  echo "$want" >"$stamp"
  info "$(ls "$LIBS"/*.jar | wc -l) jars in $LIBS"
}

# The broker's JVM options and server.properties come from tools/kafka/broker_config.py, the one source of
# every broker's settings (the tests' private brokers in tests/support/private_services.py use it too).
# java_opts: fills JAVA_OPTS (heap from KAFKA_HEAP_OPTS, our log4j2 config and log folder).
java_opts() {
  local out
  out="$(python3 "$BROKER_CONFIG" jvm-options --heap "$HEAP_OPTS" --logs "$LOGDIR")" \
    || die "tools/kafka/broker_config.py could not build the JVM options"
  mapfile -t JAVA_OPTS <<<"$out"
}

# server.properties is regenerated on every start from .env (ports, partitions); the data stays.
write_properties() {
  python3 "$BROKER_CONFIG" properties --port "$KAFKA_PORT" --controller-port "$CONTROLLER_PORT" \
      --data "$DATA" --partitions "$PARTITIONS" --output "$PROPS" \
      --header "Generated by scripts/kafka.sh (tools/kafka/broker_config.py) from .env on every start: edit .env
or tools/kafka/broker_config.py, not this file. Single-node KRaft: broker and its only controller." \
    || die "tools/kafka/broker_config.py could not write $PROPS"
}

# Storage is formatted once; .local/kafka/cluster.id keeps the id (reused if data/ is ever wiped).
ensure_formatted() {
  if [ -f "$DATA/meta.properties" ]; then
    if [ ! -s "$CLUSTER_ID_FILE" ]; then
      sed -n 's/^cluster\.id=//p' "$DATA/meta.properties" >"$CLUSTER_ID_FILE"
    fi
    return
  fi
  if [ ! -s "$CLUSTER_ID_FILE" ]; then
    # Kafka's Uuid text form: 16 random bytes, URL-safe base64 without padding, never starting with '-'.
    python3 -c '
import base64, os
while True:
    s = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
    if not s.startswith("-"):
        print(s); break' >"$CLUSTER_ID_FILE"
  fi
  local cid; cid="$(cat "$CLUSTER_ID_FILE")"
  mkdir -p "$DATA" "$LOGDIR"
  info "formatting KRaft storage in $DATA (cluster id $cid)"
  java "${JAVA_OPTS[@]}" -cp "$LIBS/*" "$STORAGE_MAIN" format --config "$PROPS" --cluster-id "$cid" \
      --ignore-formatted >"$LOGDIR/format.log" 2>&1 \
    || { cat "$LOGDIR/format.log" >&2; die "formatting the Kafka storage failed; see $LOGDIR/format.log"; }
}

check_port_free() {  # PORT WHAT SETTING
  if port_in_use "$1"; then
    local owner; owner="$(port_owner "$1" || true)"
    die "port $1 ($2, from $3 in .env) is taken by ${owner:-another process}, not this project's broker.
       Stop that process, or change $3 in .env."
  fi
}

# ---------------------------------------------------------------------------------------------- commands

start() {
  require_venv
  local pid; pid="$(broker_pid)"
  if [ -n "$pid" ]; then
    info "Kafka already running on $KAFKA_BOOTSTRAP (pid $pid); nothing to start"
    admin wait "$KAFKA_BOOTSTRAP" "$START_TIMEOUT" "$pid" || die "the running broker (pid $pid) does not answer; see $LOGDIR/server.log"
    ensure_topics
    return
  fi
  require_java
  check_port_free "$KAFKA_PORT" "Kafka broker" "AIRFLOW_CONN_KAFKA_DEFAULT"
  check_port_free "$CONTROLLER_PORT" "Kafka KRaft controller" "SHOPSTREAM_KAFKA_CONTROLLER_PORT"
  ensure_libs
  mkdir -p "$DATA" "$LOGDIR"
  java_opts
  write_properties
  ensure_formatted

  reserve_ports

  local attempt rc
  for attempt in 1 2 3; do
    launch
    pid="$(cat "$PIDFILE")"
    rc=0
    admin wait "$KAFKA_BOOTSTRAP" "$START_TIMEOUT" "$pid" || rc=$?
    [ "$rc" = 0 ] && break
    # A port inside the kernel's ephemeral range can be taken, in the seconds before the broker binds it
    # (the broker listener binds last, after log recovery), by some outgoing connection's source port, or
    # by a client retrying 127.0.0.1:PORT that TCP-self-connects (see reserve_ports). Such a socket goes
    # away (at the latest ~60 s later, when its TIME-WAIT ends): wait for the port to clear, then retry.
    if [ "$rc" = 2 ] && [ "$attempt" -lt 3 ] && new_log_lines \
        | grep -E "failed to bind to 127\.0\.0\.1:($KAFKA_PORT|$CONTROLLER_PORT): Address already in use" >/dev/null; then
      info "a port was briefly held by another socket when the broker bound it; retrying ($attempt/3):"
      ss -tanpH "( sport = :$KAFKA_PORT or sport = :$CONTROLLER_PORT )" 2>/dev/null | head -3 >&2 || true
      rm -f "$PIDFILE"
      wait_ports_clear 65
      continue
    fi
    echo "---- last 30 lines of $LOGDIR/server.log ----" >&2
    tail -n 30 "$LOGDIR/server.log" 2>/dev/null >&2 || true
    echo "---- last 10 lines of $LOGDIR/kafka.out ----" >&2
    tail -n 10 "$LOGDIR/kafka.out" 2>/dev/null >&2 || true
    local first_error; first_error="$(new_log_lines | grep -m1 -E '^\[[^]]*\] (ERROR|FATAL)' | cut -c1-400 || true)"
    [ -n "$first_error" ] && echo "---- first error: $first_error" >&2
    if [ "$rc" = 2 ]; then
      rm -f "$PIDFILE"
      die "the Kafka broker exited during start-up (logs above; full log $LOGDIR/server.log)"
    fi
    die "Kafka did not answer on $KAFKA_BOOTSTRAP within ${START_TIMEOUT}s (pid $pid left running;
       logs above). 'scripts/kafka.sh stop' to stop it."
  done
  info "Kafka is up on $KAFKA_BOOTSTRAP (pid $pid)"
  ensure_topics
}

# launch: start the broker JVM in the background and write its pid file.
launch() {
  info "starting Kafka $KAFKA_VERSION (KRaft) on $KAFKA_BOOTSTRAP, controller 127.0.0.1:$CONTROLLER_PORT"
  LOG_MARK="$(wc -l <"$LOGDIR/server.log" 2>/dev/null || echo 0)"
  # setsid: own session, so a terminal's Ctrl-C or a test runner's process group does not take the broker
  # down. stdin/stdout/stderr detached (callers capturing our output must not wait for the JVM); the
  # start/stop lock (fd 9) is closed so the broker never holds it.
  setsid nohup java "${JAVA_OPTS[@]}" -cp "$LIBS/*" "$BROKER_MAIN" "$PROPS" \
    </dev/null >>"$LOGDIR/kafka.out" 2>&1 9>&- &
  echo "$!" >"$PIDFILE"
}

# wait_ports_clear SECONDS: until no socket at all (any state) uses the broker/controller ports.
wait_ports_clear() {
  local i
  for i in $(seq 1 "$1"); do
    [ -z "$(ss -tanH "( sport = :$KAFKA_PORT or sport = :$CONTROLLER_PORT )" 2>/dev/null)" ] && return 0
    sleep 1
  done
}

# new_log_lines: server.log written since the last launch (the whole tail if the log rolled meanwhile).
new_log_lines() {
  local now; now="$(wc -l <"$LOGDIR/server.log" 2>/dev/null || echo 0)"
  if [ "$now" -ge "${LOG_MARK:-0}" ]; then tail -n "+$((LOG_MARK + 1))" "$LOGDIR/server.log"
  else tail -n 2000 "$LOGDIR/server.log"; fi 2>/dev/null
}

# Our ports sit inside the kernel's ephemeral port range (32768-60999 by default), so any outgoing connection
# can get one as its source port while the broker is down (restart, crash), and the broker then cannot bind
# it. net.ipv4.ip_local_reserved_ports removes them from automatic assignment (explicit binds still work).
# Done when we may (root, writable sysctl; not persistent across reboots); otherwise a warning.
reserve_ports() {
  local f=/proc/sys/net/ipv4/ip_local_reserved_ports lo hi cur p need=()
  read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || return 0
  cur="$(cat "$f" 2>/dev/null || true)"
  for p in "$KAFKA_PORT" "$CONTROLLER_PORT"; do
    if [ "$p" -ge "$lo" ] && [ "$p" -le "$hi" ] && ! in_port_list "$p" "$cur"; then need+=("$p"); fi
  done
  [ "${#need[@]}" = 0 ] && return 0
  local add; add="$(IFS=,; echo "${need[*]}")"
  if [ -w "$f" ] && echo "${cur:+$cur,}$add" >"$f" 2>/dev/null; then
    info "reserved port(s) $add in net.ipv4.ip_local_reserved_ports (inside the ephemeral range $lo-$hi;
    keeps outgoing connections off the broker's ports while it restarts)"
  else
    info "warning: Kafka port(s) $add are inside the kernel's ephemeral port range ($lo-$hi); an outgoing
    connection may occupy one while the broker restarts. Fix: sysctl -w net.ipv4.ip_local_reserved_ports=$add
    (as root), or choose ports below $lo in .env."
  fi
}

in_port_list() {  # PORT "a,b-c,..."
  local part IFS=,
  for part in $2; do
    case "$part" in
      *-*) [ "$1" -ge "${part%-*}" ] && [ "$1" -le "${part#*-}" ] && return 0 ;;
      "$1") return 0 ;;
    esac
  done
  return 1
}

ensure_topics() {
  admin topics "$KAFKA_BOOTSTRAP" "$PARTITIONS" "${TOPICS[@]}" || die "could not create the Kafka topics"
}

stop() {
  local pid; pid="$(broker_pid)"
  if [ -z "$pid" ]; then
    info "Kafka is not running"
    return
  fi
  info "stopping Kafka (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 300); do           # 30 s: a clean shutdown flushes and closes the logs
    is_our_broker "$pid" || break
    sleep 0.1
  done
  if is_our_broker "$pid"; then
    info "Kafka did not stop within 30 s; sending SIGKILL (the next start recovers the logs)"
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do is_our_broker "$pid" || break; sleep 0.1; done
  fi
  rm -f "$PIDFILE"
}

status() {
  local pid; pid="$(broker_pid)"
  if [ -z "$pid" ]; then
    echo "kafka: stopped (bootstrap $KAFKA_BOOTSTRAP)"
    return 1
  fi
  require_venv
  local version; version="$(sed -n 's/^kafka=\([^ ]*\).*/\1/p' "$LIBS/.resolved" 2>/dev/null || true)"
  echo "kafka: running on $KAFKA_BOOTSTRAP (pid $pid, Kafka ${version:-?} KRaft, controller 127.0.0.1:$CONTROLLER_PORT, data $DATA)"
  admin status "$KAFKA_BOOTSTRAP" "${TOPICS[@]}" || { echo "kafka: running but not answering"; return 1; }
}

topics() {
  require_venv
  [ -n "$(broker_pid)" ] || die "Kafka is not running; start it with scripts/kafka.sh start"
  ensure_topics
}

# start/stop/restart/topics are serialised (two callers starting at once must not launch two brokers).
lock() {
  exec 9>"$KROOT/.lock"
  flock -w 120 9 || die "another scripts/kafka.sh is still running (lock $KROOT/.lock held > 120 s)"
}

case "${1:-}" in
  start) lock; start ;;
  stop) lock; stop ;;
  restart) lock; stop; start ;;
  status) status ;;
  topics) lock; topics ;;
  *) echo "usage: $0 start|stop|restart|status|topics" >&2; exit 2 ;;
esac
