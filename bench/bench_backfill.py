"""Live-Airflow benchmark: wall time of the whole pipeline under a real scheduler (scripts/airflow.sh: api-server,
scheduler with the LocalExecutor, dag-processor, triggerer; PostgreSQL metadata database).

Set-up (like tests/e2e/test_backfill_clear.py): an Airflow of its own (AIRFLOW_HOME .local/airflow-bench, a free
port, its own metadata database), a fresh warehouse database, fresh Kafka topics, the embedded DummyJSON server
(the snapshot), every DAG paused at creation.

1. **one hour, cold**: unpause bronze and dbt, then the extract DAG; the scheduler creates the run of the last
   complete hour. Time from that run's creation to the success of the `reconcile` task of the dbt run that
   reconciled the hour (extract -> Asset events -> bronze -> Asset event -> dbt, 41 tasks, into empty tables).
2. **one hour, warm**: a manual extract run with the current hour as logical date (it processes the last complete
   hour again, the usual re-run; it also takes the next scheduled slot, so no scheduled run interferes with 3).
   BENCH_BACKFILL_WARM=0 skips it (a scheduled run may then join 3 when it crosses the top of an hour: counted
   in `backfill_scheduled_extract_runs`).
3. **24-hour backfill** (BENCH_BACKFILL_HOURS, quick: 6) of the hours before: `POST /api/v2/backfills`
   (reprocess none, max_active_runs 3) until every run of the three DAGs finished and every hour was reconciled.

Figures: seconds of each phase, runs per DAG, and the dbt DAG's per-task overhead (mean task duration, mean
queued -> running latency, wall per dbt run). Run it with `make bench ONLY=backfill` (or
`.venv/bin/python bench/run.py` with ONLY=backfill); it is not part of the test suite (~15-45 min).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (str(ROOT), str(ROOT / "plugins")):
    if p not in sys.path:
        sys.path.insert(0, p)

DAG_IDS = ("shopstream_extract", "shopstream_bronze", "shopstream_dbt")
PARSE = "%Y-%m-%dT%H:%M:%S.%f%z"


def _project_env() -> None:
    """The environment scripts/common.sh builds (.env, ports derived from the connections)."""
    out = subprocess.run(["bash", "-c", f"source {ROOT / 'scripts' / 'common.sh'} && env -0"], check=True,
                         capture_output=True).stdout
    for item in out.split(b"\0"):
        if b"=" in item:
            key, _, value = item.partition(b"=")
            os.environ.setdefault(key.decode(), value.decode())


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _admin_dsn() -> str:
    return (f"host={Path(os.environ['SHOPSTREAM_PG_ROOT']) / 'run'} port={os.environ['PGPORT']} user=postgres "
            f"dbname=postgres")


def _dbt_overhead(airflow, runs: list[dict]) -> dict:
    durations, latencies, walls, tasks = [], [], [], 0
    for run in runs:
        tis = airflow.task_instances("shopstream_dbt", run["dag_run_id"])
        tasks = max(tasks, len(tis))
        for ti in tis:
            if ti.get("duration") is not None:
                durations.append(ti["duration"])
            start, queued = _ts(ti.get("start_date")), _ts(ti.get("queued_when"))
            if start and queued:
                latencies.append((start - queued).total_seconds())
        start, end = _ts(run.get("start_date")), _ts(run.get("end_date"))
        if start and end:
            walls.append((end - start).total_seconds())
    return {
        "dbt_runs": len(runs),
        "dbt_tasks_per_run": tasks,
        "dbt_task_mean_s": round(statistics.mean(durations), 2) if durations else None,
        "dbt_task_queued_to_running_mean_s": round(statistics.mean(latencies), 2) if latencies else None,
        "dbt_run_wall_mean_s": round(statistics.mean(walls), 1) if walls else None,
    }


def _reconcile_end(airflow, run: dict) -> tuple[datetime | None, list[str]]:
    ti = next((t for t in airflow.task_instances("shopstream_dbt", run["dag_run_id"]) if t["task_id"] == "reconcile"),
              None)
    if ti is None or ti["state"] != "success":
        return None, []
    summary = airflow.xcom("shopstream_dbt", run["dag_run_id"], "reconcile")
    assert summary["ok"], summary
    return _ts(ti["end_date"]), list(summary["hours"])


def _wait_hour_reconciled(airflow, hour: str, since: set[str], timeout: float) -> tuple[datetime, dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in airflow.runs("shopstream_dbt"):
            if run["dag_run_id"] in since or run["state"] != "success":
                continue
            end, hours = _reconcile_end(airflow, run)
            if end and hour in hours:
                return end, run
        time.sleep(3)
    raise TimeoutError(f"hour {hour} not reconciled after {timeout} s: {airflow.snapshot()}")


def run(quick: bool) -> list[dict]:
    _project_env()
    import psycopg
    from shopstream.dummyjson.server import DummyJSONServer, resolve_catalog

    from tests.e2e.harness import (
        LiveAirflow,
        create_warehouse_and_topics,
        current_hour,
        drop_warehouse_and_topics,
        iso,
        pipeline_env,
        warehouse_env,
    )

    n_hours = int(os.environ.get("BENCH_BACKFILL_HOURS") or (6 if quick else 24))
    for script in ("postgres.sh", "kafka.sh"):
        subprocess.run([str(ROOT / "scripts" / script), "start"], check=True, capture_output=True)
    bootstrap = os.environ["KAFKA_BOOTSTRAP"]
    server = DummyJSONServer(resolve_catalog(), port=0, rate_limit=None)
    url = server.start()
    db, topics, admin = create_warehouse_and_topics(_admin_dsn(), os.environ["PGUSER"], bootstrap, "bench_bf", "bench",
                                                    int(os.environ.get("SHOPSTREAM_KAFKA_PARTITIONS", 3)))
    env = pipeline_env(topics, url, bootstrap)
    env.update(warehouse_env({"host": os.environ["PGHOST"], "port": os.environ["PGPORT"], "dbname": db,
                              "user": os.environ["PGUSER"], "password": os.environ["PGPASSWORD"]}))
    env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "True"
    env["AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL"] = "600"
    home = ROOT / ".local" / "airflow-bench"
    shutil.rmtree(home, ignore_errors=True)
    airflow = LiveAirflow(home, env)
    figures: dict = {"parallelism": int(os.environ.get("AIRFLOW__CORE__PARALLELISM", 4)), "cpus": os.cpu_count()}
    t = time.monotonic()
    airflow.start()
    try:
        airflow.wait_for_dags()
        figures["airflow_start_s"] = round(time.monotonic() - t, 1)
        current = current_hour(timedelta(minutes=2))
        last = current - timedelta(hours=1)

        # 1. the scheduler's own run of the last complete hour, into empty tables
        for dag_id in reversed(DAG_IDS):
            airflow.unpause(dag_id)
        scheduled = airflow.wait(lambda: [r for r in airflow.runs("shopstream_extract") if r["run_type"] == "scheduled"],
                                 timeout=120, what="the scheduled extract run")[0]
        end, dbt_run = _wait_hour_reconciled(airflow, iso(last), set(), timeout=1800)
        figures["hour_cold_s"] = round((end - _ts(scheduled["queued_at"])).total_seconds(), 1)
        airflow.settled(timeout=1800)
        seen = {r["dag_run_id"] for r in airflow.runs("shopstream_dbt")}
        first_dbt = airflow.runs("shopstream_dbt")

        # 2. the same hour again, by a manual run (the usual re-run); takes the next scheduled slot
        if os.environ.get("BENCH_BACKFILL_WARM", "1") == "1":
            t0 = datetime.now(UTC)
            airflow.trigger("shopstream_extract", logical_date=current)
            end, _ = _wait_hour_reconciled(airflow, iso(last), seen, timeout=1800)
            figures["hour_warm_s"] = round((end - t0).total_seconds(), 1)
            airflow.settled(timeout=1800)
        before = {d: {r["dag_run_id"] for r in airflow.runs(d)} for d in DAG_IDS}

        # 3. the n_hours before, through Airflow's backfill
        first = last - timedelta(hours=n_hours)
        backfill_hours = {iso(first + timedelta(hours=i)) for i in range(n_hours)}
        t0 = datetime.now(UTC)
        airflow.backfill("shopstream_extract", first, first + timedelta(hours=n_hours - 1), reprocess="none",
                         max_active_runs=3)
        runs = airflow.settled(quiet_seconds=10, timeout=4 * 3600)
        new = {d: [r for r in rs if r["dag_run_id"] not in before[d]] for d, rs in runs.items()}
        failed = [(d, r["dag_run_id"], r["state"]) for d, rs in new.items() for r in rs if r["state"] != "success"]
        assert not failed, failed
        reconciled, ends = set(), []
        for r in new["shopstream_dbt"]:
            end, hours = _reconcile_end(airflow, r)
            reconciled.update(hours)
            if end:
                ends.append(end)
        missing = backfill_hours - reconciled
        assert not missing, f"backfilled hours never reconciled: {sorted(missing)}"
        extract_runs = [r for r in new["shopstream_extract"] if r["run_type"] == "backfill"]
        assert len(extract_runs) == n_hours, [r["dag_run_id"] for r in new["shopstream_extract"]]
        figures[f"backfill_{n_hours}h_s"] = round((max(ends) - t0).total_seconds(), 1)
        figures["backfill_runs"] = {d: len(rs) for d, rs in new.items()}
        figures["backfill_scheduled_extract_runs"] = sum(r["run_type"] == "scheduled" for r in new["shopstream_extract"])
        figures["hour_cold_dbt"] = _dbt_overhead(airflow, first_dbt)
        figures["backfill_dbt"] = _dbt_overhead(airflow, new["shopstream_dbt"])
        with psycopg.connect(**{"host": os.environ["PGHOST"], "port": os.environ["PGPORT"], "dbname": db,
                                "user": os.environ["PGUSER"], "password": os.environ["PGPASSWORD"]}) as conn:
            figures["bronze_rows"] = conn.execute("select count(*) from bronze.raw_events").fetchone()[0]
            figures["gold_fct_orders"] = conn.execute("select count(*) from gold.fct_orders").fetchone()[0]
    finally:
        try:
            airflow.stop()
        finally:
            server.stop()
            drop_warehouse_and_topics(_admin_dsn(), db, admin, topics)
    per_hour = figures[f"backfill_{n_hours}h_s"] / n_hours
    return [{
        "name": f"live Airflow: one hour end to end; {n_hours}-hour backfill",
        "figures": figures,
        "ratios": {"backfill_s_per_hour": round(per_hour, 1),
                   "backfill_hour_vs_single_hour": round(per_hour / figures.get("hour_warm_s", figures["hour_cold_s"]), 2)},
        "targets": {},
        "notes": "wall times under the LocalExecutor (parallelism above) on this machine, concurrent load included; "
                 "hour = extract run created -> reconcile success",
    }]


if __name__ == "__main__":
    print(json.dumps(run(quick=os.environ.get("BENCH_QUICK", "0") == "1"), indent=2, default=str))
