"""shopstream_dbt: bronze.raw_events -> silver -> gold with dbt (include/dbt/shopstream), rendered by Cosmos.

Runs whenever the bronze loader updates the BRONZE_RAW_EVENTS asset; one run at a time (the dbt models are
incremental with watermarks, and two concurrent runs would race). Task group `silver` (staging + silver
models, each followed by its tests) runs before `gold`; a failing test leaves everything downstream of it
upstream_failed. The GOLD asset is emitted once gold has been built and tested. Configuration lives in
plugins/shopstream/dbt/cosmos_config.py; the task graph comes from the committed dbt manifest, so parsing this
file never runs dbt.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, task
from cosmos import DbtTaskGroup
from shopstream import dag_defaults
from shopstream.assets import BRONZE_RAW_EVENTS, GOLD, RECONCILED
from shopstream.dbt.cosmos_config import (
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
    silver = DbtTaskGroup(group_id="silver", render_config=render_config(SILVER_SELECTOR), **common)
    gold = DbtTaskGroup(group_id="gold", render_config=render_config(GOLD_SELECTOR), **common)
    publish_gold = EmptyOperator(task_id="publish_gold", outlets=[GOLD])

    @task(task_id="reconcile", inlets=[BRONZE_RAW_EVENTS, RECONCILED], outlets=[RECONCILED])
    def reconcile(**context):
        """Per logical hour: published = bronze + quarantine = silver + quarantine = gold (shopstream.reconcile)."""
        from shopstream.reconcile import run_reconcile_task

        return run_reconcile_task(context)

    silver >> gold >> publish_gold
    gold >> reconcile()
