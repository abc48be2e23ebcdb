"""Cosmos configuration for the ShopStream dbt project (used by dags/shopstream_dbt.py).

- Rendering: LoadMode.DBT_MANIFEST from the committed include/dbt/shopstream/target/manifest.json, so parsing
  the DAG never runs dbt (no `dbt ls`) and needs no warehouse connection. `make dbt-manifest` rebuilds it;
  tests/unit/test_dbt_manifest.py fails when it is stale.
- Execution: one `dbt build` for the whole run (task `dbt_build`), then one task per model that takes that
  build's result or builds its model alone (shopstream.dbt.build_once explains why and how). dbt runs
  in-process (dbtRunner: dbt lives in Airflow's venv).
- Tests: TestBehavior.BUILD - a model's task covers the model and the tests that gate it (data tests and unit
  tests); a failing test fails its model's task and blocks everything downstream. `--indirect-selection
  buildable` gives a test with several parents (relationships) to the parent that is built last, so a
  relationships test never runs before the model it points from exists.
- Profile: from the Airflow connection `warehouse_db` (PostgresUserPasswordProfileMapping; its `schema`
  field is the database name) - the dbt role of the least-privilege setup (owns staging/silver/gold, reads
  bronze). Its extra's TLS settings (sslmode, sslrootcert, sslcert, sslkey) reach dbt's profile. The connection
  is checked (shopstream.config) when a dbt task first needs it: a missing or malformed connection fails the task
  at once with a message that names it, never at DAG parse time.
"""

from __future__ import annotations

from typing import Any

from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import (
    DbtResourceType,
    ExecutionMode,
    InvocationMode,
    LoadMode,
    TestBehavior,
    TestIndirectSelection,
)
from cosmos.profiles import PostgresUserPasswordProfileMapping

from shopstream import connections
from shopstream.dbt.paths import MANIFEST_PATH, PROJECT_DIR, PROJECT_NAME

WAREHOUSE_CONN_ID = connections.WAREHOUSE_DB
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
    return ExecutionConfig(execution_mode=mode, invocation_mode=InvocationMode.DBT_RUNNER,
                           test_indirect_selection=TestIndirectSelection.BUILDABLE)


MODEL_OPERATOR = "shopstream.dbt.build_once.DbtModelBuildOperator"


def render_config(select: str, test_behavior: TestBehavior = TestBehavior.BUILD,
                  model_operator: str | None = MODEL_OPERATOR) -> RenderConfig:
    """Cosmos' rendering of one task group. With `model_operator`, each model's task is that class (instead of
    Cosmos' DbtBuildLocalOperator) with exactly the arguments Cosmos gives its own (node_converters)."""
    config = RenderConfig(
        load_method=LoadMode.DBT_MANIFEST,
        select=[select],
        test_behavior=test_behavior,
        # AFTER_EACH only: a test with several parents in a task of its own once they are all built
        should_detach_multiple_parents_tests=test_behavior == TestBehavior.AFTER_EACH,
        emit_datasets=False,  # the DAG emits one GOLD asset at the end instead of one per table
        enable_mock_profile=False,
    )
    if model_operator:
        config.node_converters = {DbtResourceType.MODEL: _model_task_converter(config, model_operator)}
    return config


def _model_task_converter(config: RenderConfig, operator_class: str):  # noqa: ANN202 - Cosmos' converter type
    """A Cosmos node converter: the task Cosmos would create for a model node, as `operator_class`.

    Cosmos' converters receive the node and the group's arguments, not the task Cosmos prepared; so the task's
    metadata is made by Cosmos' own function and only its class is swapped (same id, --select, profile,
    per-model operator_kwargs such as the quarantine's trigger_rule). Tied to cosmos.airflow.graph of the
    pinned Cosmos; tests/dags/test_dbt_dag.py renders the DAG and checks the class and arguments.
    """
    from cosmos.airflow.graph import (
        _get_dbt_dag_task_group_identifier,
        create_airflow_task,
        create_task_metadata,
    )

    def convert(*, dag, task_group, node, task_args, execution_mode, test_indirect_selection,  # noqa: ANN001, ANN202
                on_warning_callback=None, detached_from_parent=None, **_):
        meta = create_task_metadata(
            node=node, execution_mode=execution_mode, args=task_args,
            dbt_dag_task_group_identifier=_get_dbt_dag_task_group_identifier(dag, task_group),
            render_config=config, use_task_group=False, test_indirect_selection=test_indirect_selection,
            on_warning_callback=on_warning_callback, detached_from_parent=detached_from_parent,
        )
        # Only Cosmos' own build task is replaced; an ephemeral model rendered as an EmptyOperator stays one.
        if meta is not None and meta.operator_class == "cosmos.operators.local.DbtBuildLocalOperator":
            meta.operator_class = operator_class
        return create_airflow_task(meta, dag, task_group=task_group) if meta is not None else None

    return convert


def cache_dir(identifier: str):  # noqa: ANN201 - pathlib.Path
    """Cosmos' cache folder for `identifier` (partial parse file, profile), as Cosmos makes it for a task group.

    A task created outside a DbtTaskGroup (the DAG's shared `dbt_build`) has none unless given one, and dbt then
    parses the whole project on every run (~2.5 s here) instead of reusing the previous run's parse.
    """
    from cosmos import cache, settings

    return cache._obtain_cache_dir_path(cache_identifier=identifier) if settings.enable_cache else None


def operator_args() -> dict[str, Any]:
    return {"install_deps": False, "append_env": True}
