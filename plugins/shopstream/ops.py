"""The `ops` schema's one home: what the tasks record about their runs, and what the reconciliation reads back.

Three tables (include/sql/ops/001_pipeline_health.sql), each written by one task through one call here:
- `ops.extract_published` - the extract task (`record_extract`): per logical hour and Kafka topic the messages
  delivered, their distinct keys (orders: and items), the Kafka offsets they got;
- `ops.bronze_loads` - the bronze DAG's `publish` task (`record_bronze_loads`): per run and topic what the loads
  inserted, quarantined (by reason) and left as Kafka lag;
- `ops.reconcile_results` - the dbt DAG's `reconcile` task (`record_reconciliation`): per hour and entity the
  counts of every layer, the keys held in a wrong version, the mismatches.
Every write is an upsert on the table's key (hour/topic, run/topic, hour/entity/topic), so a cleared or retried
task overwrites its own rows and never adds a second one. `published_counts` reads back what extract recorded:
the reconciliation's `published` column for any hour, whatever produced it (never re-derived from the generator).

Rows are keyed by the Kafka topic *name* (SHOPSTREAM_TOPIC_<NAME> applied), so runs on redirected topics (tests)
never touch the rows of the contract's topics. The writers take an open psycopg 3 connection, or a connection id
(`shopstream.connections`: the extract and reconcile tasks use `warehouse_db`, the bronze task `bronze_db`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from shopstream.hours import hour_iso, parse_hour, to_utc_hour

log = logging.getLogger(__name__)

#: reconcile entity -> the base topic its messages come from
ENTITY_TOPIC = {"customers": "customers", "products": "products", "orders": "orders", "order_items": "orders",
                "events": "events"}

_EXTRACT_UPSERT = """
insert into ops.extract_published
    (logical_hour, topic, base_topic, messages, keys, order_items, offsets, dag_run_id, recorded_at)
values (%(logical_hour)s, %(topic)s, %(base_topic)s, %(messages)s, %(keys)s, %(order_items)s, %(offsets)s,
        %(dag_run_id)s, %(now)s)
on conflict (logical_hour, topic) do update set
    base_topic = excluded.base_topic, messages = excluded.messages, keys = excluded.keys,
    order_items = excluded.order_items, offsets = excluded.offsets, dag_run_id = excluded.dag_run_id,
    recorded_at = excluded.recorded_at
"""

_BRONZE_UPSERT = """
insert into ops.bronze_loads
    (dag_run_id, topic, loaded_at, inserted, quarantined, quarantined_by_reason, remaining_lag, extract_hours)
values (%(dag_run_id)s, %(topic)s, %(now)s, %(inserted)s, %(quarantined)s, %(quarantined_by_reason)s,
        %(remaining_lag)s, %(extract_hours)s)
on conflict (dag_run_id, topic) do update set
    loaded_at = excluded.loaded_at, inserted = excluded.inserted, quarantined = excluded.quarantined,
    quarantined_by_reason = excluded.quarantined_by_reason, remaining_lag = excluded.remaining_lag,
    extract_hours = excluded.extract_hours
"""

_RECONCILE_UPSERT = """
insert into ops.reconcile_results
    (hour, entity, topic, published, bronze, bronze_quarantine, silver, silver_quarantine, gold, wrong_version,
     silver_quarantine_by_reason, ok, mismatches, dag_run_id, reconciled_at)
values (%(hour)s, %(entity)s, %(topic)s, %(published)s, %(bronze)s, %(bronze_quarantine)s, %(silver)s,
        %(silver_quarantine)s, %(gold)s, %(wrong_version)s, %(silver_quarantine_by_reason)s, %(ok)s,
        %(mismatches)s, %(dag_run_id)s, %(now)s)
on conflict (hour, entity, topic) do update set
    published = excluded.published, bronze = excluded.bronze, bronze_quarantine = excluded.bronze_quarantine,
    silver = excluded.silver, silver_quarantine = excluded.silver_quarantine, gold = excluded.gold,
    wrong_version = excluded.wrong_version, silver_quarantine_by_reason = excluded.silver_quarantine_by_reason,
    ok = excluded.ok, mismatches = excluded.mismatches, dag_run_id = excluded.dag_run_id,
    reconciled_at = excluded.reconciled_at
"""


def _naive_utc(value: datetime | str) -> datetime:
    hour = parse_hour(value) if isinstance(value, str) else to_utc_hour(value)
    return hour.replace(tzinfo=None)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# ------------------------------------------------------------------------------------------- rows (pure)


def extract_rows(results: Mapping[str, Mapping[str, Any]], dag_run_id: str | None) -> list[dict[str, Any]]:
    """ops.extract_published rows from the extract task's results ({base topic: counts of `publish_topic`})."""
    return [{
        "logical_hour": _naive_utc(c["logical_hour"]), "topic": c["topic"], "base_topic": base,
        "messages": int(c["published"]), "keys": int(c.get("keys", c["published"])),
        "order_items": c.get("order_items"), "offsets": json.dumps(c.get("offsets") or {}, sort_keys=True),
        "dag_run_id": dag_run_id,
    } for base, c in results.items()]


def bronze_rows(merged: Mapping[str, Any], dag_run_id: str,
                extract_hours: Iterable[str] = ()) -> list[dict[str, Any]]:
    """ops.bronze_loads rows from the bronze DAG's merged load results (`shopstream.bronze.results`): one per
    topic, with the extract hours the run loaded (the bronze Asset event's `extract`)."""
    hours = json.dumps(sorted(extract_hours))
    return [{
        "dag_run_id": dag_run_id, "topic": topic, "inserted": int(c.get("inserted") or 0),
        "quarantined": int(c.get("quarantined") or 0),
        "quarantined_by_reason": json.dumps(c.get("quarantined_by_reason") or {}, sort_keys=True),
        "remaining_lag": c.get("remaining_lag"), "extract_hours": hours,
    } for topic, c in (merged.get("topics") or {}).items()]


def reconcile_rows(summary: Mapping[str, Any], topics: Mapping[str, str],
                   dag_run_id: str | None) -> list[dict[str, Any]]:
    """ops.reconcile_results rows from a reconciliation summary (`shopstream.reconcile.checks.summarize`).
    `topics` maps a base topic to the Kafka topic name the hours were read from."""
    mismatches: dict[tuple[str, str], list[str]] = {}
    for m in summary.get("mismatch_rows", ()):
        mismatches.setdefault((m["where"], m["entity"]), []).append(m["text"])
    out = []
    for c in summary.get("counts", ()):
        found = mismatches.get((c["hour"], c["entity"]), [])
        out.append({
            "hour": _naive_utc(c["hour"]), "entity": c["entity"], "topic": topics[ENTITY_TOPIC[c["entity"]]],
            **{k: c.get(k) for k in ("published", "bronze", "bronze_quarantine", "silver", "silver_quarantine",
                                     "gold")},
            "wrong_version": int(c.get("wrong_version") or 0),
            "silver_quarantine_by_reason": json.dumps(c.get("silver_quarantine_by_reason") or {}, sort_keys=True),
            "ok": not found, "mismatches": found, "dag_run_id": dag_run_id,
        })
    return out


# ---------------------------------------------------------------------------------------------- writes


MISSING_SCHEMA = ("the ops schema is missing in this database: apply include/sql/ops (scripts/postgres.sh start "
                  "does it with the grants; Docker: run docker/postgres-init/20-shopstream-roles.sh once)")


def _missing_relation(exc: Exception) -> bool:
    import psycopg

    return isinstance(exc, (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName))


def _write(target: Any, sql: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """Upsert `rows` in one transaction through `target`: an open psycopg connection or a connection id.

    A database set up before the ops schema existed has no table to write to: the run is then not recorded
    (an error in the log says how to set it up) but the task goes on - its data is written, only the dashboard's
    and the reconciliation's record of it is missing. Any other error (a connection, a privilege) raises."""
    if not rows:
        return 0
    if isinstance(target, str):
        import psycopg

        from shopstream.connections import postgres_conninfo

        with psycopg.connect(postgres_conninfo(target)) as conn:
            return _write(conn, sql, rows)
    now = _now()
    try:
        with target.transaction(), target.cursor() as cur:
            cur.executemany(sql, [{**r, "now": now} for r in rows])
    except Exception as exc:
        if not _missing_relation(exc):
            raise
        log.error("%d ops record(s) not written: %s (%s)", len(rows), MISSING_SCHEMA, exc)
        return 0
    return len(rows)


def record_extract(target: Any, results: Mapping[str, Mapping[str, Any]], dag_run_id: str | None) -> int:
    """Record what the extract task published (ops.extract_published); returns the rows written."""
    return _write(target, _EXTRACT_UPSERT, extract_rows(results, dag_run_id))


def record_bronze_loads(target: Any, merged: Mapping[str, Any], dag_run_id: str,
                        extract_hours: Iterable[str] = ()) -> int:
    """Record what a bronze run's loads stored (ops.bronze_loads); returns the rows written."""
    return _write(target, _BRONZE_UPSERT, bronze_rows(merged, dag_run_id, extract_hours))


def record_reconciliation(target: Any, summary: Mapping[str, Any], topics: Mapping[str, str],
                          dag_run_id: str | None) -> int:
    """Record a reconciliation's per-hour results (ops.reconcile_results); returns the rows written."""
    return _write(target, _RECONCILE_UPSERT, reconcile_rows(summary, topics, dag_run_id))


# ---------------------------------------------------------------------------------------------- reads


def published_counts(conn: Any, hours: Iterable[datetime], topics: Mapping[str, str]) -> dict[str, dict[str, int]]:
    """{hour: {base topic / 'order_items': keys}} that extract recorded as published in `hours` on the Kafka
    topics `topics` ({base topic: name}). An hour or topic nothing recorded is absent (not checked)."""
    wanted = sorted({_naive_utc(h) for h in hours})
    by_name = {name: base for base, name in topics.items()}
    if not wanted or not by_name:
        return {}
    try:
        with conn.transaction():
            rows = conn.execute(
                "select logical_hour, topic, keys, order_items from ops.extract_published "
                "where logical_hour = any(%s) and topic = any(%s)", [wanted, list(by_name)]).fetchall()
    except Exception as exc:
        if not _missing_relation(exc):
            raise
        log.error("published counts not read: %s (%s)", MISSING_SCHEMA, exc)
        return {}
    out: dict[str, dict[str, int]] = {}
    for hour, name, keys, items in rows:
        counts = out.setdefault(hour_iso(hour.replace(tzinfo=UTC)), {})
        counts[by_name[name]] = int(keys)
        if by_name[name] == "orders" and items is not None:
            counts["order_items"] = int(items)
    return out
