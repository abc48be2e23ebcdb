"""dbt on real PostgreSQL: build from an empty warehouse and incrementally, quarantine, late arrivals, lookback,
idempotence, incremental == full refresh, and the reject-rate circuit breaker.

Every test gets its own database (conftest `fresh_database`) with bronze created from the loader's DDL
(include/sql/bronze) plus include/sql/dbt, and fixture messages shaped like docs/contracts.md.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest
from shopstream.dbt.warehouse import SPEC_COLUMNS, table_checksums

from tests.support.contract_messages import (
    bad_rows,
    base_hour,
    customer_value,
    event,
    hour_messages,
    item,
    message,
    order,
    product_value,
)
from tests.support.warehouse import BronzeWriter, Warehouse, assert_every_data_test_ran

pytestmark = pytest.mark.integration

ALL_TABLES = [
    "staging.stg_customers", "staging.stg_products", "staging.stg_orders", "staging.stg_events",
    *SPEC_COLUMNS, "silver.quarantine",
]
QUARANTINE_COLUMNS = ["source_table", "record_key", "reason", "status", "bronze_id", "topic", "partition", "offset"]


def model_results(run, resource="model."):
    return {uid.split(".")[-1]: r for uid, r in ((r["unique_id"], r) for r in run.results) if uid.startswith(resource)}


def assert_all_passed(run):
    bad = [(r["unique_id"], r["status"], r["message"]) for r in run.results if r["status"] not in ("success", "pass")]
    assert run.success and not bad, bad
    assert any(r["unique_id"].startswith("unit_test.") for r in run.results), "unit tests did not run"
    assert_every_data_test_ran(run)


def counts(wh: Warehouse) -> dict[str, int]:
    return {t: wh.scalar(f"select count(*) from {t}") for t in SPEC_COLUMNS}


def test_build_from_empty_then_incrementally(wh):
    h1 = base_hour()
    wh.insert(hour_messages(h1, n_orders=5, n_events=12))
    first = wh.build()
    assert_all_passed(first)
    c = counts(wh)
    n_items = wh.scalar("select count(*) from silver.order_items")
    assert c["silver.customers"] == 6 and c["silver.products"] == 6
    assert c["silver.orders"] == 5 and c["silver.events"] == 12 and n_items == 1 + 2 + 3 + 1 + 2
    assert c["gold.dim_customers"] == 6 and c["gold.fct_orders"] == 5 and c["gold.fct_order_items"] == n_items
    assert wh.scalar("select count(*) from silver.quarantine") == 0

    # Next hour: new snapshots (customer 1 changed email, product 2 changed price), new orders and events.
    h2 = h1 + timedelta(hours=1)
    msgs = hour_messages(h2, n_orders=7, n_events=15)
    for m in msgs:
        if m.topic == "customers" and m.value["id"] == 1:
            m.value["email"] = "Emily.New@Example.com"
        if m.topic == "products" and m.value["id"] == 2:
            m.value["price"] = 99.5
    wh.insert(msgs)
    second = wh.build()
    assert_all_passed(second)

    # Each staging model staged only the new bronze rows (one staging batch per run).
    assert wh.rows("select count(*), count(distinct _staged_at) from staging.stg_orders") == [(12, 2)]
    assert model_results(second)["stg_orders"]["message"] == "INSERT 0 7"
    c = counts(wh)
    assert c["silver.customers"] == 6 and c["silver.orders"] == 12 and c["silver.events"] == 27
    assert wh.rows("select email, created_at, updated_at from silver.customers where customer_id = '1'") == [
        ("emily.new@example.com", h1.replace(tzinfo=None), h2.replace(tzinfo=None))]
    assert wh.scalar("select email from gold.dim_customers where customer_id = '1'") == "emily.new@example.com"
    # The email change reached the customer's old orders (customer_email is denormalised).
    assert wh.rows("select distinct customer_email from gold.fct_orders where customer_id = '1'") == [
        ("emily.new@example.com",)]
    assert wh.scalar("select price from gold.dim_products where product_id = '2'") == Decimal("99.5")
    assert wh.rows("select sum(orders), sum(revenue) from gold.agg_orders_daily") == wh.rows(
        "select count(*)::bigint, sum(total_amount) from silver.orders")
    assert wh.scalar("select sum(events) from gold.agg_events_daily") == 27
    assert wh.scalar("select count(*) from gold.fct_order_items where line_total <> quantity * unit_price") == 0


def test_same_increment_twice_changes_nothing(wh):
    h1 = base_hour()
    wh.insert(hour_messages(h1))
    wh.build()
    wh.insert(hour_messages(h1 + timedelta(hours=1), n_orders=6))
    wh.build()
    before = table_checksums(wh.conn, ALL_TABLES)  # every column, audit columns included
    wh.conn.rollback()
    again = wh.build()
    assert_all_passed(again)
    assert table_checksums(wh.conn, ALL_TABLES) == before
    written = {name: r["message"] for name, r in model_results(again).items() if name != "quarantine"}
    assert written and all(msg == "INSERT 0 0" for msg in written.values()), written


def test_incremental_run_equals_full_refresh(wh):
    h1 = base_hour(hour=22)  # the scenario crosses midnight
    h = [h1 + timedelta(hours=i) for i in range(4)]

    # hour 1: an order and an event of customer 7, who is not known yet (they wait as pending)
    msgs = hour_messages(h[0], n_orders=6)
    late_order = f"o-{h[0]:%Y%m%d%H}-0777"
    msgs.append(message("orders", order(late_order, "7", h[0] + timedelta(minutes=40),
                                        [item(late_order, 0, "3", 2, product_value(3)["price"])]),
                        h[0] + timedelta(minutes=40)))
    late_event = f"e-{h[0]:%Y%m%d%H}-07777"
    msgs.append(message("events", event(late_event, "page_view", "7", h[0] + timedelta(minutes=41)),
                        h[0] + timedelta(minutes=41)))
    wh.insert(msgs)
    wh.build()
    assert wh.rows("select record_key, status from silver.quarantine order by 1") == [
        (late_event, "pending"), (late_order, "pending")]

    # hour 2: customer 7 arrives; order 1 gets a new version (status change, same timestamp, later offset);
    # order 2 is corrected to a timestamp after midnight (it moves to the next day).
    msgs = hour_messages(h[1])
    msgs.append(message("customers", customer_value(7), h[1]))
    first_orders = {m.value["order_id"]: m for m in hour_messages(h[0], n_orders=6) if m.topic == "orders"}
    o1 = first_orders[f"o-{h[0]:%Y%m%d%H}-0001"]
    msgs.append(message("orders", {**o1.value, "status": "shipped"}, o1.event_ts))
    o2 = first_orders[f"o-{h[0]:%Y%m%d%H}-0002"]
    moved_ts = h[2] + timedelta(minutes=30)
    msgs.append(message("orders", {**o2.value, "order_ts": moved_ts.strftime("%Y-%m-%dT%H:%M:%SZ")}, moved_ts))
    wh.insert(msgs)
    wh.build()
    assert wh.scalar("select count(*) from silver.quarantine") == 0
    assert wh.scalar(f"select customer_id from silver.orders where order_id = '{late_order}'") == "7"

    # hour 3: a late, OLDER version of customer 2 (before anything seen) and an event moved past midnight
    msgs = hour_messages(h[2])
    older = {**customer_value(2), "lastName": "Stale"}
    msgs.append(message("customers", older, h[0] - timedelta(hours=5)))
    e3 = next(m for m in hour_messages(h[0]) if m.topic == "events" and m.value["event_id"].endswith("00003"))
    moved_event_ts = h[2] + timedelta(minutes=5)
    msgs.append(message("events", {**e3.value, "event_ts": moved_event_ts.strftime("%Y-%m-%dT%H:%M:%SZ")},
                        moved_event_ts))
    wh.insert(msgs)
    wh.build()
    assert wh.rows("select last_name, created_at, updated_at from silver.customers where customer_id = '2'") == [
        (customer_value(2)["lastName"], (h[0] - timedelta(hours=5)).replace(tzinfo=None), h[2].replace(tzinfo=None))]

    # hour 4: two versions of product 3 arrive out of order (the newer first)
    msgs = hour_messages(h[3])
    msgs.append(message("products", {**product_value(3), "price": 11.11}, h[3] + timedelta(minutes=30)))
    msgs.append(message("products", {**product_value(3), "price": 22.22}, h[3] + timedelta(minutes=10)))
    wh.insert(msgs)
    wh.build()
    assert wh.scalar("select price from silver.products where product_id = '3'") == Decimal("11.11")
    assert wh.scalar("select status from silver.orders where order_id = %s", o1.value["order_id"]) == "shipped"

    spec = {table: list(cols) for table, cols in SPEC_COLUMNS.items()}
    spec["silver.quarantine"] = QUARANTINE_COLUMNS
    incremental = table_checksums(wh.conn, spec)
    wh.conn.rollback()
    # The moved order and event are counted on their new day only.
    day1, day2 = h[0].date(), h[2].date()
    # day 1 = hours 22 and 23: 6 orders + the late one - the moved one + 5; day 2 = hours 0 and 1 + the moved one
    assert wh.scalar("select orders from gold.agg_orders_daily where order_date = %s", day1) == 6 + 1 - 1 + 5
    assert wh.scalar("select orders from gold.agg_orders_daily where order_date = %s", day2) == 5 + 5 + 1
    assert wh.scalar("select events from gold.agg_events_daily where event_date = %s and event_type = %s",
                     day2, e3.value["event_type"]) == 1 + wh.scalar(
        "select count(*) from silver.events where created_at::date = %s and event_type = %s and event_id <> %s",
        day2, e3.value["event_type"], e3.value["event_id"])

    full = wh.build("--full-refresh")
    assert_all_passed(full)
    assert table_checksums(wh.conn, spec) == incremental


def test_bad_rows_are_quarantined_not_silver_and_pending_rows_are_admitted_later(wh):
    h1 = base_hour()
    wh.insert(hour_messages(h1))
    wh.build()
    h2 = h1 + timedelta(hours=1)
    bad = bad_rows(h2)
    msgs = hour_messages(h2, n_orders=30, n_events=40)  # a mostly valid batch, below the reject-rate gate
    ids_by_kind = {}
    for b in bad:
        if b.messages:
            ids_by_kind[b.kind] = wh.insert(b.messages)
    wh.insert(msgs)
    assert_all_passed(wh.build())  # gold still builds and passes its tests

    for b in bad:
        rows = wh.rows(
            "select reason, status, bronze_id, topic, \"partition\", \"offset\" from silver.quarantine"
            " where source_table = %s and record_key = %s", b.source_table, b.key)
        assert rows, f"{b.kind}: not in silver.quarantine"
        assert any(b.reason in r[0] and r[1] == b.status for r in rows), (b.kind, rows)
        if b.kind in ids_by_kind:  # the quarantine row points at the bronze message
            bronze_id = ids_by_kind[b.kind][0]
            coords = wh.rows('select bronze_id, topic, "partition", "offset" from bronze.raw_events where bronze_id = %s',
                             bronze_id)[0]
            assert any(tuple(r[2:]) == coords for r in rows), (b.kind, rows, coords)
        if b.absent_from:
            table, column = b.absent_from
            assert wh.scalar(f"select count(*) from silver.{table} where {column} = %s", b.key) == 0, b.kind
    # the conflicting duplicate: the later message (higher offset) won, the earlier one is quarantined
    conflict = next(b for b in bad if b.kind == "conflicting_duplicate")
    assert wh.scalar("select event_data->>'page' from silver.events where event_id = %s", conflict.key) == "/b"
    pending = "select count(*) from silver.quarantine where status = 'pending' and reason <> 'duplicate_email'"
    assert wh.scalar(pending) == 2  # the order and the event of the missing customer
    assert wh.scalar("select count(*) from silver.quarantine where reason = 'duplicate_email'") == 1  # waits

    # The missing customer arrives: the pending order (with its items) and event are admitted.
    wh.insert([message("customers", customer_value(8888), h2 + timedelta(hours=1))])
    assert_all_passed(wh.build())
    assert wh.scalar(pending) == 0
    pending_order = next(b for b in bad if b.kind == "unknown_customer").key
    assert wh.scalar("select customer_id from silver.orders where order_id = %s", pending_order) == "8888"
    assert wh.scalar("select count(*) from silver.order_items where order_id = %s", pending_order) == 1
    assert wh.scalar("select customer_email from gold.fct_orders where order_id = %s", pending_order) == \
        customer_value(8888)["email"]
    assert wh.scalar("select count(*) from silver.events where customer_id = '8888'") == 1
    # the rejected rows stay quarantined
    assert wh.scalar("select count(*) from silver.quarantine where status = 'rejected'") >= len(bad) - 3


def test_late_committed_bronze_rows_are_picked_up_by_the_lookback(wh):
    h1 = base_hour()
    wh.insert(hour_messages(h1))
    wh.build()
    ts = h1 + timedelta(hours=1)
    # explicit coordinates: the two writers must not race for the same (topic, partition, offset)
    early = message("events", event("e-late-00001", "page_view", "1", ts), ts, partition=0, offset=10_000)
    later = message("events", event("e-late-00002", "page_view", "2", ts), ts, partition=0, offset=10_001)
    # Loader transaction A takes a bronze_id first but commits last.
    slow = psycopg.connect(**{k: wh.params[k] for k in ("host", "port", "user", "password", "dbname")})
    try:
        [early_id] = BronzeWriter(slow).insert([early], commit=False)
        [later_id] = wh.insert([later])
        assert early_id < later_id
        wh.build()  # sees only the later row: its watermark is now above early_id
        assert wh.scalar("select count(*) from silver.events where event_id like 'e-late-%%'") == 1
        slow.commit()
    finally:
        slow.close()
    # Without a lookback the row would be lost ...
    wh.build("--vars", "{bronze_lookback_minutes: 0}")
    assert wh.scalar("select count(*) from staging.stg_events where _bronze_id = %s", early_id) == 0
    # ... the default lookback window finds it, exactly once.
    wh.build()
    assert wh.scalar("select count(*) from staging.stg_events where _bronze_id = %s", early_id) == 1
    assert wh.scalar("select count(*) from silver.events where event_id like 'e-late-%%'") == 2
    wh.build()
    assert wh.scalar("select count(*) from staging.stg_events where _bronze_id = %s", early_id) == 1


def test_reject_rate_gate_stops_a_garbage_batch_before_gold(wh):
    h1 = base_hour()
    wh.insert(hour_messages(h1))
    wh.build()
    h2 = h1 + timedelta(hours=1)
    garbage = [message("orders", order(f"o-{h2:%Y%m%d%H}-{n:04d}", "1", h2 + timedelta(minutes=n),
                                       [item(f"o-{h2:%Y%m%d%H}-{n:04d}", 0, "1", 1, product_value(1)["price"])],
                                       status="teleported"), h2 + timedelta(minutes=n)) for n in range(25)]
    wh.insert(garbage)
    run = wh.build(check=False)
    assert not run.success
    statuses = {uid: status for uid, status in run.statuses().items()}
    gate = [uid for uid in statuses if uid.startswith("test.shopstream.reject_rate_below_stg_orders")]
    assert gate and statuses[gate[0]] == "fail"
    assert statuses["model.shopstream.orders"] == "skipped"
    assert statuses["model.shopstream.fct_orders"] == "skipped"
    assert wh.scalar("select count(*) from silver.quarantine where reason = 'invalid_status'") == 25

    # The producer re-sends the orders with a valid status: the next run passes and admits them.
    wh.insert([message("orders", {**m.value, "status": "paid"}, m.event_ts) for m in garbage])
    assert_all_passed(wh.build())
    assert wh.scalar("select count(*) from gold.fct_orders where order_id like %s", f"o-{h2:%Y%m%d%H}-%") == 25
