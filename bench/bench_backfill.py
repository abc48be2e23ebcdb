"""Live-Airflow benchmark (issue #11): the pipeline's wall times under a real scheduler (scripts/airflow.sh:
api-server, scheduler with the LocalExecutor, dag-processor, triggerer; PostgreSQL metadata database), with the
project's own Airflow settings (local settings preloading dbt/Cosmos/task modules, scheduler idle sleep).

Set-up (like tests/e2e/test_backfill_clear.py): an Airflow of its own (AIRFLOW_HOME .local/airflow-bench, a free
port, its own metadata database), a fresh warehouse database, fresh Kafka topics, the embedded DummyJSON server
(the snapshot, no rate limit), every DAG paused at creation.

1. **one hour, cold**: unpause bronze and dbt, then the extract DAG; the scheduler creates the run of the last
   complete hour. Time from that run's creation to the success of the `reconcile` task of the dbt run that
   reconciled the hour (extract -> Asset events -> bronze -> Asset event -> dbt), into empty tables.
2. **one hour, warm** (target 1: <= 30 s): a manual extract run with the current hour as logical date (it
   processes the last complete hour again, the usual re-run; it also takes the next scheduled slot, so no
   scheduled run interferes with 4).
3. **dbt DAG vs plain dbt build** (target 2: <= 2x): the wall time of that warm hour's dbt run (run start to
   end, `reconcile` included) against a plain in-process `dbt build` (shopstream.dbt.runner, partial parse warm)
   of the same increment: the same hour published again and loaded into bronze outside Airflow (no asset event,
   so no DAG runs), on the same database.
4. **task profile** (target 4): where the seconds of one extract task, the shared `dbt_build`, one model task
   that takes the shared build's result and one that builds its model alone (cleared, so its second try
   rebuilds) go, from queued to success (bench/task_profile.py).
5. **backfills** (target 3: 168 hours <= 300 s): BENCH_BACKFILL_HOURS (default 24,168,720; quick: 6) hours
   each, disjoint ranges before the hour of 1, one after the other, through `POST /api/v2/backfills` (reprocess
   none, max_active_runs BENCH_BACKFILL_MAX_ACTIVE_RUNS, default 4) until every run of the three DAGs finished and
   every hour was reconciled.

Run it with `make bench ONLY=backfill`; it is not part of the test suite (24+168+720 hours: ~25-30 min).
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

from tests.support.project_env import admin_dsn, load_project_env  # noqa: E402 - needs ROOT on sys.path

DAG_IDS = ("shopstream_extract", "shopstream_bronze", "shopstream_dbt")
PARSE = "%Y-%m-%dT%H:%M:%S.%f%z"


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


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


def _profiles(airflow, home: Path, runs: dict[str, tuple[str, str]]) -> dict[str, dict[str, float]]:
    """{label: phases} for the (dag_id, run_id, task_id) of each label, from its latest try."""
    import task_profile

    out = {}
    for label, (dag_id, run_id, task_id) in runs.items():
        ti = next(t for t in airflow.task_instances(dag_id, run_id) if t["task_id"] == task_id)
        path = task_profile.log_path(home, dag_id, run_id, task_id, ti["try_number"], ti.get("map_index", -1))
        out[label] = task_profile.profile(ti, path)
    return out


def _plain_dbt_build(env: dict, topics: dict, url: str, bootstrap: str, hour: datetime, db_params: dict) -> dict:
    """The same hour published again and loaded into bronze outside Airflow, then a plain in-process dbt build."""
    import psycopg
    from shopstream.bronze.loader import BronzeLoader, LoaderSettings
    from shopstream.dbt.paths import GOLD_SELECTOR, SILVER_SELECTOR
    from shopstream.dbt.runner import run_dbt
    from shopstream.dummyjson.client import DummyJSONClient
    from shopstream.extract.tasks import extract_hour

    client = DummyJSONClient(url, rate_limit=None)
    published = extract_hour(hour, client, {"bootstrap.servers": bootstrap}, topics=topics)
    dsn = psycopg.conninfo.make_conninfo(**db_params)
    group = env.get("SHOPSTREAM_BRONZE_GROUP", "shopstream-bronze")
    consumer = {"bootstrap.servers": bootstrap}
    loaded = BronzeLoader(dsn, consumer, topics=list(topics.values()),
                          settings=LoaderSettings(consumer_group=group)).run().as_dict()
    target = ROOT / ".local" / "bench-dbt-target"
    shutil.rmtree(target, ignore_errors=True)
    run_dbt(["parse"], db_params, target_path=target)  # a plain dbt user's warm partial parse
    build = run_dbt(["build", "--select", f"{SILVER_SELECTOR} {GOLD_SELECTOR}", "--indirect-selection", "buildable"],
                    db_params, target_path=target)
    return {"seconds": round(build.seconds, 1), "published": sum(c["published"] for c in published.values()),
            "bronze_inserted": loaded["totals"]["inserted"]}


def _backfill(airflow, first: datetime, n_hours: int, max_active_runs: int) -> dict:
    from tests.e2e.harness import iso

    before = {d: {r["dag_run_id"] for r in airflow.runs(d)} for d in DAG_IDS}
    backfill_hours = {iso(first + timedelta(hours=i)) for i in range(n_hours)}
    t0 = datetime.now(UTC)
    airflow.backfill("shopstream_extract", first, first + timedelta(hours=n_hours - 1), reprocess="none",
                     max_active_runs=max_active_runs)
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
    seconds = round((max(ends) - t0).total_seconds(), 1)
    return {"hours": n_hours, "seconds": seconds, "s_per_hour": round(seconds / n_hours, 2),
            "runs": {d: len(rs) for d, rs in new.items()},
            "scheduled_extract_runs": sum(r["run_type"] == "scheduled" for r in new["shopstream_extract"]),
            "dbt": _dbt_overhead(airflow, new["shopstream_dbt"])}


def run(quick: bool) -> list[dict]:
    load_project_env()
    sys.path.insert(0, str(ROOT / "bench"))
    import psycopg
    from shopstream.dummyjson_stub.server import DummyJSONServer, resolve_catalog

    from tests.e2e.harness import (
        LiveAirflow,
        current_hour,
        iso,
        pipeline_env,
        warehouse_env,
    )
    from tests.support.throwaway import create_warehouse_and_topics, drop_warehouse_and_topics

    sizes = [int(h) for h in (os.environ.get("BENCH_BACKFILL_HOURS") or ("6" if quick else "24,168,720")).split(",")]
    max_active_runs = int(os.environ.get("BENCH_BACKFILL_MAX_ACTIVE_RUNS", 4))
    for script in ("postgres.sh", "kafka.sh"):
        subprocess.run([str(ROOT / "scripts" / script), "start"], check=True, capture_output=True)
    bootstrap = os.environ["KAFKA_BOOTSTRAP"]
    server = DummyJSONServer(resolve_catalog(), port=0, rate_limit=None)
    url = server.start()
    db, topics, admin = create_warehouse_and_topics(admin_dsn(), os.environ["PGUSER"], bootstrap, "bench_bf", "bench",
                                                    int(os.environ.get("SHOPSTREAM_KAFKA_PARTITIONS", 3)))
    db_params = {"host": os.environ["PGHOST"], "port": os.environ["PGPORT"], "dbname": db,
                 "user": os.environ["PGUSER"], "password": os.environ["PGPASSWORD"]}
    env = pipeline_env(topics, url, bootstrap)
    env.update(warehouse_env(db_params))
    env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "True"
    env["AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL"] = "600"
    home = ROOT / ".local" / "airflow-bench"
    shutil.rmtree(home, ignore_errors=True)
    airflow = LiveAirflow(home, env)
    figures: dict = {"parallelism": int(os.environ.get("AIRFLOW__CORE__PARALLELISM", 4)), "cpus": os.cpu_count(),
                     "load_before": os.getloadavg()[0]}
    t = time.monotonic()
    airflow.start()
    try:
        airflow.wait_for_dags()
        figures["airflow_start_s"] = round(time.monotonic() - t, 1)
        current = current_hour(timedelta(minutes=3))
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
        t0 = datetime.now(UTC)
        extract_run = airflow.trigger("shopstream_extract", logical_date=current)
        end, warm_dbt = _wait_hour_reconciled(airflow, iso(last), seen, timeout=1800)
        figures["hour_warm_s"] = round((end - t0).total_seconds(), 1)
        airflow.settled(timeout=1800)
        warm_dbt = next(r for r in airflow.runs("shopstream_dbt") if r["dag_run_id"] == warm_dbt["dag_run_id"])
        figures["dbt_dag_run_s"] = round((_ts(warm_dbt["end_date"]) - _ts(warm_dbt["start_date"])).total_seconds(), 1)

        # 3. the same increment once more, outside Airflow, through a plain dbt build
        figures["plain_dbt_build"] = _plain_dbt_build(env, topics, url, bootstrap, last, db_params)

        # 4. where a task's seconds go; then one model task cleared, so that its second try builds its model alone
        run_id = warm_dbt["dag_run_id"]
        rebuilt = "gold.agg_orders_daily_model_build"
        airflow.clear("shopstream_dbt", run_id, [rebuilt], downstream=True, only_failed=False)
        airflow.settled(timeout=1800)
        figures["profile"] = _profiles(airflow, home, {
            "extract publish_hour": ("shopstream_extract", extract_run["dag_run_id"], "publish_hour"),
            "dbt_build (shared build)": ("shopstream_dbt", run_id, "dbt_build"),
            "model task, shared result": ("shopstream_dbt", run_id, "silver.orders_model_build"),
            "model task, builds alone": ("shopstream_dbt", run_id, rebuilt),
        })

        # 5. backfills of disjoint ranges before the hour of 1
        end_hour = last - timedelta(hours=1)
        figures["backfills"] = []
        for n_hours in sizes:
            first = end_hour - timedelta(hours=n_hours - 1)
            figures["backfills"].append(_backfill(airflow, first, n_hours, max_active_runs))
            end_hour = first - timedelta(hours=1)
        figures["hour_cold_dbt"] = _dbt_overhead(airflow, first_dbt)
        with psycopg.connect(**db_params) as conn:
            figures["bronze_rows"] = conn.execute("select count(*) from bronze.raw_events").fetchone()[0]
            figures["gold_fct_orders"] = conn.execute("select count(*) from gold.fct_orders").fetchone()[0]
        figures["load_after"] = os.getloadavg()[0]
    finally:
        try:
            airflow.stop()
        finally:
            server.stop()
            drop_warehouse_and_topics(admin_dsn(), db, admin, topics)
    week = next((b for b in figures["backfills"] if b["hours"] == 168), None)
    ratios = {"dbt_dag_vs_plain_build": round(figures["dbt_dag_run_s"] / figures["plain_dbt_build"]["seconds"], 2)}
    ratios.update({f"backfill_{b['hours']}h_s_per_hour": b["s_per_hour"] for b in figures["backfills"]})
    return [{
        "name": "live Airflow: one hour end to end; dbt DAG vs plain dbt build; backfills",
        "figures": figures,
        "ratios": ratios,
        "targets": {"hour_warm_s <= 30": figures["hour_warm_s"] <= 30,
                    "dbt_dag_vs_plain_build <= 2": ratios["dbt_dag_vs_plain_build"] <= 2,
                    "backfill_168h_s <= 300": (week["seconds"] <= 300) if week else None},
        "notes": "wall times under the LocalExecutor (parallelism above) on this machine, concurrent load included; "
                 "hour = extract run created -> reconcile success",
    }]


if __name__ == "__main__":
    print(json.dumps(run(quick=os.environ.get("BENCH_QUICK", "0") == "1"), indent=2, default=str))
