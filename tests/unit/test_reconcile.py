"""shopstream.reconcile: the pure comparison logic, the table, and where the hours come from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from shopstream import reconcile
from shopstream.reconcile import DayCounts, HourCounts, Mismatch

H = "2026-03-14T22:00:00Z"


def row(**kw) -> HourCounts:
    base = dict(hour=H, entity="orders", published=19, bronze=19, bronze_quarantine=0, silver=19,
                silver_quarantine=0, gold=19)
    return HourCounts(**{**base, **kw})


def test_balanced_hour_has_no_mismatch():
    assert reconcile.check_hour(row()) == []
    # quarantine at either layer balances the equation
    assert reconcile.check_hour(row(bronze=17, bronze_quarantine=2, silver=15, silver_quarantine=2, gold=15)) == []


def test_each_layer_is_checked_separately():
    assert reconcile.check_hour(row(bronze=18)) == [
        Mismatch(H, "orders", "kafka->bronze", 19, 18),
        Mismatch(H, "orders", "bronze->silver", 18, 19),
    ]
    assert reconcile.check_hour(row(silver=18)) == [
        Mismatch(H, "orders", "bronze->silver", 19, 18),
        Mismatch(H, "orders", "silver->gold", 18, 19),
    ]
    assert reconcile.check_hour(row(gold=17)) == [Mismatch(H, "orders", "silver->gold", 19, 17)]


def test_unknown_published_and_gold_are_skipped():
    assert reconcile.check_hour(row(entity="events", published=None, gold=None, bronze=300, silver=300)) == []
    assert reconcile.check_hour(row(published=None, bronze=5, silver=5, gold=5)) == []


def test_day_checks_fact_then_aggregate():
    day = "2026-03-14"
    assert reconcile.check_day(DayCounts(day, "orders", 38, 38, 38)) == []
    assert reconcile.check_day(DayCounts(day, "orders", 38, 37, 37)) == [
        Mismatch(day, "orders", "silver->gold_fact", 38, 37)]
    assert reconcile.check_day(DayCounts(day, "revenue", Decimal("10.00"), Decimal("10"), Decimal("9.99"))) == [
        Mismatch(day, "revenue", "gold_fact->gold_agg", Decimal("10"), Decimal("9.99"))]
    assert reconcile.check_day(DayCounts(day, "events:page_view", 80, None, 79)) == [
        Mismatch(day, "events:page_view", "silver->gold_agg", 80, 79)]


def test_table_flags_the_rows_that_do_not_add_up():
    rows = [row(entity="customers", published=208, bronze=208, silver=208, gold=208), row(silver=18, gold=18)]
    days = [DayCounts("2026-03-14", "orders", 18, 18, 18)]
    table = reconcile.format_table(rows, days)
    lines = table.splitlines()
    assert lines[0].split() == ["hour", "entity", "published", "bronze", "bronze_q", "silver", "silver_q", "gold"]
    assert lines[1].endswith("ok") and "customers" in lines[1]
    assert lines[2].endswith("MISMATCH") and "orders" in lines[2]
    assert "1 mismatch(es):" in table
    assert f"{H} orders bronze->silver: expected 19, found 18" in table


def test_compare_collects_everything():
    rows = [row(), row(entity="events", published=300, bronze=299, silver=299, gold=None)]
    found = reconcile.compare(rows, [DayCounts("2026-03-14", "orders", 1, 1, 2)])
    assert [m.check for m in found] == ["kafka->bronze", "gold_fact->gold_agg"]


@dataclass
class FakeEvent:
    extra: dict
    timestamp: str = "2026-03-15T01:00:00"


@dataclass(frozen=True)
class FakeAsset:
    name: str


def test_extract_hours_from_the_extract_asset_events_latest_wins():
    events = {
        FakeAsset("shopstream.kafka.orders"): [
            FakeEvent({"logical_hour": H, "topic": "orders-x", "messages": 19}, "2026-03-15T01:00:00"),
            FakeEvent({"logical_hour": H, "topic": "orders-x", "messages": 21}, "2026-03-15T02:00:00"),
        ],
        FakeAsset("shopstream.kafka.events"): [FakeEvent({"logical_hour": H, "messages": 300})],
        FakeAsset("shopstream.other"): [FakeEvent({"logical_hour": H, "messages": 1})],
        FakeAsset("shopstream.kafka.customers"): [FakeEvent({"unrelated": True})],
    }
    assert reconcile.extract_hours(events) == {H: {"orders": 21, "events": 300}}
    assert reconcile.extract_hours(None) == {}


def test_merge_extract_hours_across_bronze_events():
    merged = reconcile.merge_extract_hours([
        {"totals": {}, "extract": {H: {"orders": 19}}},
        None,
        {"extract": {H: {"events": 300}, "2026-03-14T23:00:00Z": {"orders": 20}}},
    ])
    assert merged == {H: {"orders": 19, "events": 300}, "2026-03-14T23:00:00Z": {"orders": 20}}


def ctx(**kw):
    return kw


def test_hours_for_asset_triggered_runs_come_from_the_bronze_events():
    from shopstream.assets import BRONZE_RAW_EVENTS

    events = {BRONZE_RAW_EVENTS: [SimpleNamespace(extra={"extract": {H: {"orders": 19}}})]}
    hours, recorded, how = reconcile.hours_for_run(ctx(triggering_asset_events=events,
                                                      dag_run=SimpleNamespace(conf={}, run_type="asset_triggered")))
    assert hours == [datetime(2026, 3, 14, 22, tzinfo=UTC)]
    assert recorded == {H: {"orders": 19}} and "asset" in how


def test_hours_from_conf_and_manual_rule():
    conf_run = SimpleNamespace(conf={"reconcile_hours": ["2026-03-14T23:00:00Z", H]}, run_type="manual")
    hours, recorded, _ = reconcile.hours_for_run(ctx(dag_run=conf_run))
    assert hours == [datetime(2026, 3, 14, 22, tzinfo=UTC), datetime(2026, 3, 14, 23, tzinfo=UTC)]
    assert recorded is None
    manual = SimpleNamespace(conf={}, run_type="manual")
    hours, recorded, how = reconcile.hours_for_run(ctx(dag_run=manual,
                                                       logical_date=datetime(2026, 3, 14, 23, tzinfo=UTC)))
    assert hours == [datetime(2026, 3, 14, 22, tzinfo=UTC)] and recorded is None and "manual" in how


def test_asset_run_without_hours_reconciles_nothing():
    from shopstream.assets import BRONZE_RAW_EVENTS

    events = {BRONZE_RAW_EVENTS: [SimpleNamespace(extra={"totals": {}})]}
    hours, _, how = reconcile.hours_for_run(ctx(triggering_asset_events=events,
                                               dag_run=SimpleNamespace(conf={}, run_type="asset_triggered")))
    assert hours == [] and "no extract hours" in how


def test_expected_from_derivation_counts_distinct_keys_and_items():
    users = [{"id": i, "firstName": "A", "lastName": "B", "email": f"u{i}@x.io"} for i in range(1, 6)]
    products = [{"id": i, "title": "p", "price": 1.5, "category": "c"} for i in range(1, 4)]
    carts = [{"id": i, "userId": i, "products": [{"id": 1, "price": 1.5, "quantity": 2},
                                                   {"id": 2, "price": 1.5, "quantity": 1}]} for i in range(1, 6)]
    from shopstream.extract.derive import DeriveSettings

    settings = DeriveSettings(order_rate=1.0, events_per_hour=50)
    exp = reconcile.expected_from_derivation({"users": users, "products": products, "carts": carts},
                                             [datetime(2026, 3, 14, 22, 30, tzinfo=UTC)], settings)
    assert exp == {H: {"customers": 5, "products": 3, "orders": 5, "order_items": 10, "events": 50}}


@pytest.mark.parametrize("bad", [row(bronze_quarantine=1, bronze=18, silver=18, gold=17)])
def test_mismatch_strings_are_readable(bad):
    assert [str(m) for m in reconcile.check_hour(bad)] == [f"{H} orders silver->gold: expected 18, found 17"]

