"""Fixtures of the end-to-end tests: the embedded DummyJSON server, the Airflow metadata DB of the in-process
runs, and one isolated pipeline (fresh warehouse database, unique Kafka topics) per test."""

from __future__ import annotations

from types import SimpleNamespace

import psycopg
import pytest

from tests.e2e.harness import BASES, pipeline_env


@pytest.fixture(scope="session", autouse=True)
def _project_env(project_env):
    """Every end-to-end test runs with the project's environment (.env, PG*, KAFKA_BOOTSTRAP)."""


@pytest.fixture(scope="session")
def dummyjson_api():
    """The project's DummyJSON-compatible server on a free port, in a thread of this process, serving the
    snapshot (or the generated catalogue when the snapshot is absent); no rate limit, no faults."""
    from shopstream.dummyjson_stub.server import DummyJSONServer, resolve_catalog

    server = DummyJSONServer(resolve_catalog(), port=0, rate_limit=None)
    url = server.start()
    try:
        yield SimpleNamespace(url=url, catalog=server.catalog.as_dict(), server=server)
    finally:
        server.stop()


@pytest.fixture
def pipeline(fresh_database, unique_topics, kafka_bootstrap, dummyjson_api, monkeypatch):
    """One isolated pipeline: the fresh warehouse database (AIRFLOW_CONN_WAREHOUSE_DB), fresh topics
    (SHOPSTREAM_TOPIC_*), the embedded DummyJSON server (AIRFLOW_CONN_DUMMYJSON_API), the local broker.
    Retries wait at most 1 s (Airflow's global [core] max_task_retry_delay, read in this process by dag.test),
    so a failing task surfaces in seconds instead of minutes."""
    from airflow.sdk.definitions._internal import abstractoperator

    monkeypatch.setattr(abstractoperator, "MAX_RETRY_DELAY", 1)
    topics = unique_topics(*BASES)
    env = pipeline_env(topics, dummyjson_api.url, kafka_bootstrap)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    dsn = psycopg.conninfo.make_conninfo(**fresh_database)
    return SimpleNamespace(dsn=dsn, topics=topics, env=env, catalog=dummyjson_api.catalog, db=fresh_database)
