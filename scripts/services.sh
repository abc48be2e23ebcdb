#!/usr/bin/env bash
# All local services at once: PostgreSQL, Kafka, the DummyJSON-compatible server (`down` and `status` also cover
# Airflow and Superset, which `make airflow` / `make bi` start).
# Usage: scripts/services.sh up|down|status
source "$(dirname "$0")/common.sh"
S="$ROOT/scripts"
case "${1:-}" in
  up)
    "$S/bootstrap.sh"
    "$S/postgres.sh" start
    "$S/kafka.sh" start
    "$S/dummyjson.sh" start
    ;;
  down)
    [ -x "$S/airflow.sh" ] && "$S/airflow.sh" stop || true
    "$S/superset.sh" stop || true
    "$S/dummyjson.sh" stop || true
    "$S/kafka.sh" stop || true
    "$S/postgres.sh" stop || true
    ;;
  status)
    rc=0
    "$S/postgres.sh" status || rc=1
    "$S/kafka.sh" status || rc=1
    "$S/dummyjson.sh" status || rc=1
    "$S/airflow.sh" status || true
    "$S/superset.sh" status || true
    exit $rc
    ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
