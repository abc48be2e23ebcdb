"""The thin Airflow layer of the bronze stage: Airflow connections -> loader arguments, one function per task.

Imported inside the DAG's task functions only (never at DAG parse time). Connections, built by
shopstream.connections: ``bronze_db`` (PostgreSQL with its TLS extras: the loader's own least-privilege role, which
may only append to bronze) and ``kafka_default`` (its ``extra`` is the confluent-kafka config, SASL/TLS included).
Every task first checks its configuration (shopstream.config) and fails at once, without retries, when a
connection or variable is missing or malformed.

DDL: where least privilege is set up (scripts/postgres.sh, include/sql/security/), bronze belongs to an owner
role that applied include/sql/bronze at setup; the loader's role cannot run DDL, so ``apply_ddl`` only verifies
that the tables are there and that the role may append to them. A role that owns bronze (a single-role
database, e.g. a test database) still applies the DDL itself.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from shopstream.connections import BRONZE_DB as BRONZE_CONN_ID
from shopstream.connections import KAFKA as KAFKA_CONN_ID
from shopstream.connections import WAREHOUSE_DB as WAREHOUSE_CONN_ID
from shopstream.connections import kafka_config, postgres_conninfo
from shopstream.topics import topic_names

log = logging.getLogger("shopstream.bronze")


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


# Can the connected role apply the DDL itself (it owns bronze, or bronze does not exist and it may create it)?
_MAY_APPLY_DDL = """
SELECT CASE WHEN n.oid IS NULL THEN has_database_privilege(current_database(), 'CREATE')
            ELSE pg_has_role(current_user, n.nspowner, 'USAGE') END
  FROM (SELECT 1) AS one LEFT JOIN pg_namespace n ON n.nspname = 'bronze'
"""
# What the loader needs when the DDL is managed by the owner role.
_LOADER_NEEDS = {
    "bronze.raw_events": ("SELECT", "INSERT"),
    "bronze.raw_events_quarantine": ("SELECT", "INSERT"),
    "bronze.consumer_offsets": ("SELECT", "INSERT", "UPDATE"),
}


def may_apply_ddl(conninfo: str) -> bool:
    import psycopg

    with psycopg.connect(conninfo) as conn:
        return bool(conn.execute(_MAY_APPLY_DDL).fetchone()[0])


def verify_ddl(conninfo: str) -> list[str]:
    """The bronze tables exist and the connected role may append to them; else a message with the fix."""
    import psycopg

    problems = []
    with psycopg.connect(conninfo) as conn:
        role = conn.execute("SELECT current_user").fetchone()[0]
        for table, privileges in _LOADER_NEEDS.items():
            if conn.execute("SELECT to_regclass(%s)", [table]).fetchone()[0] is None:
                problems.append(f"{table} does not exist")
                continue
            missing = [p for p in privileges
                       if not conn.execute("SELECT has_table_privilege(%s, %s)", [table, p]).fetchone()[0]]
            if missing:
                problems.append(f"role {role} lacks {', '.join(missing)} on {table}")
    if problems:
        raise RuntimeError(
            "bronze is not set up for the loader: " + "; ".join(problems) + ". The bronze DDL and the grants are "
            "applied by the owner role at setup: run `scripts/postgres.sh start` (warehouse database) or "
            "`scripts/postgres.sh secure DATABASE`; with Docker, docker/postgres-init does it.")
    return sorted(_LOADER_NEEDS)


def apply_ddl(warehouse_conn_id: str = BRONZE_CONN_ID) -> list[str]:
    from shopstream.bronze.loader import apply_ddl as _apply

    _preflight(warehouse_conn_id)
    conninfo = postgres_conninfo(warehouse_conn_id)
    if may_apply_ddl(conninfo):
        files = _apply(conninfo)
        log.info("bronze DDL applied: %s", ", ".join(files))
        return files
    tables = verify_ddl(conninfo)
    log.info("bronze DDL is managed by the owner role (least privilege); verified %s", ", ".join(tables))
    return tables


def load_tasks(param: int | None = None) -> int:
    """The number of load tasks: the DAG param when given, else SHOPSTREAM_BRONZE_LOAD_TASKS (checked by the
    task's preflight), else 3."""
    return int(param) if param else int(os.environ.get("SHOPSTREAM_BRONZE_LOAD_TASKS") or 3)


def consumer_group(param: str | None = None) -> str:
    """The offsets key: the DAG param when given, else SHOPSTREAM_BRONZE_GROUP, else the loader's default."""
    from shopstream.bronze.loader import DEFAULT_GROUP

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
