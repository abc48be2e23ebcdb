"""The reconciliation's warehouse side: count every entity of an hour in bronze, silver and gold, and the
daily aggregates of the days the hours touch; `reconcile()` collects, compares and reports.

Counts are distinct *keys* per hour, the hour being the Kafka timestamp of the bronze rows (see the package
docstring for why keys, and for the equations); order items are counted inside the latest bronze version of
each order of the hour. All queries read; the connection is a psycopg 3 connection with the dbt role
(`warehouse_db`: it owns silver and gold and reads bronze).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from shopstream.hours import hour_iso, to_utc_hour
from shopstream.reconcile.checks import DayCounts, HourCounts, ReconciliationError, compare, summarize
from shopstream.topics import topic_names

log = logging.getLogger("shopstream.reconcile")

ENTITIES = ("customers", "products", "orders", "order_items", "events")

#: entity -> (bronze topic, silver table, silver key column, gold table or None)
LAYOUT: dict[str, tuple[str, str, str, str | None]] = {
    "customers": ("customers", "silver.customers", "customer_id", "gold.dim_customers"),
    "products": ("products", "silver.products", "product_id", "gold.dim_products"),
    "orders": ("orders", "silver.orders", "order_id", "gold.fct_orders"),
    "events": ("events", "silver.events", "event_id", None),  # gold has only the daily aggregate
}

_HOUR_SQL = """
with rows as (
    select bronze_id, record_key, record_value, "partition", "offset", event_ts
    from bronze.raw_events
    where topic = %(topic)s and event_ts >= %(h)s and event_ts < %(h)s + interval '1 hour'
),
keys as (select distinct record_key as k from rows),
in_silver as (select k from keys where exists (select 1 from {silver} s where s.{key} = keys.k)),
quarantined as (
    select distinct r.record_key as k
    from rows r
    where r.record_key not in (select k from in_silver)
      and exists (select 1 from silver.quarantine q where q.bronze_id = r.bronze_id and q.source_table = %(entity)s)
)
select
    (select count(*) from keys),
    (select count(distinct q.record_key) + count(*) filter (where q.record_key is null)
     from bronze.raw_events_quarantine q
     where q.topic = %(topic)s and q.event_ts >= %(h)s and q.event_ts < %(h)s + interval '1 hour'
       and (q.record_key is null
            or not exists (select 1 from keys where convert_to(keys.k, 'UTF8') = q.record_key))),
    (select count(*) from in_silver),
    (select count(*) from quarantined),
    {gold_count}
"""

_ITEMS_SQL = """
with latest as (
    select distinct on (record_key) record_key as order_id, record_value
    from bronze.raw_events
    where topic = %(topic)s and event_ts >= %(h)s and event_ts < %(h)s + interval '1 hour'
    order by record_key, event_ts desc, "partition" desc, "offset" desc
),
sized as (
    select order_id,
           case when jsonb_typeof(record_value -> 'items') = 'array'
                then jsonb_array_length(record_value -> 'items') else 0 end as n,
           exists (select 1 from silver.orders o where o.order_id = latest.order_id) as in_silver
    from latest
)
select
    (select coalesce(sum(n), 0) from sized),
    (select count(*) from silver.order_items i where i.order_id in (select order_id from sized)),
    (select coalesce(sum(n), 0) from sized where not in_silver),
    (select count(*) from gold.fct_order_items g
     where g.order_id in (select order_id from sized)
       and exists (select 1 from silver.order_items i where i.order_item_id = g.order_item_id))
"""


def _naive(hour: datetime) -> datetime:
    return to_utc_hour(hour).replace(tzinfo=None)


def collect(conn, hours: Iterable[datetime], expected: Mapping[str, Mapping[str, int]] | None = None,
            topics: Mapping[str, str] | None = None) -> tuple[list[HourCounts], list[DayCounts]]:
    """Count every entity of every hour in the warehouse (psycopg 3 connection). `topics` maps a base topic to
    the Kafka topic name bronze holds (default: $SHOPSTREAM_TOPIC_<NAME> or the base name)."""
    topics = dict(topics or topic_names())
    expected = expected or {}
    hour_rows: list[HourCounts] = []
    days: set[date] = set()
    for hour in sorted({to_utc_hour(h) for h in hours}):
        iso = hour_iso(hour)
        days.add(hour.date())
        exp = expected.get(iso, {})
        for entity in ENTITIES:
            if entity == "order_items":
                b, s, sq, g = conn.execute(_ITEMS_SQL, {"topic": topics["orders"], "h": _naive(hour)}).fetchone()
                hour_rows.append(HourCounts(iso, entity, exp.get(entity), int(b), 0, int(s), int(sq), int(g)))
                continue
            topic, silver, key, gold = LAYOUT[entity]
            gold_count = (f"(select count(*) from in_silver join {gold} g on g.{key} = in_silver.k)"
                          if gold else "null")
            sql = _HOUR_SQL.format(silver=silver, key=key, gold_count=gold_count)
            b, bq, s, sq, g = conn.execute(sql, {"topic": topics[topic], "h": _naive(hour),
                                                 "entity": entity}).fetchone()
            hour_rows.append(HourCounts(iso, entity, exp.get(topic), int(b), int(bq), int(s), int(sq),
                                        None if g is None else int(g)))
    day_rows: list[DayCounts] = []
    for day in sorted(days):
        s_n, s_rev = conn.execute(
            "select count(*), coalesce(sum(total_amount), 0) from silver.orders "
            "where order_date >= %(d)s and order_date < %(d)s + 1", {"d": day}).fetchone()
        f_n, f_rev = conn.execute(
            "select count(*), coalesce(sum(total_amount), 0) from gold.fct_orders "
            "where order_date >= %(d)s and order_date < %(d)s + 1", {"d": day}).fetchone()
        agg = conn.execute("select orders, revenue from gold.agg_orders_daily where order_date = %s",
                           [day]).fetchone() or (0, Decimal("0"))
        day_rows.append(DayCounts(day.isoformat(), "orders", int(s_n), int(f_n), int(agg[0])))
        day_rows.append(DayCounts(day.isoformat(), "revenue", Decimal(s_rev), Decimal(f_rev), Decimal(agg[1])))
        silver_events = dict(conn.execute(
            "select event_type, count(*) from silver.events where created_at >= %(d)s and created_at < %(d)s + 1 "
            "group by event_type", {"d": day}).fetchall())
        gold_events = dict(conn.execute(
            "select event_type, events from gold.agg_events_daily where event_date = %s", [day]).fetchall())
        for etype in sorted(set(silver_events) | set(gold_events)):
            day_rows.append(DayCounts(day.isoformat(), f"events:{etype}", int(silver_events.get(etype, 0)), None,
                                      int(gold_events.get(etype, 0))))
    return hour_rows, day_rows


def reconcile(conn, hours: Iterable[datetime], expected: Mapping[str, Mapping[str, int]] | None = None,
              topics: Mapping[str, str] | None = None, *, raise_on_mismatch: bool = True,
              log_table: bool = True) -> dict[str, Any]:
    """Collect, compare, log; raise ReconciliationError (with the table) on a mismatch. Returns the counts
    (and the table as text): `checks.summarize`. `expected`: {hour: {base topic / 'order_items': keys}}
    published (the `published` column; absent entries are not checked)."""
    hours = sorted({to_utc_hour(h) for h in hours})
    hour_rows, day_rows = collect(conn, hours, expected, topics)
    mismatches = compare(hour_rows, day_rows)
    summary = summarize(hours, hour_rows, day_rows, mismatches)
    table = summary["table"]
    if log_table:
        if mismatches:
            log.error("reconciliation FAILED for %s:\n%s", ", ".join(summary["hours"]), table)
        else:
            log.info("reconciliation ok for %s:\n%s", ", ".join(summary["hours"]) or "no hours", table)
    if mismatches and raise_on_mismatch:
        raise ReconciliationError(f"counts do not add up for {', '.join(summary['hours'])}:\n{table}")
    return summary
