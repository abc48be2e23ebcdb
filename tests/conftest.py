"""Shared fixtures: the real local services (PostgreSQL, Kafka) started by the project's own scripts.

Tests never skip because a service is missing: the fixtures start it (scripts/*.sh are idempotent) and fail
loudly if it cannot start.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"


def _load_project_env() -> None:
    """Import the environment that scripts/common.sh builds (.env, derived ports, AIRFLOW_HOME...)."""
    if os.environ.get("SHOPSTREAM_ENV_LOADED") == "1":
        return
    out = subprocess.run(
        ["bash", "-c", f"source {SCRIPTS / 'common.sh'} && env -0"],
        check=True,
        capture_output=True,
    ).stdout
    for item in out.split(b"\0"):
        if b"=" in item:
            key, _, value = item.partition(b"=")
            os.environ.setdefault(key.decode(), value.decode())
    os.environ["SHOPSTREAM_ENV_LOADED"] = "1"
    # Tests get their own Airflow home so they never touch the demo's metadata database.
    os.environ["AIRFLOW_HOME"] = str(ROOT / ".local" / "airflow-test")
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")


_load_project_env()


def run_script(name: str, *args: str) -> None:
    result = subprocess.run([str(SCRIPTS / name), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"scripts/{name} {' '.join(args)} failed ({result.returncode}):\n"
                           f"{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="session")
def postgres_service() -> dict:
    """The project's PostgreSQL cluster, running; returns the warehouse connection parameters."""
    run_script("postgres.sh", "start")
    return {
        "host": os.environ["PGHOST"],
        "port": int(os.environ["PGPORT"]),
        "user": os.environ["PGUSER"],
        "password": os.environ["PGPASSWORD"],
        "dbname": os.environ["PGDATABASE"],
    }


def admin_dsn(dbname: str = "postgres") -> str:
    """Superuser over the cluster's private Unix socket (trust auth; only the local OS can reach it)."""
    return f"host={Path(os.environ['SHOPSTREAM_PG_ROOT']) / 'run'} port={os.environ['PGPORT']} user=postgres dbname={dbname}"


@pytest.fixture
def fresh_database(postgres_service):
    """A new, empty database owned by the warehouse role; dropped after the test.

    Yields the connection parameters (same keys as postgres_service) and sets AIRFLOW_CONN_WAREHOUSE_DB so
    code using the Airflow connection talks to it.
    """
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{postgres_service["user"]}"')
    params = {**postgres_service, "dbname": name}
    previous = os.environ.get("AIRFLOW_CONN_WAREHOUSE_DB")
    os.environ["AIRFLOW_CONN_WAREHOUSE_DB"] = json.dumps({
        "conn_type": "postgres", "host": params["host"], "port": params["port"], "schema": name,
        "login": params["user"], "password": params["password"],
    })
    try:
        yield params
    finally:
        if previous is None:
            os.environ.pop("AIRFLOW_CONN_WAREHOUSE_DB", None)
        else:
            os.environ["AIRFLOW_CONN_WAREHOUSE_DB"] = previous
        with psycopg.connect(admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_conninfo(params: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The project's Kafka broker (KRaft, from Apache Kafka's jars), running; returns bootstrap.servers."""
    run_script("kafka.sh", "start")
    return os.environ["KAFKA_BOOTSTRAP"]


@pytest.fixture
def unique_topics(kafka_bootstrap):
    """Factory: create fresh topics with unique names (so tests never see each other's messages)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    created: list[str] = []

    def make(*bases: str, partitions: int = 3) -> dict[str, str]:
        suffix = uuid.uuid4().hex[:8]
        names = {base: f"{base}-{suffix}" for base in bases}
        futures = admin.create_topics(
            [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names.values()]
        )
        for f in futures.values():
            f.result(30)
        created.extend(names.values())
        return names

    yield make
    if created:
        for f in admin.delete_topics(created).values():
            try:
                f.result(30)
            except Exception:  # noqa: BLE001 - best-effort cleanup of throwaway topics
                pass


# --------------------------------------------------------------------------------------- fault summary
from tests.fault_report import REPORT as _FAULT_REPORT  # noqa: E402


@pytest.fixture
def fault_report(request):
    """Record a fault case's figures for the summary table (tests/fault_report.py)."""
    _FAULT_REPORT.current_test = request.node.nodeid
    return _FAULT_REPORT


def pytest_terminal_summary(terminalreporter):
    if _FAULT_REPORT.cases:
        path = _FAULT_REPORT.write()
        terminalreporter.section("ShopStream fault summary")
        terminalreporter.write_line(_FAULT_REPORT.table())
        terminalreporter.write_line(f"(also in {path.relative_to(ROOT)})")
