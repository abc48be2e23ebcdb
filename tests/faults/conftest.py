"""Fixtures of the fault suite: private PostgreSQL / Kafka instances (the only services a test may stop or
break), the DummyJSON server, isolated pipelines, and the clean run every process-fault case compares with."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest

from tests.faults.fault_report import REPORT
from tests.faults.harness import BASES, Pipeline, snapshot
from tests.support.private_services import PrivateKafka, PrivatePostgres
from tests.support.project_env import ROOT, admin_dsn
from tests.support.throwaway import create_topics, delete_topics, drop_database

# The realistic dataset of the process-fault cases: two logical hours of the DummyJSON snapshot, with more
# clickstream than the default 300 events an hour so each stage runs long enough to be hit mid-way.
EVENTS_PER_HOUR = 10_000
_now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=3)
HOURS = [(_now.replace(hour=10) + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(2)]


@pytest.fixture(scope="session")
def dummyjson_api():
    """The project's DummyJSON-compatible server (snapshot, or the generated catalogue) on a free port, in a
    thread of this process; no rate limit, no faults."""
    from shopstream.dummyjson_stub.server import DummyJSONServer, resolve_catalog

    server = DummyJSONServer(resolve_catalog(), port=0, rate_limit=None)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def private_pg(postgres_service):
    """A PostgreSQL cluster of this session alone (own data folder and port): tests may stop, crash and
    restart it. The warehouse role and password are the shared cluster's."""
    pg = PrivatePostgres.create(**{k: postgres_service[k] for k in ("user", "password")})
    yield pg
    pg.destroy()


@pytest.fixture(scope="session")
def private_kafka(kafka_bootstrap):
    """A single-node KRaft broker of this session alone (own folder and ports), from the jars the shared
    broker's script resolved (kafka_bootstrap makes sure they exist)."""
    k = PrivateKafka.create()
    yield k
    k.destroy()


@pytest.fixture(scope="session")
def shared_admin(kafka_bootstrap):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": kafka_bootstrap})


class PipelineFactory:
    """Makes isolated pipelines: fresh topics (on the shared or a private broker), a fresh database (on the
    shared or a private cluster); deletes them at teardown."""

    def __init__(self, base: Path, dummyjson_url: str, postgres_service: dict, kafka_bootstrap: str):
        self.base = base
        self.url = dummyjson_url
        self.shared_pg = postgres_service
        self.shared_kafka = kafka_bootstrap
        self.cleanups: list = []

    def __call__(self, name: str, *, kafka: PrivateKafka | None = None, pg: PrivatePostgres | None = None,
                 topics: dict[str, str] | None = None) -> Pipeline:
        from confluent_kafka.admin import AdminClient

        suffix = uuid.uuid4().hex[:8]
        bootstrap = kafka.bootstrap if kafka else self.shared_kafka
        if topics is None:
            topics = {b: f"{b}-f{suffix}" for b in BASES}
            admin = AdminClient({"bootstrap.servers": bootstrap})
            create_topics(admin, topics.values())
            if kafka is None:  # a private broker is thrown away as a whole
                self.cleanups.append(lambda: delete_topics(admin, topics.values()))
        dbname = f"f_{suffix}"
        if pg is None:
            with psycopg.connect(admin_dsn(), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{dbname}" OWNER "{self.shared_pg["user"]}"')
            params = {**self.shared_pg, "dbname": dbname}
            self.cleanups.append(lambda: drop_database(admin_dsn(), dbname))
        else:
            params = pg.create_database(dbname)
        return Pipeline(name, topics, bootstrap, params, self.base / f"{name}-{suffix}", self.url)

    def close(self) -> None:
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception:  # noqa: BLE001 - best-effort cleanup of throwaway topics/databases
                pass
        self.cleanups.clear()


@pytest.fixture
def make_pipeline(tmp_path, dummyjson_api, postgres_service, kafka_bootstrap):
    factory = PipelineFactory(tmp_path, dummyjson_api, postgres_service, kafka_bootstrap)
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory, dummyjson_api, postgres_service, kafka_bootstrap):
    """The realistic dataset (HOURS x EVENTS_PER_HOUR) through extract -> bronze -> dbt without any fault.

    Yields its pipeline (tests that fault a later stage reuse its Kafka topics: a loader into another
    database has its own stored offsets), its end state, and how long each stage took (kill points)."""
    factory = PipelineFactory(tmp_path_factory.mktemp("clean"), dummyjson_api, postgres_service, kafka_bootstrap)
    p = factory("clean")
    seconds = {}
    t0 = time.monotonic()
    extract = p.run(p.extract_cmd(HOURS, EVENTS_PER_HOUR), 300, "extract")
    seconds["extract"] = time.monotonic() - t0
    t0 = time.monotonic()
    load = p.run(p.loader_cmd(), 300, "bronze load")
    seconds["load"] = time.monotonic() - t0
    p.apply_dbt_support_sql()
    t0 = time.monotonic()
    p.dbt_build()
    seconds["dbt"] = time.monotonic() - t0
    state = snapshot(p)
    assert state.kafka_total == extract["published"] == load["totals"]["read"] == state.bronze_rows
    assert state.bronze_quarantined == 0 and sum(state.tables["silver.events"].values()) > 0
    try:
        yield SimpleNamespace(pipeline=p, state=state, seconds=seconds, extract=extract)
    finally:
        factory.close()


def pytest_collection_modifyitems(items):
    # Everything under tests/faults belongs to the fault suite (`pytest -m faults`, `make faults`).
    for item in items:
        if "tests/faults/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.faults)


@pytest.fixture(scope="session", autouse=True)
def _project_env(project_env):
    """Every fault test runs with the project's environment (.env, PG*, KAFKA_BOOTSTRAP)."""


@pytest.fixture
def fault_report(request):
    """Record a fault case's figures for the summary table (tests/faults/fault_report.py)."""
    REPORT.current_test = request.node.nodeid
    return REPORT


def pytest_terminal_summary(terminalreporter):
    if REPORT.cases:
        path = REPORT.write()
        terminalreporter.section("ShopStream fault summary")
        terminalreporter.write_line(REPORT.table())
        terminalreporter.write_line(f"(also in {path.relative_to(ROOT)})")
