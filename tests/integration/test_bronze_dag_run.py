"""shopstream_bronze through Airflow itself (dag.test): real broker, real PostgreSQL, mapped load tasks, Asset."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from shopstream.topics import TOPICS

from tests.support.bronze_messages import bronze_set, event_messages, produce, produced_set

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

ROOT = Path(__file__).resolve().parents[2]
BASES = TOPICS


def _load_dag():
    from airflow.sdk import DAG

    spec = importlib.util.spec_from_file_location("shopstream_bronze_itest", ROOT / "dags" / "shopstream_bronze.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.shopstream_bronze()
    assert isinstance(dag, DAG)
    return dag


def test_dag_loads_bronze_and_emits_the_asset(airflow_db, fresh_database, kafka_bootstrap,
                                              unique_topics, monkeypatch):
    names = unique_topics(*BASES)
    topics = list(names.values())
    produced = produce(kafka_bootstrap, event_messages(topics, 9_000))
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT",
                       json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": kafka_bootstrap}}))
    for base, name in names.items():
        monkeypatch.setenv(f"SHOPSTREAM_TOPIC_{base.upper()}", name)

    from airflow.models.asset import AssetEvent
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    dag = _load_dag()
    dsn = psycopg.conninfo.make_conninfo(**fresh_database)
    runs = []
    for i in range(2):  # the second run finds nothing new and still succeeds
        dr = dag.test(logical_date=datetime(2025, 6, 1, 14, i, tzinfo=UTC))
        with create_session() as session:
            dr = session.scalar(select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == dr.run_id))
            tis = dr.get_task_instances(session=session)
            states = Counter((ti.task_id, ti.state) for ti in tis)
            assert dr.state == DagRunState.SUCCESS, states
            publish = next(ti for ti in tis if ti.task_id == "publish")
            merged = publish.xcom_pull(task_ids="publish", session=session)
            events = session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == dr.run_id)).all()
            extras = {e.asset.name: e.extra for e in events}
        assert states == Counter({("plan_partitions", TaskInstanceState.SUCCESS): 1,
                                  ("load", TaskInstanceState.SUCCESS): 3,
                                  ("publish", TaskInstanceState.SUCCESS): 1})
        assert extras["shopstream.bronze.raw_events"]["totals"] == merged["totals"]
        runs.append(merged)

    assert runs[0]["loads"] == 3
    assert runs[0]["totals"]["inserted"] == 9_000 and runs[0]["totals"]["remaining_lag"] == 0
    assert set(runs[0]["topics"]) == set(topics)
    assert runs[1]["totals"]["read"] == 0
    assert Counter(bronze_set(dsn)) == Counter(produced_set(produced))
