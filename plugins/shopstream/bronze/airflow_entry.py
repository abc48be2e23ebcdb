"""The thin Airflow layer of the bronze stage: Airflow connections -> loader arguments, one function per task.

Imported inside the DAG's task functions only (never at DAG parse time). Connections, built by
shopstream.connections: ``bronze_db`` (PostgreSQL with its TLS extras: the loader's own least-privilege role, which
may only append to bronze) and ``kafka_default`` (its ``extra`` is the confluent-kafka config, SASL/TLS included).
Every task first checks its configuration (shopstream.config) and fails at once, without retries, when a
connection or variable is missing or malformed.

DDL: ``apply_ddl`` mostly verifies: where least privilege is set up, the owner role applied include/sql/bronze at
setup and the loader's role cannot run DDL; a role that owns bronze still applies it (shopstream.bronze.schema).
"""

from __future__ import annotations

import os
from typing import Any

from shopstream.connections import BRONZE_DB as BRONZE_CONN_ID
from shopstream.connections import KAFKA as KAFKA_CONN_ID
from shopstream.connections import WAREHOUSE_DB as WAREHOUSE_CONN_ID
from shopstream.connections import kafka_config, postgres_conninfo
from shopstream.topics import topic_names


def topics(override: list[str] | None = None) -> list[str]:
    """The topics to load: the override (DAG param) if given, else the contract's four topics, each renamed
    by ``SHOPSTREAM_TOPIC_<NAME>`` when set (the same variables the extract DAG honours)."""
    if override:
        return list(override)
    return list(topic_names().values())


def _preflight(conn_id: str, kafka_conn_id: str | None = None) -> None:
    from shopstream import config

    # dbt reads bronze through warehouse_db: the loader must write the same database.
    same_db = [(conn_id, WAREHOUSE_CONN_ID)] if conn_id != WAREHOUSE_CONN_ID else []
    config.task_preflight([conn_id, *([kafka_conn_id] if kafka_conn_id else [])], topics=True,
                          ints={"SHOPSTREAM_BRONZE_LOAD_TASKS": 1}, same_db=same_db)


def apply_ddl(warehouse_conn_id: str = BRONZE_CONN_ID) -> list[str]:
    """Verify the bronze schema and the loader's grants (or, for a role that owns bronze, apply the DDL)."""
    from shopstream.bronze import schema

    _preflight(warehouse_conn_id)
    return schema.apply_or_verify(postgres_conninfo(warehouse_conn_id))


def load_tasks(param: int | None = None) -> int:
    """The number of load tasks: the DAG param when given, else SHOPSTREAM_BRONZE_LOAD_TASKS (checked by the
    task's preflight), else 3."""
    return int(param) if param else int(os.environ.get("SHOPSTREAM_BRONZE_LOAD_TASKS") or 3)


def consumer_group(param: str | None = None) -> str:
    """The offsets key: the DAG param when given, else SHOPSTREAM_BRONZE_GROUP, else the loader's default."""
    from shopstream.bronze.consumer import DEFAULT_GROUP

    return param or os.environ.get("SHOPSTREAM_BRONZE_GROUP") or DEFAULT_GROUP


def plan(topic_override: list[str] | None, n_groups: int | None, group: str | None,
         warehouse_conn_id: str = BRONZE_CONN_ID, kafka_conn_id: str = KAFKA_CONN_ID) -> list[list[str]]:
    from shopstream.bronze.loader import plan_groups

    _preflight(warehouse_conn_id, kafka_conn_id)
    return plan_groups(postgres_conninfo(warehouse_conn_id), kafka_config(kafka_conn_id),
                       topics(topic_override), load_tasks(n_groups), consumer_group(group))


def load(partitions: list[str], group: str | None, max_seconds: float | None = None,
         batch_max_messages: int | None = None, warehouse_conn_id: str = BRONZE_CONN_ID,
         kafka_conn_id: str = KAFKA_CONN_ID) -> dict[str, Any]:
    from shopstream.bronze.loader import BronzeLoader, LoaderSettings
    from shopstream.bronze.planning import parse_tps
    from shopstream.bronze.schema import may_apply_ddl

    _preflight(warehouse_conn_id, kafka_conn_id)
    conninfo = postgres_conninfo(warehouse_conn_id)
    kwargs: dict[str, Any] = {"consumer_group": consumer_group(group), "max_seconds": max_seconds,
                              "apply_ddl": may_apply_ddl(conninfo)}
    if batch_max_messages:
        kwargs["batch_max_messages"] = batch_max_messages
    loader = BronzeLoader(conninfo, kafka_config(kafka_conn_id),
                          partitions=parse_tps(partitions), settings=LoaderSettings(**kwargs))
    return loader.run().as_dict()


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    from shopstream.bronze.results import log_merged, merge_results

    merged = merge_results(results)
    log_merged(merged)
    return merged


def record_ops(merged: dict[str, Any], asset_extra: dict[str, Any] | None, dag_run: Any,
               warehouse_conn_id: str = BRONZE_CONN_ID) -> int:
    """What this run's loads stored, per topic, into ops.bronze_loads (shopstream.ops), with the extract hours the
    run loaded (its Asset event's `extract`); a retried `publish` overwrites its rows."""
    from shopstream import ops

    return ops.record_bronze_loads(warehouse_conn_id, merged, getattr(dag_run, "run_id", None) or "manual",
                                   ((asset_extra or {}).get("extract") or {}).keys())
