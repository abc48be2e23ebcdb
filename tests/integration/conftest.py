"""The integration tests run against the real PostgreSQL and Kafka, with the project's environment."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _project_env(project_env):
    """Every integration test runs with the project's environment (.env, PG*, KAFKA_BOOTSTRAP)."""
