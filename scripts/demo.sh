#!/usr/bin/env bash
# The README's first command (`make demo [HOUR=2026-11-27T10:00:00Z]`): sets up what is missing (venv, PostgreSQL,
# Kafka, the local DummyJSON server, Airflow's metadata DB), runs the pipeline for one hour through Airflow
# itself (`airflow dags test`: extract -> bronze -> dbt), then prints a summary of the gold tables.
# Offline: the DummyJSON API is the project's local server. Default hour: the last complete UTC hour.
source "$(dirname "$0")/common.sh"

HOUR="${1:-${HOUR:-$(date -u -d '1 hour ago' +%Y-%m-%dT%H:00:00+00:00)}}"
HOUR="$(date -u -d "$HOUR" +%Y-%m-%dT%H:00:00+00:00)" || die "HOUR=$HOUR is not a date; use e.g. 2026-11-27T10:00:00Z"
# A manual run (`airflow dags test`) at time T processes the hour that ended at T (its data interval), exactly
# like the scheduled run at T: so hour H is run at H+1h.
RUN_AT="$(date -u -d "$HOUR + 1 hour" +%Y-%m-%dT%H:00:00+00:00)"
started=$(date +%s)

"$ROOT/scripts/services.sh" up
"$ROOT/scripts/airflow.sh" init

run_dag() {
  local dag_id="$1" t0=$(date +%s)
  shift
  if [ ! -f "$ROOT/dags/$dag_id.py" ]; then
    echo "-- $dag_id: not built yet (dags/$dag_id.py is missing); skipped" >&2
    return 0
  fi
  info "airflow dags test $dag_id $RUN_AT"
  local log="$AIRFLOW_HOME/logs/demo-$dag_id.log"
  if ! "$ROOT/scripts/airflow.sh" run dags test "$dag_id" "$RUN_AT" "$@" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    die "$dag_id failed for $HOUR; full log: $log"
  fi
  # `dags test` exits 0 even when a task failed: check the run's final state in its output.
  if grep -qE "DagRun Finished: .*state=failed|Marking run .* failed" "$log"; then
    grep -E "ERROR|Failed|failed" "$log" | tail -n 30 >&2
    die "$dag_id: the run failed for $HOUR; full log: $log"
  fi
  info "$dag_id done in $(( $(date +%s) - t0 )) s"
}

run_dag shopstream_extract
run_dag shopstream_bronze
# The dbt DAG's last task reconciles the demo's hour across Kafka, bronze, silver and gold (shopstream.reconcile).
run_dag shopstream_dbt --conf "{\"reconcile_hours\": [\"$HOUR\"]}"

"$VENV/bin/python" -m shopstream.summary --hour "$HOUR" || die "could not print the gold summary"
echo "demo finished in $(( $(date +%s) - started )) s (hour $HOUR). Explore: make psql, make airflow"

# After the summary, so the hour above never waits for them: the dbt docs (lineage graph, models, columns) that the
# Airflow UI shows under Browse -> dbt Docs. A failure here is reported, not fatal: the hour is done.
docs_t0=$(date +%s)
if "$VENV/bin/python" -m shopstream.dbt.docs; then
  info "dbt docs done in $(( $(date +%s) - docs_t0 )) s"
else
  echo "-- the dbt docs were not generated (the hour is fine): see the error above" >&2
fi
web="http://localhost:${AIRFLOW_WEB_PORT:-8080}"
if "$ROOT/scripts/airflow.sh" status >/dev/null 2>&1; then state="running"; else state="not running: make airflow"; fi
echo "Airflow UI: $web ($state)"
echo "dbt docs and lineage: $web/cosmos/shopstream/dbt_docs_index.html (Airflow login; in the UI: Browse -> dbt Docs, $web/plugin/dbt-docs)"
# The dashboards on gold and the pipeline's health (Superset, `make bi`; its state is shown as for the Airflow UI).
bi="http://localhost:${SUPERSET_PORT:-8088}"
if "$ROOT/scripts/superset.sh" status >/dev/null 2>&1; then bi_state="running"; else bi_state="not running: make bi"; fi
echo "Dashboards: $bi/superset/dashboard/pipeline-health/ ($bi_state; Superset login; also $bi/superset/dashboard/sales/ and $bi/superset/dashboard/clickstream/)"
