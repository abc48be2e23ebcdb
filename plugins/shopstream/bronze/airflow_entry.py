"""The thin Airflow layer of the bronze stage: Airflow connections -> loader arguments, one function per task.

Imported inside the DAG's task functions only (never at DAG parse time). Connections: ``warehouse_db``
(PostgreSQL, via PostgresHook) and ``kafka_default`` (the Kafka provider's KafkaConsumerHook: its ``extra`` is
the confluent-kafka config).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from shopstream.assets import TOPICS

log = logging.getLogger("shopstream.bronze")

WAREHOUSE_CONN_ID = "warehouse_db"
KAFKA_CONN_ID = "kafka_default"

# libpq parameters a Connection's extra may carry (the rest of the extra is ignored).
_LIBPQ_EXTRA = ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "connect_timeout", "options",
                "target_session_attrs", "application_name", "keepalives", "keepalives_idle")


def topics(override: list[str] | None = None) -> list[str]:
    """The topics to load: the override (DAG param) if given, else the contract's four topics, each renamed
    by ``SHOPSTREAM_TOPIC_<NAME>`` when set (the same variables the extract DAG honours)."""
    if override:
        return list(override)
    return [os.environ.get(f"SHOPSTREAM_TOPIC_{t.upper()}") or t for t in TOPICS]


def kafka_consumer_config(kafka_conn_id: str = KAFKA_CONN_ID) -> dict[str, Any]:
    """The confluent-kafka config of the Airflow Kafka connection, as the provider builds it."""
    from airflow.providers.apache.kafka.hooks.consume import KafkaConsumerHook

    hook = KafkaConsumerHook(topics=[], kafka_config_id=kafka_conn_id)
    build = getattr(hook, "_build_config", None)  # resolves callbacks and managed-auth tokens (provider 2.x)
    return dict(build()) if build else dict(hook.get_connection(kafka_conn_id).extra_dejson)


def warehouse_conninfo(conn_id: str = WAREHOUSE_CONN_ID) -> str:
    """libpq conninfo for the Airflow PostgreSQL connection (psycopg 3; the loader manages its connection)."""
    import psycopg
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    conn = PostgresHook(postgres_conn_id=conn_id).get_connection(conn_id)
    extra = conn.extra_dejson or {}
    params = {k: extra[k] for k in _LIBPQ_EXTRA if k in extra}
    return psycopg.conninfo.make_conninfo(
        host=conn.host or None, port=conn.port or None, dbname=conn.schema or None, user=conn.login or None,
        password=conn.password or None, **params)


def apply_ddl(warehouse_conn_id: str = WAREHOUSE_CONN_ID) -> list[str]:
    from shopstream.bronze.loader import apply_ddl as _apply

    files = _apply(warehouse_conninfo(warehouse_conn_id))
    log.info("bronze DDL applied: %s", ", ".join(files))
    return files


def plan(topic_override: list[str] | None, n_groups: int, consumer_group: str,
         warehouse_conn_id: str = WAREHOUSE_CONN_ID, kafka_conn_id: str = KAFKA_CONN_ID) -> list[list[str]]:
    from shopstream.bronze.loader import plan_groups

    return plan_groups(warehouse_conninfo(warehouse_conn_id), kafka_consumer_config(kafka_conn_id),
                       topics(topic_override), n_groups, consumer_group)


def load(partitions: list[str], consumer_group: str, max_seconds: float | None = None,
         batch_max_messages: int | None = None, warehouse_conn_id: str = WAREHOUSE_CONN_ID,
         kafka_conn_id: str = KAFKA_CONN_ID) -> dict[str, Any]:
    from shopstream.bronze.loader import BronzeLoader, LoaderSettings
    from shopstream.bronze.planning import parse_tps

    kwargs: dict[str, Any] = {"consumer_group": consumer_group, "max_seconds": max_seconds}
    if batch_max_messages:
        kwargs["batch_max_messages"] = batch_max_messages
    loader = BronzeLoader(warehouse_conninfo(warehouse_conn_id), kafka_consumer_config(kafka_conn_id),
                          partitions=parse_tps(partitions), settings=LoaderSettings(**kwargs))
    return loader.run().as_dict()


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    from shopstream.bronze.loader import merge_results

    merged = merge_results(results)
    t = merged["totals"]
    log.info("bronze totals over %d loads: read %d, inserted %d, already present %d, quarantined %d, "
             "remaining lag %d", merged["loads"], t["read"], t["inserted"], t["already_present"],
             t["quarantined"], t["remaining_lag"])
    for topic, c in merged["topics"].items():
        log.info("  %-24s read %9d  inserted %9d  already present %8d  quarantined %6d  remaining lag %8d%s",
                 topic, c["read"], c["inserted"], c["already_present"], c["quarantined"], c["remaining_lag"],
                 f"  {c['quarantined_by_reason']}" if c["quarantined_by_reason"] else "")
    return merged
