"""Conflicting duplicates (issue #13, docs/contracts.md "Ties") on real PostgreSQL: the verdict must not depend
on how the messages were batched.

Two valid versions of one key with equal version keys (Kafka timestamp; for orders also the status) and other
content: the one with the highest (partition, offset) wins, the other is rejected `conflicting_duplicate` -
unless the winner is pending (waits for its customer): then the loser is judged like any other version, and
re-labelled when the winner stops being pending. For products, orders and events, each case runs as
(a) loser and winner in one run, (b) the loser first, the winner in a later run, (c) the winner first, the loser
(on a lower partition) later, (d) the winner pending until its customer arrives, and (e) a re-send of the first
loser on a higher partition, which makes its content the winner's again. After every run the quarantine is what
the rule says and no loser is the row silver holds; at the end a `--full-refresh` of the same bronze gives the
same silver, gold and quarantine.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.contract_messages import (
    Message,
    base_hour,
    customer_value,
    event,
    hour_messages,
    item,
    message,
    order,
    product,
    product_value,
)
from tests.support.warehouse import Warehouse, assert_full_refresh_agrees, assert_success

pytestmark = pytest.mark.integration

# The staging table, key column and silver table of each entity.
ENTITIES = {"products": ("stg_products", "product_id", "products"),
            "orders": ("stg_orders", "order_id", "orders"),
            "events": ("stg_events", "event_id", "events")}
LOW, HIGH = 0, 2  # partitions: the winner sits on the higher one


@pytest.fixture
def wh(wh):
    """The shared warehouse (tests/integration/conftest.py) with the first hour built: the parents."""
    wh.insert(hour_messages(base_hour()))  # customers and products 1..6
    assert_success(wh.build())
    return wh


def twins(case: int, customer: str = "1", winner_customer: str | None = None) -> dict[str, tuple[Message, Message]]:
    """(winner, loser) per topic: same key and Kafka timestamp (and order status), other content; the winner on
    the higher partition. Keys are unique per `case`."""
    ts = base_hour() + timedelta(hours=1, minutes=30)
    pid, oid, eid = str(900 + case), f"o-cd-{case:04d}", f"e-cd-{case:05d}"
    price = product_value(1)["price"]
    winner_customer = winner_customer or customer

    def pair(topic: str, win: dict, lose: dict) -> tuple[Message, Message]:
        return message(topic, win, ts, partition=HIGH), message(topic, lose, ts, partition=LOW)

    return {
        "products": pair("products", product(pid, "Twin W", "5.00"), product(pid, "Twin L", "6.00")),
        "orders": pair("orders", order(oid, winner_customer, ts, [item(oid, 0, "1", 1, price)], status="paid"),
                       order(oid, customer, ts, [item(oid, 0, "1", 2, price)], status="paid")),
        "events": pair("events", event(eid, "page_view", winner_customer, ts), event(eid, "add_to_cart", customer, ts)),
    }


def decisions(wh: Warehouse, topic: str, key: str) -> list[tuple]:
    """(partition, _status, _reject_reason) of every staged version of the key, in bronze order."""
    table, key_column, _ = ENTITIES[topic]
    return wh.rows(f'select _partition, _status, _reject_reason from staging.{table} where {key_column} = %s'
                   " order by _bronze_id", key)


def quarantined(wh: Warehouse, topic: str, key: str) -> list[tuple]:
    """(partition, reason, status) of the key's quarantine rows."""
    return wh.rows('select "partition", reason, status from silver.quarantine where source_table = %s'
                   " and record_key = %s order by 1, 2", topic, key)


def silver_partition(wh: Warehouse, topic: str, key: str) -> int | None:
    _, key_column, silver = ENTITIES[topic]
    rows = wh.rows(f"select _kafka_partition from silver.{silver} where {key_column} = %s", key)
    return rows[0][0] if rows else None


def assert_no_loser_in_silver(wh: Warehouse) -> None:
    """A re-labelled loser is never the version silver holds."""
    for table, key_column, silver in ENTITIES.values():
        held = wh.rows(f"select s.{key_column}, s._bronze_id from staging.{table} as s"
                       f" join silver.{silver} as v on v._bronze_id = s._bronze_id"
                       " where s._reject_reason = 'conflicting_duplicate'")
        assert held == [], f"silver.{silver} holds a conflicting duplicate: {held}"


def key_of(m: Message) -> str:
    return m.key


CONFLICT = (LOW, "conflicting_duplicate", "rejected")


@pytest.mark.parametrize("batching", ["one_run", "loser_first", "winner_first"])
def test_the_loser_is_rejected_whichever_run_brings_it(wh, batching):
    pairs = twins(["one_run", "loser_first", "winner_first"].index(batching))
    winners, losers = [w for w, _ in pairs.values()], [lo for _, lo in pairs.values()]
    runs = {"one_run": [losers + winners], "loser_first": [losers, winners], "winner_first": [winners, losers]}
    for batch in runs[batching]:
        wh.insert(batch)
        assert_success(wh.build())
        assert_no_loser_in_silver(wh)
    for topic, (winner, _) in pairs.items():
        assert quarantined(wh, topic, key_of(winner)) == [CONFLICT], (topic, decisions(wh, topic, key_of(winner)))
        assert silver_partition(wh, topic, key_of(winner)) == HIGH, topic
    assert_full_refresh_agrees(wh)


def test_a_pending_winner_leaves_the_loser_judged_as_a_version_until_its_customer_arrives(wh):
    # orders: the winner waits for customer 77, the loser's customer is known (it is admitted meanwhile);
    # events: both wait for customer 78.
    orders = twins(3, customer="1", winner_customer="77")["orders"]
    events = twins(4, customer="78")["events"]
    wh.insert([orders[1], events[1]])  # the losers first
    assert_success(wh.build())
    wh.insert([orders[0], events[0]])
    assert_success(wh.build())
    oid, eid = key_of(orders[0]), key_of(events[0])
    assert quarantined(wh, "orders", oid) == [(HIGH, "pending_customer", "pending")]
    assert silver_partition(wh, "orders", oid) == LOW  # the loser is the latest admissible version
    assert quarantined(wh, "events", eid) == [(LOW, "pending_customer", "pending"), (HIGH, "pending_customer", "pending")]
    assert_no_loser_in_silver(wh)

    ts = base_hour() + timedelta(hours=1, minutes=40)
    wh.insert([message("customers", customer_value(77), ts), message("customers", customer_value(78), ts)])
    assert_success(wh.build())
    assert quarantined(wh, "orders", oid) == [CONFLICT]
    assert quarantined(wh, "events", eid) == [CONFLICT]
    assert silver_partition(wh, "orders", oid) == HIGH
    assert silver_partition(wh, "events", eid) == HIGH
    assert_no_loser_in_silver(wh)
    assert_full_refresh_agrees(wh)


def test_a_new_winner_with_the_losers_content_rejects_the_former_winner(wh):
    pairs = twins(5)
    wh.insert([m for pair in pairs.values() for m in pair])
    assert_success(wh.build())
    # The loser is sent again and lands on a partition above the winner's: its content wins now.
    wh.insert([message(lo.topic, lo.value, lo.event_ts, partition=HIGH + 1) for _, lo in pairs.values()])
    assert_success(wh.build())
    for topic, (winner, _) in pairs.items():
        key = key_of(winner)
        assert quarantined(wh, topic, key) == [(HIGH, "conflicting_duplicate", "rejected")], topic
        assert [d[1] for d in decisions(wh, topic, key)] == ["rejected", "superseded", "admitted"], topic
        assert silver_partition(wh, topic, key) == HIGH + 1, topic
    assert_no_loser_in_silver(wh)
    assert_full_refresh_agrees(wh)
