"""dbt edge cases of issue #13, on real PostgreSQL: inputs that used to block every later run, leave the
contracts weaker, or make the incremental pipeline and a full refresh disagree for good.

Each test inserts bronze rows (tests/support/contract_messages.py, tests/support/warehouse.py), builds incrementally, and where it matters
checks that a `dbt build --full-refresh` of the same bronze ends in the same silver and gold.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.contract_messages import (
    base_hour,
    customer_value,
    event,
    hour_messages,
    item,
    message,
    order,
    product_value,
)
from tests.support.warehouse import Warehouse, assert_full_refresh_agrees, assert_success

pytestmark = pytest.mark.integration

FOREIGN_KEY_COUNT = 7  # silver: orders, order_items x2, events; gold: fct_orders, fct_order_items x2


def foreign_key_count(wh: Warehouse) -> int:
    return wh.scalar("select count(*) from pg_constraint where contype = 'f'"
                     " and connamespace in ('silver'::regnamespace, 'gold'::regnamespace)")


def quarantine(wh: Warehouse, key: str) -> list[tuple]:
    return wh.rows("select source_table, reason, status from silver.quarantine where record_key = %s order by 1, 2",
                   key)


# --- #13.3: one order must never block later runs; a failed full refresh never weakens the contracts -------

def test_an_item_id_claimed_by_two_orders_is_quarantined_and_blocks_nothing(wh):
    h1 = base_hour()
    wh.insert(hour_messages(h1))
    assert_success(wh.build())
    h2 = h1 + timedelta(hours=1)
    price = product_value(1)["price"]
    # Both ids start with "<order_id>-": order o-1 with item o-1-00-01, order o-1-00 with item o-1-00-01.
    wh.insert([
        message("orders", order("o-1", "1", h2, [{**item("o-1", 0, "1", 1, price), "order_item_id": "o-1-00-01"}]), h2),
        message("orders", order("o-1-00", "1", h2, [item("o-1-00", 1, "1", 1, price)]), h2),
    ])
    assert_success(wh.build(check=False))
    # The id belongs to o-1-00 (the part before its last "-" is the order id): o-1's item does not.
    assert quarantine(wh, "o-1") == [("orders", "invalid_items", "rejected")]
    assert quarantine(wh, "o-1-00-01") == [("order_items", "item_id_mismatch", "rejected")]
    assert wh.rows("select order_id from silver.order_items where order_item_id = 'o-1-00-01'") == [("o-1-00",)]
    # Later runs with unrelated valid orders go through, and so does a full refresh.
    wh.insert(hour_messages(h2, n_orders=3))
    assert_success(wh.build(check=False))
    assert wh.scalar("select count(*) from gold.fct_orders where order_id like %s", f"o-{h2:%Y%m%d%H}-%") == 3
    assert_full_refresh_agrees(wh)
    assert foreign_key_count(wh) == FOREIGN_KEY_COUNT


def test_foreign_keys_dropped_by_a_partial_full_refresh_are_restored_by_the_next_run(wh):
    wh.insert(hour_messages(base_hour()))
    assert_success(wh.build())
    assert foreign_key_count(wh) == FOREIGN_KEY_COUNT
    # Rebuilding the parents alone (as a full refresh that fails in a child does) drops the children's
    # foreign keys (dbt replaces a table and drops the old one with CASCADE): the invocation puts them back.
    assert_success(wh.build("--full-refresh", "--select", "customers", "products", "dim_customers"))
    assert foreign_key_count(wh) == FOREIGN_KEY_COUNT
    # Keys dropped by some other means come back with the next run, too.
    wh.conn.execute("alter table silver.events drop constraint events_customer_id_fkey")
    wh.conn.commit()
    assert_success(wh.build())
    assert foreign_key_count(wh) == FOREIGN_KEY_COUNT


# --- #13.1: email uniqueness is decided on the state after the batch ---------------------------------------

def test_an_email_swap_and_a_chain_in_one_batch_apply(wh):
    h1 = base_hour()
    wh.insert(hour_messages(h1))
    assert_success(wh.build())
    email = {cid: customer_value(cid)["email"] for cid in range(1, 7)}
    h2 = h1 + timedelta(hours=1)
    msgs = hour_messages(h2)
    new_email = {1: email[2], 2: email[1],  # a swap
                 3: email[4], 4: "fresh.four@x.dummyjson.com",  # a chain: 3 takes 4's old email
                 5: email[6].upper(), 6: email[5]}  # a swap in another case
    for m in msgs:
        if m.topic == "customers" and m.value["id"] in new_email:
            m.value["email"] = new_email[m.value["id"]]
    wh.insert(msgs)
    assert_success(wh.build())
    assert wh.scalar("select count(*) from silver.quarantine where source_table = 'customers'") == 0
    for table in ("silver.customers", "gold.dim_customers"):
        assert dict(wh.rows(f"select customer_id::int, email from {table}")) == {
            cid: e.lower() for cid, e in new_email.items()}, table
    assert wh.rows("select count(*) from gold.fct_orders o join gold.dim_customers c using (customer_id)"
                   " where o.customer_email <> c.email") == [(0,)]
    assert_full_refresh_agrees(wh)


def test_an_email_claimed_twice_in_one_batch_keeps_the_first_claimer_and_the_holder(wh):
    h1 = base_hour()
    wh.insert(hour_messages(h1))
    assert_success(wh.build())
    email = {cid: customer_value(cid)["email"] for cid in range(1, 7)}
    h2 = h1 + timedelta(hours=1)
    msgs = hour_messages(h2)
    for m in msgs:
        if m.topic == "customers" and m.value["id"] in (2, 3):
            m.value["email"] = email[1]  # customer 1 keeps its email: both claims are rejected
        if m.topic == "customers" and m.value["id"] == 4:
            m.value["email"] = email[3]  # 3's email is not freed (3's change is rejected): rejected too
    wh.insert(msgs)
    assert_success(wh.build())
    assert dict(wh.rows("select record_key, reason from silver.quarantine where source_table = 'customers'")) == {
        "2": "duplicate_email", "3": "duplicate_email", "4": "duplicate_email"}
    assert dict(wh.rows("select customer_id::int, email from silver.customers")) == email


def _customer(cid: int, email: str, at: datetime, last_name: str | None = None):
    value = {**customer_value(cid), "email": email}
    if last_name:
        value["lastName"] = last_name
    return message("customers", value, at)


def _emails(wh: Warehouse, *cids: int) -> dict[int, str]:
    return dict(wh.rows("select customer_id::int, email from silver.customers where customer_id::int = any(%s)",
                        list(cids)))


def test_a_waiting_claim_is_granted_when_the_email_frees_in_a_later_run(wh):
    h1 = base_hour()
    wh.insert(hour_messages(h1))
    assert_success(wh.build())
    email = {cid: customer_value(cid)["email"] for cid in (1, 2)}
    wh.insert([_customer(2, email[1], h1 + timedelta(hours=1), "Claimant")])  # 1 holds it: 2 waits
    assert_success(wh.build())
    assert quarantine(wh, "2") == [("customers", "duplicate_email", "pending")]
    assert _emails(wh, 1, 2) == {1: email[1], 2: email[2]}
    wh.insert([_customer(1, "one.moved@x.dummyjson.com", h1 + timedelta(hours=2))])  # 1 moves: 2 gets it
    assert_success(wh.build())
    assert quarantine(wh, "2") == []
    assert _emails(wh, 1, 2) == {1: "one.moved@x.dummyjson.com", 2: email[1]}
    assert wh.scalar("select last_name from gold.dim_customers where customer_id = '2'") == "Claimant"
    assert_full_refresh_agrees(wh)


def test_a_swap_spread_over_two_runs_applies_when_its_last_message_arrives(wh):
    h1 = base_hour()
    wh.insert(hour_messages(h1))
    assert_success(wh.build())
    email = {cid: customer_value(cid)["email"] for cid in (1, 2)}
    wh.insert([_customer(1, email[2], h1 + timedelta(hours=1))])
    assert_success(wh.build())
    assert quarantine(wh, "1") == [("customers", "duplicate_email", "pending")]
    wh.insert([_customer(2, email[1], h1 + timedelta(hours=1))])
    assert_success(wh.build())
    assert _emails(wh, 1, 2) == {1: email[2], 2: email[1]}
    assert wh.scalar("select count(*) from silver.quarantine where source_table = 'customers'") == 0
    assert_full_refresh_agrees(wh)


def test_the_first_claim_received_holds_an_email_even_against_an_earlier_event_time(wh):
    """First come, first served in bronze order: a late message whose Kafka timestamp is older does not take
    an address from the customer that has held it since; the full refresh decides the same way."""
    h1 = base_hour()
    wh.insert(hour_messages(h1))
    assert_success(wh.build())
    wh.insert([_customer(1, "contested@x.dummyjson.com", h1 + timedelta(hours=3))])
    assert_success(wh.build())
    wh.insert([_customer(2, "contested@x.dummyjson.com", h1 + timedelta(hours=2))])  # late, older event time
    assert_success(wh.build())
    assert _emails(wh, 1)[1] == "contested@x.dummyjson.com"
    assert quarantine(wh, "2") == [("customers", "duplicate_email", "pending")]
    assert_full_refresh_agrees(wh)


def test_a_customer_whose_newest_version_waits_keeps_its_newest_admissible_one(wh):
    """Issue #13, left open by session 4: two customers contest one address and the loser's earlier version
    is in the same batch. The loser is admitted with that earlier version (the latest ADMISSIBLE one), the
    contested one waits; split over runs or in one, incremental and full refresh agree."""
    h1 = base_hour()
    winner, loser = 1, 9001
    msgs = [_customer(winner, "taken@x.dummyjson.com", h1),
            message("customers", {**customer_value(1), "id": loser, "email": "loser.own@x.dummyjson.com"},
                    h1 + timedelta(minutes=5)),
            message("customers", {**customer_value(1), "id": loser, "email": "taken@x.dummyjson.com"},
                    h1 + timedelta(minutes=10))]
    wh.insert(msgs)
    assert_success(wh.build())
    assert _emails(wh, winner, loser) == {winner: "taken@x.dummyjson.com", loser: "loser.own@x.dummyjson.com"}
    assert quarantine(wh, str(loser)) == [("customers", "duplicate_email", "pending")]
    assert_full_refresh_agrees(wh)


def test_email_decisions_hold_when_silver_missed_a_run(wh):
    """A staging run whose silver run failed (admitted rows silver has not consumed): the next run must see
    who holds what from those rows, not from silver's stale emails."""
    h1 = base_hour()
    wh.insert(hour_messages(h1))
    assert_success(wh.build())
    email = {cid: customer_value(cid)["email"] for cid in (1, 2, 3)}
    wh.insert([_customer(1, "one.moved@x.dummyjson.com", h1 + timedelta(hours=1)),
               _customer(2, email[1], h1 + timedelta(hours=1))])  # 2 takes the address 1 gives up
    assert_success(wh.build("--select", "stg_customers"))  # silver.customers does not run
    wh.insert([_customer(3, email[1], h1 + timedelta(hours=2)),  # too late: 2 holds it
               _customer(1, email[2], h1 + timedelta(hours=2))])  # 2's old address is free
    assert_success(wh.build())
    assert _emails(wh, 1, 2, 3) == {1: email[2], 2: email[1], 3: email[3]}
    assert quarantine(wh, "3") == [("customers", "duplicate_email", "pending")]
    assert_full_refresh_agrees(wh)


def test_a_batch_the_gate_rejects_frees_no_email(wh):
    """The reject-rate gate rejects a batch in which customer 1 gives its address up: the claim waiting for
    that address must keep waiting (the move never happened as far as silver is concerned)."""
    h1 = base_hour()
    wh.insert(hour_messages(h1))
    assert_success(wh.build())
    email = customer_value(1)["email"]
    wh.insert([_customer(2, email, h1 + timedelta(hours=1))])
    assert_success(wh.build())
    assert quarantine(wh, "2") == [("customers", "duplicate_email", "pending")]
    garbage = [message("customers", {**customer_value(1), "id": 7000 + n, "email": "not-an-email"},
                       h1 + timedelta(hours=2)) for n in range(30)]
    wh.insert([_customer(1, "one.moved@x.dummyjson.com", h1 + timedelta(hours=2)), *garbage])
    run = wh.build(check=False)
    assert not run.success  # the gate's test fails the run: the page
    assert quarantine(wh, "2") == [("customers", "duplicate_email", "pending")]
    assert _emails(wh, 1, 2) == {1: email, 2: customer_value(2)["email"]}
    assert quarantine(wh, "1") == [("customers", "rejected_batch", "rejected")]


# --- #13.2: a valid window for timestamps --------------------------------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def test_timestamps_before_the_valid_window_are_quarantined(wh):
    h1 = base_hour()
    wh.insert(hour_messages(h1))
    assert_success(wh.build())
    created = wh.scalar("select created_at from silver.customers where customer_id = '1'")
    h2 = h1 + timedelta(hours=1)
    price = product_value(1)["price"]
    wh.insert([
        message("customers", customer_value(1), EPOCH),  # an existing customer re-sent with a 1970 timestamp
        message("orders", order("o-1970-0001", "1", EPOCH, [item("o-1970-0001", 0, "1", 1, price)]), EPOCH),
        message("orders", {**order("o-1970-0002", "1", h2, [item("o-1970-0002", 0, "1", 1, price)]),
                           "order_ts": "1999-12-31T23:59:59Z"}, h2),
        message("events", {**event("e-1970-00001", "page_view", "1", h2), "event_ts": "1970-01-01T00:00:00Z"}, h2),
        message("products", {**product_value(1), "meta": {"createdAt": "1970-01-01T00:00:00Z"}}, h2),
    ])
    assert_success(wh.build())
    assert quarantine(wh, "1") == [("customers", "past_timestamp:event_ts", "rejected"),
                                   ("products", "past_timestamp:meta.createdAt", "rejected")]
    assert quarantine(wh, "o-1970-0001") == [("orders", "past_timestamp:order_ts;past_timestamp:event_ts",
                                              "rejected")]
    assert quarantine(wh, "o-1970-0002") == [("orders", "past_timestamp:order_ts", "rejected")]
    assert quarantine(wh, "e-1970-00001") == [("events", "past_timestamp:event_ts", "rejected")]
    for table in ("silver.customers", "gold.dim_customers"):
        assert wh.scalar(f"select created_at from {table} where customer_id = '1'") == created
    assert wh.scalar("select min(order_date) from gold.agg_orders_daily") == h1.date()
    assert_full_refresh_agrees(wh)


def test_a_kafka_timestamp_outside_the_logical_hour_is_flagged(wh):
    h1 = base_hour()
    msgs = hour_messages(h1)
    late = next(m for m in msgs if m.topic == "events")
    late.event_ts = h1 + timedelta(hours=5)  # the value still says logical_hour = h1
    wh.insert(msgs)
    run = wh.build()
    assert_success(run)
    flagged = {uid: r for uid, r in ((r["unique_id"], r) for r in run.results)
               if uid.startswith("test.shopstream.kafka_ts_within_logical_hour")}
    assert sorted(r["status"] for r in flagged.values()) == ["pass", "warn"], flagged
    # flagged, not rejected: the event is in silver
    assert wh.scalar("select count(*) from silver.events where event_id = %s", late.value["event_id"]) == 1


# --- #13.5: ties in event time are not broken by the partition ----------------------------------------------

@pytest.mark.parametrize("one_batch", [True, False], ids=["one_batch", "two_batches"])
def test_order_versions_with_the_same_timestamp_do_not_depend_on_the_partition(wh, one_batch):
    h1 = base_hour()
    wh.insert(hour_messages(h1))
    assert_success(wh.build())
    ts = h1 + timedelta(minutes=30)
    price = product_value(1)["price"]
    oid = f"o-{h1:%Y%m%d%H}-7001"
    paid = order(oid, "1", ts, [item(oid, 0, "1", 1, price)], status="paid")
    # After a repartition the newer version (shipped) sits on a lower partition than the older one.
    older = message("orders", paid, ts, partition=2, offset=500)
    newer = message("orders", {**paid, "status": "shipped"}, ts, partition=0, offset=7)
    # Same timestamp and status, different content: a true conflict, quarantined.
    cid = f"o-{h1:%Y%m%d%H}-7002"
    a = order(cid, "1", ts, [item(cid, 0, "1", 1, price)], status="placed")
    b = order(cid, "1", ts, [item(cid, 0, "1", 2, price)], status="placed")
    first = [older, message("orders", a, ts, partition=2, offset=501)]
    second = [newer, message("orders", b, ts, partition=0, offset=8)]
    if one_batch:
        wh.insert(first + second)
    else:
        wh.insert(first)
        assert_success(wh.build())
        wh.insert(second)
    assert_success(wh.build())
    assert wh.scalar("select status from silver.orders where order_id = %s", oid) == "shipped"
    assert wh.scalar("select status from gold.fct_orders where order_id = %s", oid) == "shipped"
    assert quarantine(wh, oid) == []
    if one_batch:  # a conflict is visible within a batch (across batches the version order alone decides)
        assert quarantine(wh, cid) == [("orders", "conflicting_duplicate", "rejected")]
    assert_full_refresh_agrees(wh, quarantine=one_batch)


# --- #13.6: pending rows say why their parent is missing ----------------------------------------------------

def test_an_order_or_event_whose_parent_was_rejected_says_so(wh):
    h1 = base_hour()
    wh.insert(hour_messages(h1))
    assert_success(wh.build())
    ts = h1 + timedelta(hours=1, minutes=5)
    bad_customer = {**customer_value(4242), "email": "not-an-email"}
    bad_product = {**product_value(4343), "price": -1}
    oid, pid_order = "o-4242-0001", "o-4343-0001"
    wh.insert([
        message("customers", bad_customer, ts),
        message("products", bad_product, ts),
        message("orders", order(oid, "4242", ts, [item(oid, 0, "1", 1, product_value(1)["price"])]), ts),
        message("orders", order(pid_order, "1", ts, [item(pid_order, 0, "4343", 1, "1.00")]), ts),
        message("events", event("e-4242-00001", "page_view", "4242", ts), ts),
        message("events", event("e-4444-00001", "page_view", "4444", ts), ts),  # a customer never seen
    ])
    assert_success(wh.build())
    assert quarantine(wh, oid) == [("orders", "pending_customer:rejected", "pending")]
    assert quarantine(wh, pid_order) == [("orders", "pending_product:rejected", "pending")]
    assert quarantine(wh, "e-4242-00001") == [("events", "pending_customer:rejected", "pending")]
    assert quarantine(wh, "e-4444-00001") == [("events", "pending_customer", "pending")]
    # A corrected customer version admits what waited for it.
    wh.insert([message("customers", customer_value(4242), ts + timedelta(minutes=1))])
    assert_success(wh.build())
    assert quarantine(wh, oid) == [] and quarantine(wh, "e-4242-00001") == []
    assert_full_refresh_agrees(wh, quarantine=False)


# --- #13.8: deletions --------------------------------------------------------------------------------------

def test_a_tombstone_deletes_nothing_and_is_explained_in_bronze_quarantine_only(wh):
    h1 = base_hour()
    wh.insert(hour_messages(h1))
    assert_success(wh.build())
    # What the loader stores for a null-value message (shopstream.bronze.poison: reason tombstone).
    wh.conn.execute(
        "insert into bronze.raw_events_quarantine (topic, \"partition\", \"offset\", event_ts, timestamp_ms,"
        " timestamp_type, record_key, record_value, value_bytes, reason, detail)"
        " values ('customers', 0, 999, %s, 0, 1, '1'::bytea, null, null, 'tombstone', 'null value (tombstone)')",
        [(h1 + timedelta(hours=1)).replace(tzinfo=None)])
    wh.conn.commit()
    # The customer also disappears from the next snapshot (DummyJSON removed it): it stays as it was.
    wh.insert(hour_messages(h1 + timedelta(hours=1), customers=range(2, 7)))
    assert_success(wh.build())
    for table in ("silver.customers", "gold.dim_customers"):
        assert wh.scalar(f"select updated_at from {table} where customer_id = '1'") == h1.replace(tzinfo=None)
    assert wh.scalar("select count(*) from gold.fct_orders where customer_id = '1'") > 0
    assert quarantine(wh, "1") == []
    assert_full_refresh_agrees(wh)


# --- #13.4: the reject-rate gate never lets a flagged batch through -----------------------------------------

def test_a_batch_flagged_by_the_reject_rate_gate_never_reaches_silver(wh):
    h1 = base_hour()
    wh.insert(hour_messages(h1))
    assert_success(wh.build())
    h2 = h1 + timedelta(hours=1)
    price = product_value(1)["price"]

    def orders(prefix, n, status):
        return [message("orders", order(f"o-{prefix}-{i:04d}", "1", h2 + timedelta(minutes=i),
                                        [item(f"o-{prefix}-{i:04d}", 0, "1", 1, price)], status=status),
                        h2 + timedelta(minutes=i)) for i in range(n)]

    wh.insert(orders("bad", 25, "teleported") + orders("good", 5, "paid"))  # 25 of 30 rejected: flagged
    run = wh.build(check=False)
    assert not run.success
    # The next run with new, valid data passes, and the flagged batch's valid rows still do not flow on.
    wh.insert(hour_messages(h2, n_orders=3))
    assert_success(wh.build())
    assert wh.scalar("select count(*) from silver.orders where order_id like 'o-good-%%'") == 0
    assert wh.rows("select distinct reason, status from silver.quarantine where record_key like 'o-good-%%'") == [
        ("rejected_batch", "rejected")]
    assert wh.scalar("select count(*) from gold.fct_orders where order_id like %s", f"o-{h2:%Y%m%d%H}-%") == 3
    # Re-sent (a newer version), the good orders are admitted.
    wh.insert([message("orders", {**m.value}, m.event_ts + timedelta(seconds=1)) for m in orders("good", 5, "paid")])
    assert_success(wh.build())
    assert wh.scalar("select count(*) from gold.fct_orders where order_id like 'o-good-%%'") == 5
