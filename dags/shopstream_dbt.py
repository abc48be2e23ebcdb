"""shopstream_dbt: bronze.raw_events -> silver -> gold with dbt (include/dbt/shopstream), rendered by Cosmos.

Runs whenever the bronze loader updates the BRONZE_RAW_EVENTS asset; one run at a time (the dbt models are
incremental with watermarks, and two concurrent runs would race).

    dbt_build -> silver (one task per staging/silver model) -> gold (one task per gold model) -> publish_gold
                                                                                              -> reconcile

`dbt_build` runs one `dbt build` of silver and gold; each model's task then takes that build's result for its
model and the tests that gate it, or builds the model alone when the shared build did not pass it, when it is
retried or when it was cleared (shopstream.dbt.build_once). A failing test fails its model's task and leaves
everything downstream of it upstream_failed. The GOLD asset is emitted once gold has been built and tested; its
extra (and each model task's XCom) holds the rows each model's build affected.
Configuration lives in plugins/shopstream/dbt/cosmos_config.py; the task graph comes from the committed dbt
manifest, so parsing this file never runs dbt.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task
from shopstream import dag_defaults
from shopstream.assets import BRONZE_RAW_EVENTS, GOLD, RECONCILED
from shopstream.dbt.dag_tasks import build_once_task_groups

DEFAULT_ARGS = {
    **dag_defaults.default_args(retries=2, retry_delay=timedelta(minutes=1), max_retry_delay=timedelta(minutes=15)),
    "retry_exponential_backoff": 2.0,  # a multiplier in Airflow 3.3: 1 min, then 2 min
    "execution_timeout": timedelta(minutes=30),
}

@dag(
    dag_id="shopstream_dbt",
    description="dbt: bronze.raw_events -> silver -> gold (Cosmos, incremental)",
    schedule=[BRONZE_RAW_EVENTS],
    start_date=dag_defaults.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["shopstream", "dbt", "silver", "gold"],
    doc_md=__doc__,
)
def shopstream_dbt():
    dbt_done = build_once_task_groups("shopstream_dbt")

    @task(task_id="publish_gold", outlets=[GOLD])
    def publish_gold(**context):
        """Emits GOLD; its extra and XCom: the rows each model's build affected (shopstream.dbt.dag_tasks)."""
        from shopstream.dbt.dag_tasks import gold_run_summary

        return gold_run_summary(context)

    @task(task_id="reconcile", inlets=[BRONZE_RAW_EVENTS, RECONCILED], outlets=[RECONCILED])
    def reconcile(dag_run=None, inlet_events=None, outlet_events=None):
        """Per logical hour: published = bronze + quarantine = silver + quarantine = gold (shopstream.reconcile)."""
        from shopstream.reconcile.task import run_reconcile_task

        return run_reconcile_task(dag_run, inlet_events, outlet_events)

    dbt_done >> publish_gold()
    dbt_done >> reconcile()


shopstream_dbt()
