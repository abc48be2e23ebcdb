"""Shared fixtures: the real local services (PostgreSQL, Kafka) started by the project's own scripts.

Tests never skip because a service is missing: the fixtures start it (scripts/*.sh are idempotent) and fail
loudly if it cannot start. The project's environment (.env and what scripts/common.sh derives from it) is the
session fixture `project_env`: the service fixtures use it, and tests/integration, tests/faults and tests/e2e
request it for all their tests, so pure unit tests (tests/unit, tests/dags) run without .env. Shared helpers
live in tests/support.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support.project_env import ROOT, admin_dsn, load_project_env, run_script
from tests.support.throwaway import create_database, create_topics, delete_topics, drop_database

# Before anything imports Airflow (it reads its configuration once, at import): tests get their own Airflow
# home, so they never touch the demo's metadata database. Not from .env, so unit tests get it too.
os.environ["AIRFLOW_HOME"] = str(ROOT / ".local" / "airflow-test")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")


@pytest.fixture(scope="session")
def project_env() -> None:
    """The environment scripts/common.sh builds (.env, derived ports, PG*, KAFKA_BOOTSTRAP...), in os.environ."""
    load_project_env()


@pytest.fixture(scope="session")
def postgres_service(project_env) -> dict:
    """The project's PostgreSQL cluster, running; returns the warehouse connection parameters."""
    run_script("postgres.sh", "start")
    return {
        "host": os.environ["PGHOST"],
        "port": int(os.environ["PGPORT"]),
        "user": os.environ["PGUSER"],
        "password": os.environ["PGPASSWORD"],
        "dbname": os.environ["PGDATABASE"],
    }


class _DatabaseParams(dict):
    """Connection parameters (the keys of postgres_service, as the dbt/warehouse role) plus `.roles`: the
    parameters of each least-privilege role ("dbt", "loader", "analyst") for the same database."""

    roles: dict[str, dict]


@pytest.fixture
def fresh_database(postgres_service, request):
    """A new, empty database owned by the warehouse role; dropped after the test.

    Yields the connection parameters (same keys as postgres_service) and sets AIRFLOW_CONN_WAREHOUSE_DB,
    AIRFLOW_CONN_BRONZE_DB and AIRFLOW_CONN_ANALYST_DB so code using the Airflow connections talks to it.

    By default the database has one role for everything (the warehouse role: it applies the bronze DDL and
    writes bronze itself, as most tests do), and the three connections all log in as it. Parametrised
    indirectly with "least_privilege" (`@pytest.mark.parametrize("fresh_database", ["least_privilege"],
    indirect=True)`), the project's setup (`scripts/postgres.sh secure DB`: include/sql/security, the bronze DDL
    applied by the owner role) runs on it and each connection logs in as its own role: the loader's for
    bronze_db, the analysts' for analyst_db; `.roles` holds every role's parameters.
    """
    mode = getattr(request, "param", "single_role")
    assert mode in ("single_role", "least_privilege"), mode
    name = create_database(admin_dsn(), postgres_service["user"], "t")
    params = _DatabaseParams({**postgres_service, "dbname": name})
    params.roles = {"dbt": dict(params)}
    if mode == "least_privilege":
        run_script("postgres.sh", "secure", name)
        params.roles["loader"] = {**params, "user": os.environ["BRONZE_PGUSER"],
                                  "password": os.environ["BRONZE_PGPASSWORD"]}
        params.roles["analyst"] = {**params, "user": os.environ["ANALYST_PGUSER"],
                                   "password": os.environ["ANALYST_PGPASSWORD"]}
    else:
        params.roles["loader"] = params.roles["analyst"] = dict(params)
    conn_vars = {"AIRFLOW_CONN_WAREHOUSE_DB": "dbt", "AIRFLOW_CONN_BRONZE_DB": "loader",
                 "AIRFLOW_CONN_ANALYST_DB": "analyst"}
    previous = {var: os.environ.get(var) for var in conn_vars}
    for var, role in conn_vars.items():
        p = params.roles[role]
        os.environ[var] = json.dumps({
            "conn_type": "postgres", "host": p["host"], "port": p["port"], "schema": name,
            "login": p["user"], "password": p["password"],
        })
    try:
        yield params
    finally:
        for var, value in previous.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        drop_database(admin_dsn(), name)


@pytest.fixture(scope="session")
def airflow_db(project_env) -> Path:
    """The tests' own Airflow metadata DB (SQLite under .local/airflow-test, see AIRFLOW_HOME above), migrated
    (`airflow db migrate`, idempotent), for the tests that run DAGs in this process (dag.test); its AIRFLOW_HOME."""
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "airflow"), "db", "migrate"], capture_output=True,
                            text=True, env=os.environ.copy(), timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return Path(os.environ["AIRFLOW_HOME"])


@pytest.fixture(scope="session")
def kafka_bootstrap(project_env) -> str:
    """The project's Kafka broker (KRaft, from Apache Kafka's jars), running; returns bootstrap.servers."""
    run_script("kafka.sh", "start")
    return os.environ["KAFKA_BOOTSTRAP"]


@pytest.fixture
def unique_topics(kafka_bootstrap):
    """Factory: create fresh topics with unique names (so tests never see each other's messages)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    created: list[str] = []

    def make(*bases: str, partitions: int = 3) -> dict[str, str]:
        suffix = uuid.uuid4().hex[:8]
        names = {base: f"{base}-{suffix}" for base in bases}
        create_topics(admin, names.values(), partitions)
        created.extend(names.values())
        return names

    yield make
    delete_topics(admin, created)
