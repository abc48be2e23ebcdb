"""The shopstream_dbt DAG's structure, parsed from the file the way Airflow does (no connection, no network,
no dbt invocation)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = ROOT / "dags" / "shopstream_dbt.py"


def _dagbag(monkeypatch):
    import airflow.sdk  # noqa: F401  (import airflow before cosmos)
    from airflow.dag_processing.dagbag import DagBag

    def no_network(*args, **kwargs):
        raise AssertionError("the DAG file opened a network connection at import time")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.delenv("AIRFLOW_CONN_WAREHOUSE_DB", raising=False)
    return DagBag(dag_folder=str(DAG_FILE), safe_mode=False)


@pytest.fixture(scope="module")
def dag():
    mp = pytest.MonkeyPatch()
    try:
        bag = _dagbag(mp)
    finally:
        mp.undo()
    assert not bag.import_errors, bag.import_errors
    return bag.dags["shopstream_dbt"]


def test_parses_well_under_a_second_without_dbt_or_connections(monkeypatch):
    import cosmos.dbt.graph as graph

    def no_dbt_ls(*args, **kwargs):
        raise AssertionError("the DAG ran dbt ls at parse time")

    monkeypatch.setattr(graph.DbtGraph, "load_via_dbt_ls", no_dbt_ls)
    monkeypatch.setattr(graph.DbtGraph, "load_via_dbt_ls_without_cache", no_dbt_ls)
    started = time.perf_counter()
    bag = _dagbag(monkeypatch)
    elapsed = time.perf_counter() - started
    assert not bag.import_errors, bag.import_errors
    [stat] = bag.dagbag_stats
    assert stat.duration.total_seconds() < 1.0 and elapsed < 2.0, (stat.duration, elapsed)


def test_identity_schedule_and_defaults(dag):
    from shopstream.assets import BRONZE_RAW_EVENTS

    assert dag.dag_id == "shopstream_dbt"
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert {"shopstream", "dbt"} <= set(dag.tags)
    assert [a.name for a in dag.timetable.asset_condition.objects] == [BRONZE_RAW_EVENTS.name]
    for t in dag.tasks:
        assert t.owner == "shopstream", t.task_id
        assert t.retries >= 2 and t.retry_delay.total_seconds() > 0, t.task_id
        assert t.retry_exponential_backoff > 1, t.task_id  # a multiplier in Airflow 3.3


def test_silver_and_gold_groups_one_run_and_test_task_per_model(dag):
    from shopstream.dbt.paths import MANIFEST_PATH

    groups = dag.task_group.children
    assert {"silver", "gold", "publish_gold"} <= set(groups)
    manifest = json.loads(MANIFEST_PATH.read_text())
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    for name, node in models.items():
        group = "gold" if "gold" in node["tags"] else "silver"
        assert f"{group}.{name}.run" in dag.task_ids, name
        assert f"{group}.{name}.test" in dag.task_ids, name  # TestBehavior.AFTER_EACH


def test_tests_gate_downstream_models(dag):
    # a model's run waits for its upstream models' tests
    assert "silver.customers.test" in dag.get_task("silver.orders.run").upstream_task_ids
    assert "silver.stg_orders.test" in dag.get_task("silver.orders.run").upstream_task_ids
    assert "gold.fct_orders.test" in dag.get_task("gold.agg_orders_daily.run").upstream_task_ids
    # gold waits for every silver task (group dependency)
    silver = {t for t in dag.task_ids if t.startswith("silver.")}
    for task_id in dag.task_ids:
        if task_id.startswith("gold."):
            assert silver <= dag.get_task(task_id).get_flat_relative_ids(upstream=True), task_id
    # relationships tests run on their own once both parents are built and tested
    rel = dag.get_task("silver.relationships_orders_customer_id__customer_id__ref_customers__test")
    assert {"silver.orders.test", "silver.customers.test"} <= rel.upstream_task_ids


def test_local_execution_with_dbt_runner(dag):
    from cosmos.constants import InvocationMode
    from cosmos.operators.local import DbtRunLocalOperator, DbtTestLocalOperator

    run = dag.get_task("silver.orders.run")
    test = dag.get_task("silver.orders.test")
    assert isinstance(run, DbtRunLocalOperator) and isinstance(test, DbtTestLocalOperator)
    assert run.invocation_mode == InvocationMode.DBT_RUNNER
    assert run.profile_config.profile_mapping.conn_id == "warehouse_db"
    assert run.install_deps is False


def test_gold_asset_is_emitted_last(dag):
    from shopstream.assets import GOLD

    publish = dag.get_task("publish_gold")
    assert [a.name for a in publish.outlets] == [GOLD.name]
    gold = {t for t in dag.task_ids if t.startswith("gold.")}
    assert gold <= publish.get_flat_relative_ids(upstream=True)
    assert not publish.downstream_task_ids
    # the quarantine view is refreshed even when a staging test failed
    assert dag.get_task("silver.quarantine.run").trigger_rule == "all_done"
