"""The shopstream_bronze DAG's structure, parsed from the file (no scheduler, no metadata DB, no network)."""

from __future__ import annotations

import importlib.util
import socket
import time
from datetime import timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = ROOT / "dags" / "shopstream_bronze.py"


def _load_module(name: str):
    spec = importlib.util.spec_from_file_location(name, DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dag():
    import airflow.sdk  # noqa: F401

    return _load_module("shopstream_bronze_dag_unit").shopstream_bronze()


def test_parse_is_fast_and_touches_no_network(monkeypatch):
    import airflow.sdk  # noqa: F401
    from shopstream import dag_defaults  # noqa: F401

    def no_network(*args, **kwargs):
        raise AssertionError("the DAG file opened a network connection at import time")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    for var in ("AIRFLOW_CONN_WAREHOUSE_DB", "AIRFLOW_CONN_KAFKA_DEFAULT"):
        monkeypatch.delenv(var, raising=False)
    started = time.perf_counter()
    _load_module("shopstream_bronze_parse_check").shopstream_bronze()
    assert time.perf_counter() - started < 1.0


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


def test_load_tasks_and_group_come_from_the_param_then_the_environment(monkeypatch):
    from shopstream.bronze.airflow_entry import consumer_group, load_tasks

    monkeypatch.delenv("SHOPSTREAM_BRONZE_LOAD_TASKS", raising=False)
    monkeypatch.delenv("SHOPSTREAM_BRONZE_GROUP", raising=False)
    assert (load_tasks(None), consumer_group(None)) == (3, "shopstream-bronze")
    monkeypatch.setenv("SHOPSTREAM_BRONZE_LOAD_TASKS", "5")
    monkeypatch.setenv("SHOPSTREAM_BRONZE_GROUP", "g-env")
    assert (load_tasks(None), consumer_group(None)) == (5, "g-env")
    assert (load_tasks(2), consumer_group("g-param")) == (2, "g-param")


def test_a_bad_load_tasks_variable_does_not_break_the_dag_import(monkeypatch):
    import airflow.sdk  # noqa: F401

    monkeypatch.setenv("SHOPSTREAM_BRONZE_LOAD_TASKS", "many")  # the task's preflight reports it, by name
    assert _load_module("shopstream_bronze_dag_bad_env").shopstream_bronze().dag_id == "shopstream_bronze"


def test_default_topics_follow_the_extract_overrides(monkeypatch):
    from shopstream.bronze.airflow_entry import topics

    monkeypatch.delenv("SHOPSTREAM_TOPIC_ORDERS", raising=False)
    assert topics() == ["customers", "products", "orders", "events"]
    monkeypatch.setenv("SHOPSTREAM_TOPIC_ORDERS", "orders-test")
    assert topics() == ["customers", "products", "orders-test", "events"]
    assert topics(["x", "y"]) == ["x", "y"]


def test_connections_map_to_loader_arguments(monkeypatch):
    import json

    import psycopg
    from shopstream.connections import kafka_config, postgres_conninfo

    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DB", json.dumps({
        "conn_type": "postgres", "host": "db.example", "port": 6543, "schema": "wh", "login": "u",
        "password": "p w", "extra": {"sslmode": "require", "unrelated": "x"}}))  # test-credential
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", json.dumps({
        "conn_type": "kafka", "extra": {"bootstrap.servers": "k:9092", "security.protocol": "PLAINTEXT"}}))
    info = psycopg.conninfo.conninfo_to_dict(postgres_conninfo())
    assert info == {"host": "db.example", "port": "6543", "dbname": "wh", "user": "u", "password": "p w",  # test-credential
                    "sslmode": "require"}
    cfg = kafka_config()
    assert cfg["bootstrap.servers"] == "k:9092" and cfg["security.protocol"] == "PLAINTEXT"
