"""Derived orders and events: determinism, ids, and the invariants the contract promises."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from shopstream.dummyjson_stub.catalog import generate_catalog, load_snapshot, snapshot_dir
from shopstream.extract.derive import (
    DEFAULT_SETTINGS,
    EVENT_TYPES,
    ORDER_STATUSES,
    DeriveSettings,
    derive_events,
    derive_orders,
    event_id_for,
    line_total,
    money,
    order_id_for,
)
from shopstream.hours import iso_seconds

ROOT = Path(__file__).resolve().parents[2]
H13 = datetime(2026, 11, 27, 13, tzinfo=UTC)
HOURS = [H13 + timedelta(hours=k) for k in range(-30, 30, 7)]


@pytest.fixture(scope="module")
def snap():
    return load_snapshot(snapshot_dir())


@pytest.fixture(scope="module")
def big():
    return generate_catalog(users=2000, products=1500, carts=3000, seed=7)


def _ts(text: str) -> datetime:
    assert text.endswith("Z") and len(text) == 20, text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _inside(text: str, hour: datetime) -> bool:
    return hour <= _ts(text) < hour + timedelta(hours=1)


# ------------------------------------------------------------------------------------------- orders


def test_orders_are_deterministic_and_hour_dependent(snap):
    a = derive_orders(snap.carts, H13)
    b = derive_orders(list(reversed(snap.carts)), H13)  # input order does not matter
    assert a == b
    other = derive_orders(snap.carts, H13 + timedelta(hours=1))
    assert {o["cart_id"] for o in a} != {o["cart_id"] for o in other}
    assert derive_orders(snap.carts, H13, DeriveSettings(seed="other")) != a


def test_order_rate_is_roughly_as_configured(snap):
    counts = [len(derive_orders(snap.carts, H13 + timedelta(hours=k))) for k in range(48)]
    mean = sum(counts) / len(counts)
    assert 0.07 * 208 <= mean <= 0.11 * 208, counts
    assert derive_orders(snap.carts, H13, DeriveSettings(order_rate=0.0)) == []
    assert len(derive_orders(snap.carts, H13, DeriveSettings(order_rate=1.0))) == len(snap.carts)


def test_order_selection_per_cart_does_not_depend_on_other_carts(snap):
    full = {o["order_id"]: o for o in derive_orders(snap.carts, H13)}
    half = derive_orders(snap.carts[::2], H13)
    assert half and all(full[o["order_id"]] == o for o in half)
    assert {o["order_id"] for o in half} == {oid for oid, o in full.items() if o["cart_id"] % 2 == 1}


@pytest.mark.parametrize("hour", HOURS)
def test_order_invariants(snap, hour):
    carts = {c["id"]: c for c in snap.carts}
    user_ids = {str(u["id"]) for u in snap.users}
    product_ids = {str(p["id"]) for p in snap.products}
    orders = derive_orders(snap.carts, hour)
    assert orders
    assert len({o["order_id"] for o in orders}) == len(orders)
    for o in orders:
        cart = carts[o["cart_id"]]
        assert o["order_id"] == order_id_for(hour, o["cart_id"]) == f"o-{hour:%Y%m%d%H}-{o['cart_id']:04d}"
        assert o["customer_id"] == str(cart["userId"]) and o["customer_id"] in user_ids
        assert _inside(o["order_ts"], hour)
        assert o["status"] in {s for s, _ in ORDER_STATUSES}
        assert o["currency"] == "USD" and o["schema_version"] == 1
        assert o["logical_hour"] == f"{hour:%Y-%m-%dT%H}:00:00Z"
        assert len(o["items"]) == len(cart["products"])
        total = Decimal("0")
        for i, (item, line) in enumerate(zip(o["items"], cart["products"], strict=True)):
            assert item["line"] == i
            assert item["order_item_id"] == f"{o['order_id']}-{i:02d}"
            assert item["product_id"] == str(line["id"]) and item["product_id"] in product_ids
            assert item["quantity"] == line["quantity"] > 0
            assert Decimal(item["unit_price"]) == Decimal(str(line["price"]))
            assert len(item["unit_price"].split(".")[1]) == 2
            total += (item["quantity"] * Decimal(item["unit_price"])).quantize(Decimal("0.01"))
        assert o["total_amount"] == f"{total:.2f}"
        # DummyJSON's own cart total (float sum rounded to cents) agrees with ours.
        assert Decimal(o["total_amount"]) == Decimal(str(cart["total"])).quantize(Decimal("0.01"))
    assert [(o["order_ts"], o["order_id"]) for o in orders] == sorted((o["order_ts"], o["order_id"]) for o in orders)


def test_duplicate_product_lines_get_distinct_item_ids(snap):
    dup_cart = next(c for c in snap.carts if len({line["id"] for line in c["products"]}) < len(c["products"]))
    order = derive_orders([dup_cart], H13, DeriveSettings(order_rate=1.0))[0]
    pids = [i["product_id"] for i in order["items"]]
    assert len(set(pids)) < len(pids)
    assert len({i["order_item_id"] for i in order["items"]}) == len(pids)


def test_money_rounds_half_up_and_accepts_integral_values():
    assert money(1111) == Decimal("1111.00")
    assert money(0.1 + 0.2) == Decimal("0.30")
    assert money(2.675) == Decimal("2.68")  # str(2.675) == "2.675": half-up on the decimal text
    assert line_total(3, "33.335") == Decimal("100.01")
    with pytest.raises(TypeError):
        money(None)
    with pytest.raises(TypeError):
        money(True)


def test_settings_are_validated():
    with pytest.raises(ValueError):
        DeriveSettings(order_rate=1.5)
    with pytest.raises(ValueError):
        DeriveSettings(events_per_hour=-1)


# ------------------------------------------------------------------------------------------- events


def _events(snap, hour, settings=DEFAULT_SETTINGS):
    orders = derive_orders(snap.carts, hour, settings)
    return orders, derive_events(snap.users, snap.products, orders, hour, settings)


def test_events_are_deterministic_and_hour_dependent(snap):
    _, a = _events(snap, H13)
    orders = derive_orders(snap.carts, H13)
    b = derive_events(list(reversed(snap.users)), list(reversed(snap.products)), list(reversed(orders)), H13)
    assert a == b
    _, c = _events(snap, H13 + timedelta(hours=1))
    strip = [(e["event_type"], e["customer_id"], e["product_id"], e["event_ts"][14:]) for e in a]
    assert strip != [(e["event_type"], e["customer_id"], e["product_id"], e["event_ts"][14:]) for e in c]


@pytest.mark.parametrize("hour", HOURS)
def test_event_invariants(snap, hour):
    orders, events = _events(snap, hour)
    user_ids = {str(u["id"]) for u in snap.users}
    product_ids = {str(p["id"]) for p in snap.products}
    assert len(events) == 300
    assert [e["event_id"] for e in events] == [event_id_for(hour, i) for i in range(300)]
    assert [e["event_ts"] for e in events] == sorted(e["event_ts"] for e in events)
    for e in events:
        assert e["event_type"] in EVENT_TYPES
        assert _inside(e["event_ts"], hour)
        assert e["customer_id"] in user_ids
        assert e["session_id"].startswith(f"s-{hour:%Y%m%d%H}-")
        assert e["logical_hour"] == f"{hour:%Y-%m-%dT%H}:00:00Z" and e["schema_version"] == 1
        if e["event_type"] in ("product_view", "add_to_cart"):
            assert e["product_id"] in product_ids and e["page"] == f"/products/{e['product_id']}"
        else:
            assert e["product_id"] is None
        assert (e["order_id"] is not None) == (e["event_type"] == "checkout_complete")
    # One checkout_complete per order, by its customer, at/after order_ts, inside the hour.
    by_order = {o["order_id"]: o for o in orders}
    completes = [e for e in events if e["event_type"] == "checkout_complete"]
    assert sorted(e["order_id"] for e in completes) == sorted(by_order)
    for e in completes:
        o = by_order[e["order_id"]]
        assert e["customer_id"] == o["customer_id"]
        assert _ts(e["event_ts"]) >= _ts(o["order_ts"])
    # Sessions: one customer each, steps in time order, at most one completion.
    sessions: dict[str, list[dict]] = {}
    for e in events:
        sessions.setdefault(e["session_id"], []).append(e)
    for steps in sessions.values():
        assert len({s["customer_id"] for s in steps}) == 1
        assert sum(s["event_type"] == "checkout_complete" for s in steps) <= 1
    assert len(sessions) > len(orders)  # browsing sessions besides the order sessions
    assert Counter(e["event_type"] for e in events).keys() == set(EVENT_TYPES)


def test_events_per_hour_is_configurable_and_orders_always_complete(snap):
    for n in (0, 10, 50, 1000):
        settings = DeriveSettings(events_per_hour=n)
        orders, events = _events(snap, H13, settings)
        completes = {e["order_id"] for e in events if e["event_type"] == "checkout_complete"}
        assert completes == {o["order_id"] for o in orders}
        assert len(events) == max(n, len(orders))


def test_big_generated_catalogue_keeps_the_invariants(big):
    orders = derive_orders(big.carts, H13)
    assert 0.07 * 3000 <= len(orders) <= 0.11 * 3000
    events = derive_events(big.users, big.products, orders, H13, DeriveSettings(events_per_hour=100))
    assert len(events) == len(orders)  # more orders than the event budget: completions only
    assert all(e["event_type"] == "checkout_complete" for e in events)
    assert all(_inside(e["event_ts"], H13) for e in events)
    assert len({e["event_id"] for e in events}) == len(events)


def test_events_reject_orders_of_another_hour(snap):
    orders = derive_orders(snap.carts, H13 + timedelta(hours=1))
    with pytest.raises(ValueError, match="belongs to"):
        derive_events(snap.users, snap.products, orders, H13)


def test_derivation_is_identical_in_a_fresh_process_with_another_hash_seed(snap):
    """String-seeded Random must not depend on PYTHONHASHSEED or process state."""
    code = (
        "import sys, json; sys.path.insert(0, 'plugins');"
        "from datetime import datetime, UTC;"
        "from shopstream.dummyjson_stub.catalog import load_snapshot, snapshot_dir;"
        "from shopstream.extract.derive import derive_orders, derive_events;"
        "s = load_snapshot(snapshot_dir()); h = datetime(2026, 11, 27, 13, tzinfo=UTC);"
        "o = derive_orders(s.carts, h);"
        "print(json.dumps([o, derive_events(s.users, s.products, o, h)], sort_keys=True))"
    )
    import json
    import os

    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    orders = derive_orders(snap.carts, H13)
    here = json.dumps([orders, derive_events(snap.users, snap.products, orders, H13)], sort_keys=True)
    assert out.stdout.strip() == here


def test_timestamps_have_second_precision():
    assert iso_seconds(H13 + timedelta(seconds=3599)) == "2026-11-27T13:59:59Z"
