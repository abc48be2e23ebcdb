"""shopstream_bronze: Kafka topics -> bronze.raw_events, each message exactly once.

Thin wiring only; the logic lives in `shopstream.bronze` (plugins/). Runs when the extract DAG has updated
all four topic Assets, one run at a time:

    plan_partitions -> load (mapped: one task per partition group) -> publish (Asset bronze)

- `plan_partitions`: first the schema: include/sql/bronze/*.sql, idempotent. With least privilege
  (scripts/postgres.sh, include/sql/security) the owner role applied it at setup and the loader's role may not:
  the task then verifies the tables and the loader's grants instead. Then it lists the topics' partitions on the
  broker and splits them into `load_tasks` groups of similar pending work (high watermark - offset stored in
  bronze.consumer_offsets). One task for both: a task start less on every hourly run (bench/README.md).
- `load[i]`: a bounded drain of its partitions up to their high watermarks at start; offsets are stored in
  PostgreSQL in the same transaction as the rows, so any task can be cleared or retried at any point
  (a rerun resumes at the stored offsets; overlapping or outdated plans are kept safe by the offsets
  compare-and-set and the UNIQUE (topic, partition, offset) constraint).
- `publish`: logs the totals and emits the Asset `shopstream.bronze.raw_events` (extra: the totals and, per topic,
  inserted, quarantined by reason and the remaining lag, and the extract hours this run loaded for the dbt DAG's
  reconciliation: shopstream.reconcile.windows; its XCom: the merged counts of every load), and records the
  per-topic counts in ops.bronze_loads (shopstream.ops).

Params: `topics` (default: the contract's four, renamed by SHOPSTREAM_TOPIC_<NAME> like the extract DAG),
`load_tasks`, `consumer_group`, `max_seconds` (per load task; the rest stays as lag for the next run).
Connections: `bronze_db` (PostgreSQL, the loader's role: append to bronze only), `kafka_default` (Kafka).
Every task checks them (shopstream.config) first and fails at once, without retries, when one is missing or
malformed.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task
from shopstream import dag_defaults
from shopstream.assets import BRONZE_RAW_EVENTS, KAFKA_TOPIC_ASSETS

default_args = {
    **dag_defaults.default_args(retries=3, retry_delay=timedelta(seconds=30),
                                max_retry_delay=timedelta(minutes=10)),
    "execution_timeout": timedelta(minutes=45),
}


@dag(
    dag_id="shopstream_bronze",
    description="Kafka -> bronze.raw_events (exactly once per topic/partition/offset), parallel by partition",
    schedule=list(KAFKA_TOPIC_ASSETS.values()),
    start_date=dag_defaults.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["shopstream", "bronze", "kafka", "postgres"],
    params={
        "topics": Param(None, type=["null", "array"], items={"type": "string"},
                        description="Topics to load (default: customers, products, orders, events)"),
        # None: SHOPSTREAM_BRONZE_LOAD_TASKS / SHOPSTREAM_BRONZE_GROUP, read (and checked) when the task runs, so
        # a bad value fails that task with a message naming the variable instead of breaking the DAG's import.
        "load_tasks": Param(None, type=["null", "integer"], minimum=1, maximum=64,
                            description="Parallel load tasks (partition groups); default SHOPSTREAM_BRONZE_LOAD_TASKS, else 3"),
        "consumer_group": Param(None, type=["null", "string"],
                                description="Offsets key in bronze.consumer_offsets; default SHOPSTREAM_BRONZE_GROUP, "
                                            "else shopstream-bronze"),
        "max_seconds": Param(1800, type=["null", "number"], minimum=1,
                             description="Time budget per load task (the rest is left as lag)"),
    },
    doc_md=__doc__,
)
def shopstream_bronze():
    @task
    def plan_partitions(params=None) -> list[list[str]]:
        from shopstream.bronze import airflow_entry

        airflow_entry.apply_ddl()  # verifies (or, for a role that owns bronze, applies) the schema first
        return airflow_entry.plan(params["topics"], params["load_tasks"], params["consumer_group"])

    @task(max_active_tis_per_dagrun=16)
    def load(partitions: list[str], params=None) -> dict:
        from shopstream.bronze import airflow_entry

        return airflow_entry.load(list(partitions), params["consumer_group"], max_seconds=params["max_seconds"])

    @task(outlets=[BRONZE_RAW_EVENTS], inlets=[*KAFKA_TOPIC_ASSETS.values(), BRONZE_RAW_EVENTS])
    def publish(results, outlet_events=None, inlet_events=None, dag_run=None) -> dict:
        from shopstream.bronze import airflow_entry
        from shopstream.reconcile import windows

        merged = airflow_entry.summarize(list(results))
        extra = windows.record_bronze_event(outlet_events, merged, inlet_events, dag_run)  # totals + hours loaded
        airflow_entry.record_ops(merged, extra, dag_run)  # ops.bronze_loads: the Pipeline health dashboard
        return merged

    publish(load.expand(partitions=plan_partitions()))


shopstream_bronze()
