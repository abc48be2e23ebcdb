"""Cosmos configuration for the ShopStream dbt project (used by dags/shopstream_dbt.py).

- Rendering: LoadMode.DBT_MANIFEST from the committed include/dbt/shopstream/target/manifest.json, so parsing
  the DAG never runs dbt (no `dbt ls`) and needs no warehouse connection. `make dbt-manifest` rebuilds it;
  tests/unit/test_dbt_manifest.py fails when it is stale.
- Execution: ExecutionMode.LOCAL with dbt's in-process dbtRunner (dbt lives in Airflow's venv).
- Tests: TestBehavior.AFTER_EACH - every model's tests (data tests and unit tests) run right after it and gate
  its downstream models. Tests with several parents (relationships) run in their own task once all parents
  are built (`should_detach_multiple_parents_tests`); with dbt's default "eager" indirect selection they would
  otherwise be picked up by the first parent's test task, before the other parent exists.
- Profile: from the Airflow connection `warehouse_db` (PostgresUserPasswordProfileMapping; its `schema`
  field is the database name) - the dbt role of the least-privilege setup (owns staging/silver/gold, reads
  bronze). Its extra's TLS settings (sslmode, sslrootcert, sslcert, sslkey) reach dbt's profile. The connection
  is checked (shopstream.config) when a dbt task first needs it: a missing or malformed connection fails the task
  at once with a message that names it, never at DAG parse time.
"""

from __future__ import annotations

from typing import Any

from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior
from cosmos.profiles import PostgresUserPasswordProfileMapping

from shopstream.dbt.paths import MANIFEST_PATH, PROJECT_DIR, PROJECT_NAME

WAREHOUSE_CONN_ID = "warehouse_db"
PROFILE_NAME = "shopstream"
TARGET_NAME = "airflow"


class WarehouseProfileMapping(PostgresUserPasswordProfileMapping):
    """Cosmos' PostgreSQL mapping plus the TLS file settings, with a fail-fast check of the connection."""

    airflow_param_mapping = {
        **PostgresUserPasswordProfileMapping.airflow_param_mapping,
        "sslrootcert": "extra.sslrootcert",
        "sslcert": "extra.sslcert",
        "sslkey": "extra.sslkey",
        "connect_timeout": "extra.connect_timeout",
    }

    @property
    def conn(self):  # noqa: ANN201 - Airflow's Connection
        if not self._conn:
            from shopstream import config

            config.task_preflight([self.conn_id])
        return super().conn


def profile_config(conn_id: str = WAREHOUSE_CONN_ID) -> ProfileConfig:
    return ProfileConfig(
        profile_name=PROFILE_NAME,
        target_name=TARGET_NAME,
        profile_mapping=WarehouseProfileMapping(
            conn_id=conn_id,
            # Every model sets its own schema (staging/silver/gold); this is dbt's fallback schema only.
            profile_args={"schema": "public", "threads": 1},
        ),
    )


def project_config() -> ProjectConfig:
    config = ProjectConfig(
        dbt_project_path=PROJECT_DIR,
        manifest_path=MANIFEST_PATH,
        project_name=PROJECT_NAME,
        install_dbt_deps=False,  # the project uses no dbt packages
        env_vars={"DBT_SEND_ANONYMOUS_USAGE_STATS": "False"},
    )
    # ProjectConfig wraps the path in an ObjectStoragePath, whose first open() loads Airflow's plugins for hook
    # lineage - which imports Cosmos' FastAPI plugin: ~0.35 s of every DAG parse. The manifest is a local file
    # (Cosmos reads it with .open()/.exists(), which pathlib.Path has), so give Cosmos the plain Path back.
    config.manifest_path = MANIFEST_PATH
    return config


def execution_config(mode: ExecutionMode = ExecutionMode.LOCAL) -> ExecutionConfig:
    return ExecutionConfig(execution_mode=mode, invocation_mode=InvocationMode.DBT_RUNNER)


def render_config(select: str, test_behavior: TestBehavior = TestBehavior.AFTER_EACH) -> RenderConfig:
    return RenderConfig(
        load_method=LoadMode.DBT_MANIFEST,
        select=[select],
        test_behavior=test_behavior,
        should_detach_multiple_parents_tests=True,
        emit_datasets=False,  # the DAG emits one GOLD asset at the end instead of one per table
        enable_mock_profile=False,
    )


def operator_args() -> dict[str, Any]:
    return {"install_deps": False, "append_env": True}
