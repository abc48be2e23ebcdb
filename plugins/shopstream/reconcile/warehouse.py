"""The reconciliation's warehouse side: count every entity of an hour in bronze, silver and gold, and the
daily aggregates of the days the hours touch; `reconcile()` collects, compares and reports.

Counts are distinct *keys* per hour, the hour being the Kafka timestamp of the bronze rows (see the package
docstring for why keys, and for the equations); order items are counted inside the latest bronze version of
each order of the hour. Versions are checked per key against staging's admitted rows (`wrong_versions`). Also
per hour: silver's quarantine by reason. All queries read; the connection is a psycopg 3 connection with the dbt
role (`warehouse_db`: it owns staging, silver and gold and reads bronze).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
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


#: The lifecycle order of an order's statuses: dbt's var `order_statuses` (include/dbt/shopstream/dbt_project.yml),
#: which `version_order` uses to order versions of an order that share their timestamp (a unit test pins the two).
ORDER_STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled")

#: entity -> (staging table, newest-first order of its versions: macros/version_order.sql, over staging columns)
VERSIONED: dict[str, tuple[str, str]] = {
    "customers": ("staging.stg_customers", "s._event_ts desc, s._partition desc, s._offset desc"),
    "products": ("staging.stg_products", "s._event_ts desc, s._partition desc, s._offset desc"),
    "orders": ("staging.stg_orders",
               "s._event_ts desc, coalesce(array_position(%(statuses)s::text[], s.status::text), 0) desc, "
               "s._partition desc, s._offset desc"),
    "events": ("staging.stg_events", "s._event_ts desc, s._partition desc, s._offset desc"),
}

#: entity -> a condition true when gold's row `g` does not show silver's row `v` (None: no per-key gold row)
GOLD_DIFFERS: dict[str, str | None] = {
    "customers": "(g.email, g.updated_at) is distinct from (v.email, v.updated_at)",
    "products": "g.updated_at is distinct from v.updated_at",
    "orders": "(g.customer_id, g.order_date, g.total_amount, g.status) is distinct from "
              "(v.customer_id, v.order_date, v.total_amount, v.status) "
              "or g.customer_email is distinct from (select c.email from silver.customers c "
              "where c.customer_id = v.customer_id)",
    "events": None,
}

# Versions, not only keys: per key of the hours, silver must hold the latest version staging admitted (by the
# dbt models' own version order), and gold must show silver's row. One query per entity for all the hours.
_VERSION_SQL = """
with rows as (
    select distinct date_trunc('hour', event_ts) as h, record_key as k
    from bronze.raw_events
    where topic = %(topic)s and event_ts >= %(lo)s and event_ts < %(hi)s
      and date_trunc('hour', event_ts) = any(%(hours)s)
),
latest as (
    select distinct on (s.{key}) s.{key} as k, s._bronze_id
    from {staging} s
    where s._status = 'admitted' and s.{key} in (select k from rows)
    order by s.{key}, {order}
),
wrong as (
    select l.k
    from latest l left join {silver} v on v.{key} = l.k
    where v._bronze_id is distinct from l._bronze_id
    {gold_wrong}
)
select r.h, count(*), (array_agg(r.k order by r.k))[1:5]
from rows r join wrong w on w.k = r.k
group by r.h
"""

_GOLD_WRONG_SQL = """
    union
    select v.{key}
    from {silver} v join {gold} g on g.{key} = v.{key}
    where v.{key} in (select k from rows) and ({differs})
"""

_REASONS_SQL = """
select coalesce(reason, '(none)'), count(*)
from silver.quarantine
where topic = %(topic)s and source_table = %(entity)s
  and event_ts >= %(h)s and event_ts < %(h)s + interval '1 hour'
group by 1
"""


def _naive(hour: datetime) -> datetime:
    return to_utc_hour(hour).replace(tzinfo=None)


def wrong_versions(conn, hours: Iterable[datetime], topics: Mapping[str, str]
                   ) -> dict[tuple[str, str], tuple[int, tuple[str, ...]]]:
    """{(hour, entity): (keys held in a wrong version, a few of them)} for the hours' keys (see _VERSION_SQL)."""
    naive = sorted({_naive(h) for h in hours})
    if not naive:
        return {}
    out: dict[tuple[str, str], tuple[int, tuple[str, ...]]] = {}
    for entity, (staging, order) in VERSIONED.items():
        topic, silver, key, gold = LAYOUT[entity]
        gold_wrong = (_GOLD_WRONG_SQL.format(key=key, silver=silver, gold=gold, differs=GOLD_DIFFERS[entity])
                      if GOLD_DIFFERS[entity] else "")
        sql = _VERSION_SQL.format(key=key, staging=staging, order=order, silver=silver, gold_wrong=gold_wrong)
        params = {"topic": topics[topic], "lo": naive[0], "hi": naive[-1] + timedelta(hours=1), "hours": naive,
                  "statuses": list(ORDER_STATUSES)}
        for h, n, sample in conn.execute(sql, params).fetchall():
            out[(hour_iso(h.replace(tzinfo=UTC)), entity)] = (int(n), tuple(sample or ()))
    return out


def collect(conn, hours: Iterable[datetime], expected: Mapping[str, Mapping[str, int]] | None = None,
            topics: Mapping[str, str] | None = None) -> tuple[list[HourCounts], list[DayCounts]]:
    """Count every entity of every hour in the warehouse (psycopg 3 connection). `topics` maps a base topic to
    the Kafka topic name bronze holds (default: $SHOPSTREAM_TOPIC_<NAME> or the base name)."""
    topics = dict(topics or topic_names())
    expected = expected or {}
    hour_rows: list[HourCounts] = []
    days: set[date] = set()
    hours = sorted({to_utc_hour(h) for h in hours})
    versions = wrong_versions(conn, hours, topics)
    for hour in hours:
        iso = hour_iso(hour)
        days.add(hour.date())
        exp = expected.get(iso, {})
        for entity in ENTITIES:
            topic = topics["orders" if entity == "order_items" else LAYOUT[entity][0]]
            reasons = {r: int(n) for r, n in conn.execute(_REASONS_SQL, {"topic": topic, "entity": entity,
                                                                          "h": _naive(hour)}).fetchall()}
            wrong, sample = versions.get((iso, entity), (0, ()))
            if entity == "order_items":
                b, s, sq, g = conn.execute(_ITEMS_SQL, {"topic": topic, "h": _naive(hour)}).fetchone()
                hour_rows.append(HourCounts(iso, entity, exp.get(entity), int(b), 0, int(s), int(sq), int(g),
                                            silver_quarantine_by_reason=reasons))
                continue
            _, silver, key, gold = LAYOUT[entity]
            gold_count = (f"(select count(*) from in_silver join {gold} g on g.{key} = in_silver.k)"
                          if gold else "null")
            sql = _HOUR_SQL.format(silver=silver, key=key, gold_count=gold_count)
            b, bq, s, sq, g = conn.execute(sql, {"topic": topic, "h": _naive(hour),
                                                 "entity": entity}).fetchone()
            hour_rows.append(HourCounts(iso, entity, exp.get(LAYOUT[entity][0]), int(b), int(bq), int(s), int(sq),
                                        None if g is None else int(g), wrong, sample, reasons))
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
