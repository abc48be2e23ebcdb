"""The shopstream_bronze DAG's structure, from the session's DagBag (tests/dags/conftest.py: no scheduler, no
metadata DB, no network)."""

from __future__ import annotations

import importlib.util
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = ROOT / "dags" / "shopstream_bronze.py"
DAG_ID = "shopstream_bronze"


def _load_module(name: str):
    spec = importlib.util.spec_from_file_location(name, DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_identity_and_schedule(dag):
    from airflow.sdk.definitions.asset import AssetAll
    from shopstream.assets import KAFKA_TOPIC_ASSETS

    assert dag.dag_id == "shopstream_bronze"
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert {"shopstream", "bronze"} <= set(dag.tags)
    cond = dag.timetable.asset_condition
    assert isinstance(cond, AssetAll)  # all four topics updated, not any
    assert {a.name for a in cond.objects} == {a.name for a in KAFKA_TOPIC_ASSETS.values()}


def test_tasks_and_dependencies(dag):
    tasks = {t.task_id: t for t in dag.tasks}
    assert set(tasks) == {"plan_partitions", "load", "publish"}  # plan_partitions checks the schema first
    assert tasks["plan_partitions"].upstream_task_ids == set()
    assert tasks["plan_partitions"].downstream_task_ids == {"load"}
    assert tasks["load"].downstream_task_ids == {"publish"}
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    assert isinstance(tasks["load"], MappedOperator)  # dynamic task mapping over partition groups


def test_publish_emits_the_bronze_asset(dag):
    from shopstream.assets import BRONZE_RAW_EVENTS

    publish = dag.get_task("publish")
    assert [o.name for o in publish.outlets] == [BRONZE_RAW_EVENTS.name]
    assert all(not t.outlets for t in dag.tasks if t.task_id != "publish")


def test_retries_with_exponential_backoff(dag):
    for t in dag.tasks:
        assert t.owner == "shopstream"
        assert t.retries >= 2
        assert t.retry_delay >= timedelta(seconds=1)
        assert float(t.retry_exponential_backoff) > 1.0, t.task_id  # a real multiplier (True would be 1.0)


def test_params(dag):
    params = dag.params
    assert params["topics"] is None
    # read when the tasks run, not at parse time
    assert params["load_tasks"] is None and params["consumer_group"] is None


def test_a_bad_load_tasks_variable_does_not_break_the_dag_import(monkeypatch):
    import airflow.sdk  # noqa: F401

    monkeypatch.setenv("SHOPSTREAM_BRONZE_LOAD_TASKS", "many")  # the task's preflight reports it, by name
    assert _load_module("shopstream_bronze_dag_bad_env").shopstream_bronze().dag_id == "shopstream_bronze"
