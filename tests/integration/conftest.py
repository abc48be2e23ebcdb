"""The integration tests run against the real PostgreSQL and Kafka, with the project's environment."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _project_env(project_env):
    """Every integration test runs with the project's environment (.env, PG*, KAFKA_BOOTSTRAP)."""


@pytest.fixture
def wh(fresh_database, tmp_path):
    """A dbt warehouse on a fresh database (tests/support/warehouse.py), with its own dbt target folder."""
    from tests.support.warehouse import Warehouse

    warehouse = Warehouse.open(fresh_database, tmp_path / "dbt-target")
    yield warehouse
    warehouse.close()
