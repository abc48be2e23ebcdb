"""The pipeline under a running Airflow (scripts/airflow.sh, as `make airflow` runs it: api-server, scheduler with
the LocalExecutor, dag-processor, triggerer; PostgreSQL metadata database):

1. a 6-hour backfill of shopstream_extract through Airflow's backfill API; the asset-triggered bronze and dbt
   runs follow by themselves; gold is checksummed and compared with the oracle;
2. the same 6 hours backfilled again with reprocessing *while faults are configured* in the extract publish
   (after half the messages), the bronze load (after its first committed batch) and one dbt model (the warehouse
   role loses its write privileges on gold.fct_orders). Each failure is found, its cause removed, the failed
   task cleared with its downstream tasks (REST API), and the pipeline settles with exactly the checksums of
   the clean run.

The Airflow of these tests has its own AIRFLOW_HOME (.local/airflow-e2e), port, log-server ports, metadata
database, fresh warehouse database, unique topics, the embedded DummyJSON server and a faults file; retries wait
1 s ([core] max_task_retry_delay) so failures surface quickly. Marked `slow` (~10-15 min on an idle 2-core
machine).
"""

from __future__ import annotations

import shutil
import time
from datetime import timedelta
from types import SimpleNamespace

import psycopg
import pytest
from shopstream import faults

from tests.e2e import oracle
from tests.e2e.harness import (
    DAG_IDS,
    ROOT,
    LiveAirflow,
    current_hour,
    gold_checksums,
    hours,
    pipeline_env,
    warehouse_env,
)
from tests.support.project_env import admin_dsn
from tests.support.throwaway import create_warehouse_and_topics, drop_warehouse_and_topics

pytestmark = [pytest.mark.e2e, pytest.mark.airflow, pytest.mark.slow]

N_HOURS = 6
# Upper bound of each wait for the pipeline to settle. A dbt run is a shared dbt build and a chain of 6 model tasks:
# ~10-30 s on an idle 2-core machine, minutes when other test runs load it; a wait may cover several dbt runs.
SETTLE_TIMEOUT = 2400

# The e2e Airflow's own configuration (AIRFLOW_HOME/config/airflow_local_settings.py), not code changes:
# - a cluster policy takes the retries away from the three tasks the faults target, so an injected fault fails
#   its task at once (what an on-call engineer then clears); every other task keeps its retries (1 s apart);
# - the project's own local settings otherwise (include/airflow/airflow_local_settings.py: the scheduler and the
#   DAG processor preload dbt, Cosmos and the task modules).
FAULTED_TASKS = {("shopstream_extract", "publish_hour"), ("shopstream_bronze", "load"),
                 ("shopstream_dbt", "gold.fct_orders_model_build")}
LOCAL_SETTINGS = f'''
FAULTED_TASKS = {FAULTED_TASKS!r}


def task_policy(task):
    if (task.dag_id, task.task_id) in FAULTED_TASKS:
        task.retries = 0


from shopstream.preload import preload_for_forking_command

preload_for_forking_command()
'''


@pytest.fixture(scope="module")
def live(postgres_service, kafka_bootstrap, dummyjson_api, tmp_path_factory):
    current = current_hour(timedelta(minutes=1))
    # The six hours that end with the last complete one. The extract DAG is hourly with catchup=False: on
    # unpause the scheduler adds a run for the last complete hour - one of the backfilled runs, so it finds it
    # exists and skips it - and at the next top of the hour a run for the current hour (new data in the middle
    # of the comparison). A manual run with the current hour as logical date (it processes the hour before,
    # already backfilled: same data) takes that slot, so no scheduled run is created while the tests run.
    first = current - timedelta(hours=N_HOURS)
    db, topics, admin = create_warehouse_and_topics(admin_dsn(), postgres_service["user"], kafka_bootstrap,
                                                    "t_e2e", "e2e")
    params = {**postgres_service, "dbname": db}
    faults_file = tmp_path_factory.mktemp("faults") / "faults.json"
    env = pipeline_env(topics, dummyjson_api.url, kafka_bootstrap)
    env.update(warehouse_env(params))
    env.update({
        faults.FILE_ENV: str(faults_file),
        "AIRFLOW__CORE__MAX_TASK_RETRY_DELAY": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
    })
    home = ROOT / ".local" / "airflow-e2e"
    shutil.rmtree(home, ignore_errors=True)
    (home / "config").mkdir(parents=True)
    (home / "config" / "airflow_local_settings.py").write_text(LOCAL_SETTINGS)
    airflow = LiveAirflow(home, env)
    started = time.monotonic()
    try:
        airflow.start()
        airflow.wait_for_dags()
        yield SimpleNamespace(airflow=airflow, dsn=psycopg.conninfo.make_conninfo(**params), topics=topics,
                              hours=hours(first, N_HOURS), faults_file=faults_file, role=params["user"],
                              catalog=dummyjson_api.catalog, db=db, start_seconds=time.monotonic() - started,
                              current=current, timings={}, checksums={})
    finally:
        try:
            airflow.stop()
        finally:
            drop_warehouse_and_topics(admin_dsn(), db, admin, topics)  # also when stopping Airflow failed


def _reconciled(airflow: LiveAirflow, runs: list[dict]) -> set[str]:
    """The hours the dbt runs' final `reconcile` tasks reconciled (each must have found no mismatch)."""
    hours: set[str] = set()
    for run in runs:
        summary = airflow.xcom("shopstream_dbt", run["dag_run_id"], "reconcile")
        assert summary["ok"] and "asset events" in summary["how"], summary
        hours.update(summary["hours"])
    return hours


def test_backfill_six_hours_then_reprocess_gives_identical_gold(live):
    airflow = live.airflow
    t0 = time.monotonic()
    airflow.backfill("shopstream_extract", live.hours[0], live.hours[-1], reprocess="none")
    airflow.trigger("shopstream_extract", logical_date=live.current)  # see `live`: takes the next scheduled slot
    for dag_id in reversed(DAG_IDS):  # consumers first: a paused DAG is not queued by asset events
        airflow.unpause(dag_id)
    runs = airflow.settled(timeout=SETTLE_TIMEOUT)
    live.timings["backfill_1"] = time.monotonic() - t0
    extract = [r for r in runs["shopstream_extract"] if r["run_type"] == "backfill"]
    assert sorted(r["logical_date"][:19] for r in extract) == [h.strftime("%Y-%m-%dT%H:%M:%S") for h in live.hours]
    assert all(r["state"] == "success" for rs in runs.values() for r in rs), airflow.snapshot()
    # the chain ran by itself: asset-triggered bronze and dbt runs
    assert runs["shopstream_bronze"] and all(r["run_type"] == "asset_triggered" for r in runs["shopstream_bronze"])
    assert runs["shopstream_dbt"] and all(r["run_type"] == "asset_triggered" for r in runs["shopstream_dbt"])
    # no scheduled extract run: the catch-up slot is a backfill run, the next slot the manual run
    assert sorted(r["run_type"] for r in runs["shopstream_extract"]) == ["backfill"] * N_HOURS + ["manual"]
    # every backfilled hour was reconciled (Kafka = bronze = silver = gold) by one of the dbt runs
    assert _reconciled(airflow, runs["shopstream_dbt"]) == {h.strftime("%Y-%m-%dT%H:00:00Z") for h in live.hours}

    with psycopg.connect(live.dsn, autocommit=True) as conn:
        clean = gold_checksums(conn)
        problems = oracle.diff(oracle.expected_gold(live.catalog, live.hours), oracle.actual_gold(conn))
    assert not problems, "\n".join(problems)
    assert all(n > 0 for n, _ in clean.values()), clean
    live.checksums["clean"] = clean
    live.timings["runs_1"] = {d: len(rs) for d, rs in runs.items()}
    print(f"\nbackfill 1: {live.timings['backfill_1']:.0f} s, runs {live.timings['runs_1']}, "
          f"airflow start {live.start_seconds:.0f} s")


def _tis(airflow: LiveAirflow, dag_id: str, states: tuple[str, ...] = ("failed",)) -> list[tuple[str, str, int]]:
    """(run_id, task_id, map_index) of the task instances of `dag_id` in `states`, oldest run first."""
    out = []
    for run in airflow.runs(dag_id):
        for ti in airflow.task_instances(dag_id, run["dag_run_id"]):
            if ti["state"] in states:
                out.append((run["dag_run_id"], ti["task_id"], ti["map_index"]))
    return out


def _clear(airflow: LiveAirflow, dag_id: str, failed: list[tuple[str, str, int]]) -> None:
    """Clear each failed task instance with its downstream tasks (what on-call does in the UI: Clear ->
    'Downstream' + 'Only failed')."""
    for run_id, task_id, map_index in failed:
        airflow.clear(dag_id, run_id, [[task_id, map_index]] if map_index >= 0 else [task_id], downstream=True)


def _clear_the_one_injected_failure(live: SimpleNamespace, dag_id: str, task_id: str, fault_point: str) -> None:
    """The fault at `fault_point` failed exactly one task instance of `dag_id`, a `task_id`, once; clear it with its
    downstream tasks and wait until the DAG has no failed task instance left."""
    airflow = live.airflow
    failed = _tis(airflow, dag_id)
    assert [t for _, t, _ in failed] == [task_id], failed
    assert faults.read_spec(live.faults_file)[fault_point]["failed"] == 1
    _clear(airflow, dag_id, failed)
    airflow.settled(timeout=SETTLE_TIMEOUT)
    assert _tis(airflow, dag_id) == []


def _revoke_writes(dsn: str, table: str, role: str, grant: bool = False) -> None:
    """The real-world dbt failure: the warehouse role loses (or gets back) its write privileges on a table it
    owns (as a superuser; an owner's privileges can be revoked like anyone's)."""
    db = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    verb = f"GRANT INSERT, UPDATE, DELETE ON {table} TO" if grant else f"REVOKE INSERT, UPDATE, DELETE ON {table} FROM"
    with psycopg.connect(admin_dsn(db), autocommit=True) as conn:
        conn.execute(f'{verb} "{role}"')


def test_reprocess_with_faults_then_clear_gives_the_same_gold(live):
    """Backfill the same hours again (reprocess), with one failure injected per stage; clear each failed task
    with its downstream; the pipeline ends with exactly the gold of the clean run."""
    assert "clean" in live.checksums, "the clean backfill did not complete (previous test)"
    airflow = live.airflow
    t0 = time.monotonic()
    faults.write_spec(live.faults_file, {"extract.publish:orders": {"fail_times": 1},
                                         "bronze.load": {"fail_times": 1}})
    _revoke_writes(live.dsn, "gold.fct_orders", live.role)
    before = {d: {r["dag_run_id"] for r in airflow.runs(d)} for d in DAG_IDS}
    airflow.backfill("shopstream_extract", live.hours[0], live.hours[-1], reprocess="completed")
    airflow.settled(timeout=SETTLE_TIMEOUT)

    # 1. extract: exactly one publish_hour failed, after half of its orders went out
    _clear_the_one_injected_failure(live, "shopstream_extract", "publish_hour", "extract.publish:orders")
    # 2. bronze: one load task failed after its first committed batch; clear it and its publish
    _clear_the_one_injected_failure(live, "shopstream_bronze", "load", "bronze.load")

    # 3. dbt: gold.fct_orders could not be written (permission denied); grant, clear it with its downstream
    failed = _tis(airflow, "shopstream_dbt")
    assert failed and {t for _, t, _ in failed} == {"gold.fct_orders_model_build"}, failed
    _revoke_writes(live.dsn, "gold.fct_orders", live.role, grant=True)
    _clear(airflow, "shopstream_dbt", failed)
    runs = airflow.settled(timeout=SETTLE_TIMEOUT)
    live.timings["backfill_2_with_faults"] = time.monotonic() - t0
    assert _tis(airflow, "shopstream_dbt", ("failed", "upstream_failed")) == []
    assert all(r["state"] == "success" for rs in runs.values() for r in rs), airflow.snapshot()
    new_runs = {d: len({r["dag_run_id"] for r in rs} - before[d]) for d, rs in runs.items()}
    assert new_runs["shopstream_bronze"] >= 1 and new_runs["shopstream_dbt"] >= 1, new_runs
    # the reprocessed hours were reconciled again by the new dbt runs
    assert _reconciled(airflow, [r for r in runs["shopstream_dbt"] if r["dag_run_id"] not in before["shopstream_dbt"]])

    with psycopg.connect(live.dsn, autocommit=True) as conn:
        after = gold_checksums(conn)
        problems = oracle.diff(oracle.expected_gold(live.catalog, live.hours), oracle.actual_gold(conn))
        republished = conn.execute("select count(*) from bronze.raw_events").fetchone()[0]
    assert after == live.checksums["clean"]
    assert not problems, "\n".join(problems)
    published = sum(oracle.published(live.catalog, live.hours).counts.values())
    assert republished > published  # the reprocessed hours really went through Kafka and bronze again

    # 4. clearing only the shared dbt build of a finished run rebuilds nothing behind the model tasks' backs: it
    #    sees that they already ran in this run and leaves the building to the model tasks (none were cleared)
    last = [r for r in runs["shopstream_dbt"] if r["state"] == "success"][-1]["dag_run_id"]
    airflow.clear("shopstream_dbt", last, ["dbt_build"], downstream=False, only_failed=False)
    runs = airflow.settled(timeout=SETTLE_TIMEOUT)
    record = airflow.xcom("shopstream_dbt", last, "dbt_build")
    assert record["models"] == {} and "already run" in record["skipped"], record
    assert {t["state"] for t in airflow.task_instances("shopstream_dbt", last)} == {"success"}
    with psycopg.connect(live.dsn, autocommit=True) as conn:
        assert gold_checksums(conn) == live.checksums["clean"]
    print(f"\nbackfill 2 (reprocess + 3 faults + clears): {live.timings['backfill_2_with_faults']:.0f} s, "
          f"new runs {new_runs}")
