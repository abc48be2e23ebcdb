"""shopstream_dbt: bronze.raw_events -> silver -> gold with dbt (include/dbt/shopstream), rendered by Cosmos.

Runs whenever the bronze loader updates the BRONZE_RAW_EVENTS asset; one run at a time (the dbt models are
incremental with watermarks, and two concurrent runs would race).

    dbt_build -> silver (one task per staging/silver model) -> gold (one task per gold model) -> publish_gold
                                                                                              -> reconcile

`dbt_build` runs one `dbt build` of silver and gold; each model's task then takes that build's result for its
model and the tests that gate it, or builds the model alone when the shared build did not pass it, when it is
retried or when it was cleared (shopstream.dbt.build_once). A failing test fails its model's task and leaves
everything downstream of it upstream_failed. The GOLD asset is emitted once gold has been built and tested.
Configuration lives in plugins/shopstream/dbt/cosmos_config.py; the task graph comes from the committed dbt
manifest, so parsing this file never runs dbt.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, task
from cosmos import DbtTaskGroup
from shopstream import dag_defaults
from shopstream.assets import BRONZE_RAW_EVENTS, GOLD, RECONCILED
from shopstream.dbt.build_once import BUILD_TASK_ID, DbtBuildOnceOperator
from shopstream.dbt.cosmos_config import (
    cache_dir,
    execution_config,
    operator_args,
    profile_config,
    project_config,
    render_config,
)
from shopstream.dbt.paths import GOLD_SELECTOR, SILVER_SELECTOR

DEFAULT_ARGS = {
    **dag_defaults.default_args(retries=2, retry_delay=timedelta(minutes=1), max_retry_delay=timedelta(minutes=15)),
    "retry_exponential_backoff": 2.0,  # a multiplier in Airflow 3.3: 1 min, then 2 min
    "execution_timeout": timedelta(minutes=30),
}

with DAG(
    dag_id="shopstream_dbt",
    description="dbt: bronze.raw_events -> silver -> gold (Cosmos, incremental)",
    schedule=[BRONZE_RAW_EVENTS],
    start_date=dag_defaults.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["shopstream", "dbt", "silver", "gold"],
    doc_md=__doc__,
) as dag:
    common = {
        "project_config": project_config(),
        "profile_config": profile_config(),
        "execution_config": execution_config(),
        "operator_args": operator_args(),
    }
    # One dbt invocation for the whole run; no retries of its own (a failed model is retried by its own task,
    # alone, instead of the whole build again).
    dbt_build = DbtBuildOnceOperator(
        task_id=BUILD_TASK_ID,
        select=[SILVER_SELECTOR, GOLD_SELECTOR],
        project_dir=str(common["project_config"].dbt_project_path),
        profile_config=common["profile_config"],
        invocation_mode=common["execution_config"].invocation_mode,
        indirect_selection=common["execution_config"].test_indirect_selection.value,
        env=common["project_config"].env_vars,
        cache_dir=cache_dir(f"shopstream_dbt__{BUILD_TASK_ID}"),
        retries=0,
        **operator_args(),
    )
    silver = DbtTaskGroup(group_id="silver", render_config=render_config(SILVER_SELECTOR), **common)
    gold = DbtTaskGroup(group_id="gold", render_config=render_config(GOLD_SELECTOR), **common)
    publish_gold = EmptyOperator(task_id="publish_gold", outlets=[GOLD])

    # The model tasks run even when dbt_build failed outright (each then builds its model itself).
    for root in silver.roots:
        root.trigger_rule = "all_done"
    dbt_build >> silver

    @task(task_id="reconcile", inlets=[BRONZE_RAW_EVENTS, RECONCILED], outlets=[RECONCILED])
    def reconcile(**context):
        """Per logical hour: published = bronze + quarantine = silver + quarantine = gold (shopstream.reconcile)."""
        from shopstream.reconcile import run_reconcile_task

        return run_reconcile_task(context)

    # Gold models wait for the silver models they read, not for the whole silver group: the chain of tasks is
    # the dbt graph's own depth (6 models), not silver's plus gold's.
    silver_tasks = silver.tasks_map
    for model_id, node in gold.dbt_graph.filtered_nodes.items():
        if model_id in gold.tasks_map:
            for parent_id in node.depends_on:
                if parent_id in silver_tasks:
                    silver_tasks[parent_id] >> gold.tasks_map[model_id]
    done = [*gold.leaves, *(t for t in silver.leaves if not t.downstream_task_ids)]
    done >> publish_gold
    done >> reconcile()
