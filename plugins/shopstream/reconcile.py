"""Reconcile logical hours across the layers: Kafka (published) -> bronze -> silver -> gold.

For every reconciled hour H and entity (customers, products, orders, order_items, events) it counts
distinct *keys* (the contract's message keys: user/product id, order_id, event_id; order items by
order_item_id inside the latest version of each order), because a retried or backfilled hour legitimately
republishes the same keys:

    published(H)            = bronze keys(H) + bronze quarantine keys(H)          Kafka  -> bronze
    bronze keys(H)          = silver rows(H) + silver quarantine(H)               bronze -> silver
    silver rows(H)          = gold rows(H)   (dims, fct_orders, fct_order_items)  silver -> gold

where "(H)" means: the keys whose bronze rows carry a Kafka timestamp inside [H, H+1h) (the contract puts
every message's timestamp inside its logical hour), followed to silver/gold by key. Silver quarantine counts
a key when one of its bronze rows of the hour is listed in `silver.quarantine` (rejected or pending - a
pending order waits for its customer/product and is *not* lost). For every UTC day the hours touch it also
checks the aggregates: silver orders = gold.fct_orders = gold.agg_orders_daily.orders (and revenue), silver
events per type = gold.agg_events_daily.

Which hours a run reconciles (`hours_for_run`): the hours of the extract runs whose messages this dbt run has
processed, found through the Assets as two chained time windows (so every extract Asset event is reconciled
exactly once, even when Airflow folds several events into one run or runs them late):
1. the bronze DAG's `publish` task looks at the extract Asset events (inlet events of the four topic Assets)
   since the previous bronze event's `extract_until` up to its own run's start (its loads start later, so
   every message of those events is loaded; `run_after` for a cleared run) and writes
   `{hour: {topic: messages}}` (the counts *recorded by the extract tasks*) and `extract_until` into the extra
   of its Asset event (`bronze_extract_extra`);
2. the dbt DAG's `reconcile` task takes the bronze Asset events since the previous successful reconciliation
   (`bronze_until` in the extra of the last `shopstream.reconciled` Asset event) up to its run's start (its
   staging models ran later), merges their hours, and emits `shopstream.reconciled` on success. A failed
   reconciliation emits nothing, so the next dbt run checks those hours again until they add up (or until a
   run with conf `{"reconcile_hours": []}` accepts the state).
`dag_run.conf["reconcile_hours"]` (ISO hours) overrides the window: those hours are reconciled with expected
counts recomputed deterministically from the derivation (DummyJSON fetched now + `shopstream.extract`, default
settings or `seed`/`order_rate`/`events_per_hour` from the conf).

A mismatch fails the task with the whole table (`ReconciliationError`), so on-call sees at which layer the
keys went missing. `python -m shopstream.reconcile --hour 2026-11-27T13:00:00Z` prints the same table.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from shopstream import connections
from shopstream.hours import hour_iso, parse_hour, to_utc_hour
from shopstream.topics import TOPICS, topic_names

log = logging.getLogger(__name__)

BASE_TOPICS = TOPICS
ENTITIES = ("customers", "products", "orders", "order_items", "events")

#: entity -> (bronze topic, silver table, silver key column, gold table or None)
LAYOUT: dict[str, tuple[str, str, str, str | None]] = {
    "customers": ("customers", "silver.customers", "customer_id", "gold.dim_customers"),
    "products": ("products", "silver.products", "product_id", "gold.dim_products"),
    "orders": ("orders", "silver.orders", "order_id", "gold.fct_orders"),
    "events": ("events", "silver.events", "event_id", None),  # gold has only the daily aggregate
}

WAREHOUSE_CONN_ID = connections.WAREHOUSE_DB


class ReconciliationError(RuntimeError):
    """Counts do not add up between two layers; the message is the full table."""


# ---------------------------------------------------------------------------------------------- pure logic


@dataclass(frozen=True)
class HourCounts:
    hour: str
    entity: str
    published: int | None  # expected keys from the extract stage (None: not known for this entity)
    bronze: int
    bronze_quarantine: int
    silver: int
    silver_quarantine: int
    gold: int | None  # None: no per-key gold table (events)


@dataclass(frozen=True)
class DayCounts:
    day: str
    measure: str  # orders, revenue, events:<type>
    silver: int | Decimal
    gold_fact: int | Decimal | None  # gold.fct_orders (orders/revenue); None for events
    gold_agg: int | Decimal  # gold.agg_orders_daily / gold.agg_events_daily


@dataclass(frozen=True)
class Mismatch:
    where: str  # hour or day
    entity: str
    check: str  # kafka->bronze, bronze->silver, silver->gold, silver->gold_fact, gold_fact->gold_agg
    expected: int | Decimal
    actual: int | Decimal

    def __str__(self) -> str:
        return f"{self.where} {self.entity} {self.check}: expected {self.expected}, found {self.actual}"


def check_hour(row: HourCounts) -> list[Mismatch]:
    out = []
    if row.published is not None and row.published != row.bronze + row.bronze_quarantine:
        out.append(Mismatch(row.hour, row.entity, "kafka->bronze", row.published,
                            row.bronze + row.bronze_quarantine))
    if row.bronze != row.silver + row.silver_quarantine:
        out.append(Mismatch(row.hour, row.entity, "bronze->silver", row.bronze, row.silver + row.silver_quarantine))
    if row.gold is not None and row.gold != row.silver:
        out.append(Mismatch(row.hour, row.entity, "silver->gold", row.silver, row.gold))
    return out


def check_day(row: DayCounts) -> list[Mismatch]:
    out = []
    if row.gold_fact is not None and row.gold_fact != row.silver:
        out.append(Mismatch(row.day, row.measure, "silver->gold_fact", row.silver, row.gold_fact))
    reference = row.gold_fact if row.gold_fact is not None else row.silver
    if row.gold_agg != reference:
        check = "gold_fact->gold_agg" if row.gold_fact is not None else "silver->gold_agg"
        out.append(Mismatch(row.day, row.measure, check, reference, row.gold_agg))
    return out


def compare(hours: Iterable[HourCounts], days: Iterable[DayCounts] = ()) -> list[Mismatch]:
    out: list[Mismatch] = []
    for row in hours:
        out.extend(check_hour(row))
    for row in days:
        out.extend(check_day(row))
    return out


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def format_table(hours: Sequence[HourCounts], days: Sequence[DayCounts] = (),
                 mismatches: Sequence[Mismatch] | None = None) -> str:
    """The counts as two text tables; rows with a mismatch are flagged."""
    mismatches = compare(hours, days) if mismatches is None else mismatches
    bad = {(m.where, m.entity) for m in mismatches}
    head = ("hour", "entity", "published", "bronze", "bronze_q", "silver", "silver_q", "gold", "")
    rows = [head] + [
        (r.hour, r.entity, _cell(r.published), str(r.bronze), str(r.bronze_quarantine), str(r.silver),
         str(r.silver_quarantine), _cell(r.gold), "MISMATCH" if (r.hour, r.entity) in bad else "ok")
        for r in hours
    ]
    lines = _render(rows)
    if days:
        drows = [("day", "measure", "silver", "gold_fact", "gold_agg", "")] + [
            (d.day, d.measure, str(d.silver), _cell(d.gold_fact), str(d.gold_agg),
             "MISMATCH" if (d.day, d.measure) in bad else "ok")
            for d in days
        ]
        lines += [""] + _render(drows)
    if mismatches:
        lines += ["", f"{len(mismatches)} mismatch(es):"] + [f"  {m}" for m in mismatches]
    return "\n".join(lines)


def _render(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
                      ).rstrip() for r in rows]


def merge_extract_hours(extras: Iterable[Mapping[str, Any] | None]) -> dict[str, dict[str, int]]:
    """{hour: {base topic: messages}} from bronze asset event extras' `extract` entries (later wins)."""
    out: dict[str, dict[str, int]] = {}
    for extra in extras:
        for hour, topics in ((extra or {}).get("extract") or {}).items():
            for topic, n in topics.items():
                out.setdefault(hour, {})[topic] = int(n)
    return out


def extract_hours(triggering_asset_events: Mapping[Any, Sequence[Any]] | None) -> dict[str, dict[str, int]]:
    """{hour: {base topic: messages}} from the extract DAG's Asset events that triggered a run.

    Meant for the bronze DAG's publish task (it copies this into its own asset event's extra as `extract`).
    Events of one (hour, topic) that disagree (an hour re-extracted with other settings): the latest wins.
    """
    found: list[tuple[Any, str, str, int]] = []
    for asset, events in (triggering_asset_events or {}).items():
        name = getattr(asset, "name", None) or str(asset)
        base = name.rsplit(".", 1)[-1]
        if not name.startswith("shopstream.kafka.") or base not in BASE_TOPICS:
            continue
        for event in events:
            extra = getattr(event, "extra", None) or {}
            if "logical_hour" in extra and "messages" in extra:
                found.append((str(getattr(event, "timestamp", "")), extra["logical_hour"], base,
                              int(extra["messages"])))
    out: dict[str, dict[str, int]] = {}
    for _, hour, base, n in sorted(found):
        out.setdefault(hour, {})[base] = n
    return out


# ---------------------------------------------------------------------------------------------- expectations


def expected_from_derivation(catalog: Mapping[str, Sequence[Mapping[str, Any]]], hours: Iterable[datetime],
                             settings: Any = None) -> dict[str, dict[str, int]]:
    """{hour: {base topic / 'order_items': distinct keys}} the extract stage publishes (deterministic)."""
    from shopstream.extract.derive import DEFAULT_SETTINGS
    from shopstream.extract.messages import Snapshot, build_messages

    snapshot = Snapshot(users=catalog.get("users", ()), products=catalog.get("products", ()),
                        carts=catalog.get("carts", ()))
    out: dict[str, dict[str, int]] = {}
    for hour in sorted({to_utc_hour(h) for h in hours}):
        counts: dict[str, int] = {}
        for topic in BASE_TOPICS:
            msgs = build_messages(topic, snapshot, hour, settings or DEFAULT_SETTINGS)
            counts[topic] = len({m.key for m in msgs})
            if topic == "orders":
                counts["order_items"] = sum(len(json.loads(m.value)["items"]) for m in msgs)
        out[hour_iso(hour)] = counts
    return out


# ---------------------------------------------------------------------------------------------- warehouse

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
    (and the table as text)."""
    hours = sorted({to_utc_hour(h) for h in hours})
    hour_rows, day_rows = collect(conn, hours, expected, topics)
    mismatches = compare(hour_rows, day_rows)
    table = format_table(hour_rows, day_rows, mismatches)
    summary = {
        "hours": [hour_iso(h) for h in hours],
        "ok": not mismatches,
        "counts": [asdict(r) for r in hour_rows],
        "days": [{**asdict(d), "silver": str(d.silver), "gold_fact": _cell(d.gold_fact), "gold_agg": str(d.gold_agg)}
                 for d in day_rows],
        "mismatches": [str(m) for m in mismatches],
        "table": table,
    }
    if log_table:
        if mismatches:
            log.error("reconciliation FAILED for %s:\n%s", ", ".join(summary["hours"]), table)
        else:
            log.info("reconciliation ok for %s:\n%s", ", ".join(summary["hours"]) or "no hours", table)
    if mismatches and raise_on_mismatch:
        raise ReconciliationError(f"counts do not add up for {', '.join(summary['hours'])}:\n{table}")
    return summary


# ---------------------------------------------------------------------------------------------- Airflow glue


def _parse_ts(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        ts = value
    else:
        ts = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat()


def _window(accessor: Any, after: datetime | None, until: datetime) -> list[Any]:
    """Asset events of an inlet accessor with after < timestamp <= until (Airflow's `after` is inclusive)."""
    acc = accessor.after(_iso(after)) if after is not None else accessor
    acc = acc.before(_iso(until))
    return [e for e in acc if after is None or _parse_ts(getattr(e, "timestamp", None)) > after]


def _latest_marker(accessor: Any, key: str, lookback: int = 20) -> datetime | None:
    """The latest `key` timestamp in the extras of the asset's most recent events."""
    marks = [_parse_ts((getattr(e, "extra", None) or {}).get(key))
             for e in accessor.ascending(False).limit(lookback)]
    marks = [m for m in marks if m is not None]
    return max(marks) if marks else None


def _run_after(dag_run: Any) -> datetime:
    """The end of a run's window: a moment before any of its tasks read anything. The run's start (its
    run_after for a manual `dag.test`, whose start_date is its logical date), or run_after for a run that was
    cleared (a cleared run restarts late, but the tasks that already succeeded read their data earlier)."""
    run_after = _parse_ts(getattr(dag_run, "run_after", None))
    start = _parse_ts(getattr(dag_run, "start_date", None))
    if getattr(dag_run, "clear_number", 0):
        return run_after or start or datetime.now(UTC)
    candidates = [t for t in (run_after, start) if t is not None]
    return max(candidates) if candidates else datetime.now(UTC)


def bronze_extract_extra(inlet_events: Any, dag_run: Any) -> dict[str, Any]:
    """For the bronze DAG's publish task: `{"extract": {hour: {topic: messages}}, "extract_until": iso}` over
    the extract Asset events since the previous bronze event's `extract_until` (see the module doc)."""
    from shopstream.assets import BRONZE_RAW_EVENTS, KAFKA_TOPIC_ASSETS

    after = _latest_marker(inlet_events[BRONZE_RAW_EVENTS], "extract_until")
    until = _run_after(dag_run)
    if after is not None and until <= after:
        return {"extract": {}, "extract_until": _iso(after)}
    found = {asset: _window(inlet_events[asset], after, until) for asset in KAFKA_TOPIC_ASSETS.values()}
    return {"extract": extract_hours(found), "extract_until": _iso(until)}


def hours_for_run(context: Mapping[str, Any]) -> dict[str, Any]:
    """{hours, recorded (expected counts or None = recompute), how, until}; see the module doc."""
    from shopstream.assets import BRONZE_RAW_EVENTS, RECONCILED

    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    until = _run_after(dag_run)
    inlet_events = context.get("inlet_events")
    after = _latest_marker(inlet_events[RECONCILED], "bronze_until") if inlet_events is not None else None
    if after is not None and until < after:
        until = after
    if "reconcile_hours" in conf:
        hours = sorted({parse_hour(h) for h in conf["reconcile_hours"] or ()})
        return {"hours": hours, "recorded": None, "how": "dag_run.conf reconcile_hours", "until": until}
    if inlet_events is None:
        return {"hours": [], "recorded": None, "how": "no inlet events", "until": until}
    bronze = _window(inlet_events[BRONZE_RAW_EVENTS], after, until)
    recorded = merge_extract_hours(getattr(e, "extra", None) for e in bronze)
    how = (f"asset events window ({len(bronze)} bronze events after {_iso(after) if after else 'the beginning'},"
           f" hours recorded by extract)")
    return {"hours": sorted(parse_hour(h) for h in recorded), "recorded": recorded, "how": how, "until": until}


def fetch_catalog_from_airflow() -> dict[str, list[dict[str, Any]]]:
    from shopstream.extract.tasks import dummyjson_client

    client = dummyjson_client()
    try:
        return {r: client.fetch_all(r) for r in ("users", "products", "carts")}
    finally:
        close = getattr(client, "close", None)
        if callable(close):
            close()


def run_reconcile_task(context: Mapping[str, Any]) -> dict[str, Any]:
    """The body of the dbt DAG's final `reconcile` task (inlets: the bronze and reconciled Assets; outlet: the
    reconciled Asset, whose extra carries the window's end for the next run)."""
    import psycopg

    from shopstream.assets import RECONCILED

    chosen = hours_for_run(context)
    hours, how = chosen["hours"], chosen["how"]
    if hours:
        log.info("reconciling %s (%s)", ", ".join(hour_iso(h) for h in hours), how)
        expected = chosen["recorded"]
        if expected is None:
            from shopstream.extract.tasks import settings_from_params

            conf = getattr(context.get("dag_run"), "conf", None) or {}
            expected = expected_from_derivation(fetch_catalog_from_airflow(), hours, settings_from_params(conf))
        with psycopg.connect(connections.postgres_conninfo(WAREHOUSE_CONN_ID), autocommit=True) as conn:
            try:
                summary = reconcile(conn, hours, expected)
            except ReconciliationError as exc:
                from airflow.sdk.exceptions import AirflowFailException

                raise AirflowFailException(str(exc)) from exc  # deterministic: no retries
    else:
        log.warning("reconcile: no hour to reconcile (%s)", how)
        summary = {"hours": [], "ok": True}
    summary["how"] = how
    outlet_events = context.get("outlet_events")
    if outlet_events is not None:
        outlet_events[RECONCILED].extra = {"bronze_until": _iso(chosen["until"]), "hours": summary["hours"]}
    return summary


# ---------------------------------------------------------------------------------------------- CLI


def _catalog_from_env() -> dict[str, list[dict[str, Any]]]:
    from shopstream.dummyjson.client import DummyJSONClient

    client = DummyJSONClient(connections.dummyjson_url_from_env())
    try:
        return {r: client.fetch_all(r) for r in ("users", "products", "carts")}
    finally:
        client.close()


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    import psycopg

    parser = argparse.ArgumentParser(description="Reconcile logical hours across Kafka, bronze, silver and gold.")
    parser.add_argument("--hour", action="append", required=True, help="ISO hour, e.g. 2026-11-27T13:00:00Z")
    parser.add_argument("--hours", type=int, default=1, help="reconcile N consecutive hours from each --hour")
    args = parser.parse_args(argv)
    hours = sorted({parse_hour(h) + timedelta(hours=i) for h in args.hour for i in range(args.hours)})
    expected = expected_from_derivation(_catalog_from_env(), hours)
    with psycopg.connect(connections.postgres_conninfo_from_env(WAREHOUSE_CONN_ID), autocommit=True) as conn:
        summary = reconcile(conn, hours, expected, raise_on_mismatch=False, log_table=False)
    print(summary["table"])
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
