"""shopstream.reconcile: the pure comparison logic (checks), the table, and where the hours come from (windows,
published)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from shopstream.reconcile import checks, published, windows
from shopstream.reconcile.checks import DayCounts, HourCounts, Mismatch

H = "2026-03-14T22:00:00Z"


def row(**kw) -> HourCounts:
    base = dict(hour=H, entity="orders", published=19, bronze=19, bronze_quarantine=0, silver=19,
                silver_quarantine=0, gold=19)
    return HourCounts(**{**base, **kw})


def test_balanced_hour_has_no_mismatch():
    assert checks.check_hour(row()) == []
    # quarantine at either layer balances the equation
    assert checks.check_hour(row(bronze=17, bronze_quarantine=2, silver=15, silver_quarantine=2, gold=15)) == []


def test_each_layer_is_checked_separately():
    assert checks.check_hour(row(bronze=18)) == [
        Mismatch(H, "orders", "kafka->bronze", 19, 18),
        Mismatch(H, "orders", "bronze->silver", 18, 19),
    ]
    assert checks.check_hour(row(silver=18)) == [
        Mismatch(H, "orders", "bronze->silver", 19, 18),
        Mismatch(H, "orders", "silver->gold", 18, 19),
    ]
    assert checks.check_hour(row(gold=17)) == [Mismatch(H, "orders", "silver->gold", 19, 17)]


def test_unknown_published_and_gold_are_skipped():
    assert checks.check_hour(row(entity="events", published=None, gold=None, bronze=300, silver=300)) == []
    assert checks.check_hour(row(published=None, bronze=5, silver=5, gold=5)) == []


def test_day_checks_fact_then_aggregate():
    day = "2026-03-14"
    assert checks.check_day(DayCounts(day, "orders", 38, 38, 38)) == []
    assert checks.check_day(DayCounts(day, "orders", 38, 37, 37)) == [
        Mismatch(day, "orders", "silver->gold_fact", 38, 37)]
    assert checks.check_day(DayCounts(day, "revenue", Decimal("10.00"), Decimal("10"), Decimal("9.99"))) == [
        Mismatch(day, "revenue", "gold_fact->gold_agg", Decimal("10"), Decimal("9.99"))]
    assert checks.check_day(DayCounts(day, "events:page_view", 80, None, 79)) == [
        Mismatch(day, "events:page_view", "silver->gold_agg", 80, 79)]


def test_table_flags_the_rows_that_do_not_add_up():
    rows = [row(entity="customers", published=208, bronze=208, silver=208, gold=208), row(silver=18, gold=18)]
    days = [DayCounts("2026-03-14", "orders", 18, 18, 18)]
    table = checks.format_table(rows, days)
    lines = table.splitlines()
    assert lines[0].split() == ["hour", "entity", "published", "bronze", "bronze_q", "silver", "silver_q", "gold"]
    assert lines[1].endswith("ok") and "customers" in lines[1]
    assert lines[2].endswith("MISMATCH") and "orders" in lines[2]
    assert "1 mismatch(es):" in table
    assert f"{H} orders bronze->silver: expected 19, found 18" in table


def test_compare_collects_everything():
    rows = [row(), row(entity="events", published=300, bronze=299, silver=299, gold=None)]
    found = checks.compare(rows, [DayCounts("2026-03-14", "orders", 1, 1, 2)])
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
    assert windows.extract_hours(events) == {H: {"orders": 21, "events": 300}}
    assert windows.extract_hours(None) == {}


def test_merge_extract_hours_across_bronze_events():
    merged = windows.merge_extract_hours([
        {"totals": {}, "extract": {H: {"orders": 19}}},
        None,
        {"extract": {H: {"events": 300}, "2026-03-14T23:00:00Z": {"orders": 20}}},
    ])
    assert merged == {H: {"orders": 19, "events": 300}, "2026-03-14T23:00:00Z": {"orders": 20}}


class FakeAccessor:
    """The Task SDK's InletEventsAccessor: after/before (inclusive), ascending, limit, iteration."""

    def __init__(self, events, after=None, before=None, asc=True, limit=None):
        self.events, self._after, self._before, self._asc, self._limit = list(events), after, before, asc, limit

    def _copy(self, **kw):
        state = {"after": self._after, "before": self._before, "asc": self._asc, "limit": self._limit, **kw}
        return FakeAccessor(self.events, **state)

    def after(self, ts):
        return self._copy(after=datetime.fromisoformat(ts))

    def before(self, ts):
        return self._copy(before=datetime.fromisoformat(ts))

    def ascending(self, asc=True):
        return self._copy(asc=asc)

    def limit(self, n):
        return self._copy(limit=n)

    def __iter__(self):
        out = [e for e in self.events if (self._after is None or e.timestamp >= self._after)
               and (self._before is None or e.timestamp <= self._before)]
        out.sort(key=lambda e: e.timestamp, reverse=not self._asc)
        return iter(out[: self._limit] if self._limit else out)


class FakeInlets:
    def __init__(self, by_name):
        self.by_name = by_name

    def __getitem__(self, asset):
        return FakeAccessor(self.by_name.get(asset.name, []))


T0 = datetime(2026, 3, 15, 1, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ev(minutes: int, **extra) -> SimpleNamespace:
    return SimpleNamespace(timestamp=at(minutes), extra=extra)


def test_bronze_window_takes_the_extract_events_since_the_previous_bronze_event():
    inlets = FakeInlets({
        "shopstream.bronze.raw_events": [ev(5, extract_until=at(10).isoformat()), ev(1, totals={})],
        "shopstream.kafka.orders": [ev(9, logical_hour=H, messages=19),             # before the window
                                    ev(10, logical_hour=H, messages=19),            # at its start: excluded
                                    ev(12, logical_hour="2026-03-14T23:00:00Z", messages=20),
                                    ev(30, logical_hour=H, messages=21)],           # after: next window
        "shopstream.kafka.events": [ev(11, logical_hour="2026-03-14T23:00:00Z", messages=300)],
    })
    extra = windows.bronze_extract_extra(inlets, SimpleNamespace(run_after=at(20)))
    assert extra == {"extract": {"2026-03-14T23:00:00Z": {"orders": 20, "events": 300}},
                     "extract_until": at(20).isoformat()}
    # the next bronze run continues where this one stopped
    inlets.by_name["shopstream.bronze.raw_events"].append(ev(21, extract_until=extra["extract_until"]))
    nxt = windows.bronze_extract_extra(inlets, SimpleNamespace(run_after=at(40)))
    assert nxt["extract"] == {H: {"orders": 21}}


def test_bronze_window_without_history_starts_at_the_beginning_and_never_goes_back():
    inlets = FakeInlets({"shopstream.kafka.customers": [ev(1, logical_hour=H, messages=208)]})
    assert windows.bronze_extract_extra(inlets, SimpleNamespace(run_after=at(2)))["extract"] == {
        H: {"customers": 208}}
    inlets.by_name["shopstream.bronze.raw_events"] = [ev(3, extract_until=at(50).isoformat())]
    late = windows.bronze_extract_extra(inlets, SimpleNamespace(run_after=at(40)))  # a cleared old run
    assert late == {"extract": {}, "extract_until": at(50).isoformat()}


def test_dbt_window_merges_the_bronze_events_since_the_last_successful_reconciliation():
    inlets = FakeInlets({
        "shopstream.reconciled": [ev(10, bronze_until=at(10).isoformat())],
        "shopstream.bronze.raw_events": [ev(8, extract={H: {"orders": 1}}),          # already reconciled
                                         ev(12, extract={H: {"orders": 19}}),
                                         ev(14, totals={}),                          # bronze run by hand
                                         ev(15, extract={"2026-03-14T23:00:00Z": {"events": 300}}),
                                         ev(25, extract={"2026-03-15T00:00:00Z": {"orders": 5}})],  # later
    })
    chosen = windows.hours_for_run(SimpleNamespace(conf={}, run_after=at(20)), inlets)
    assert chosen["recorded"] == {H: {"orders": 19}, "2026-03-14T23:00:00Z": {"events": 300}}
    assert chosen["hours"] == [datetime(2026, 3, 14, 22, tzinfo=UTC), datetime(2026, 3, 14, 23, tzinfo=UTC)]
    assert chosen["until"] == at(20) and "3 bronze events" in chosen["how"]


def test_conf_hours_override_the_window_and_an_empty_list_accepts_the_state():
    inlets = FakeInlets({"shopstream.bronze.raw_events": [ev(12, extract={H: {"orders": 19}})]})
    run = SimpleNamespace(conf={"reconcile_hours": ["2026-03-14T23:00:00Z", H]}, run_after=at(20))
    chosen = windows.hours_for_run(run, inlets)
    assert chosen["hours"] == [datetime(2026, 3, 14, 22, tzinfo=UTC), datetime(2026, 3, 14, 23, tzinfo=UTC)]
    assert chosen["recorded"] is None  # no asset-event record: what extract recorded in ops (reconcile.published)
    run.conf = {"reconcile_hours": []}
    chosen = windows.hours_for_run(run, inlets)
    assert chosen["hours"] == [] and chosen["until"] == at(20)


def test_expected_from_derivation_counts_distinct_keys_and_items():
    users = [{"id": i, "firstName": "A", "lastName": "B", "email": f"u{i}@x.io"} for i in range(1, 6)]
    products = [{"id": i, "title": "p", "price": 1.5, "category": "c"} for i in range(1, 4)]
    carts = [{"id": i, "userId": i, "products": [{"id": 1, "price": 1.5, "quantity": 2},
                                                   {"id": 2, "price": 1.5, "quantity": 1}]} for i in range(1, 6)]
    from shopstream.extract.derive import DeriveSettings

    settings = DeriveSettings(order_rate=1.0, events_per_hour=50)
    exp = published.expected_from_derivation({"users": users, "products": products, "carts": carts},
                                             [datetime(2026, 3, 14, 22, 30, tzinfo=UTC)], settings)
    assert exp == {H: {"customers": 5, "products": 3, "orders": 5, "order_items": 10, "events": 50}}


@pytest.mark.parametrize("bad", [row(bronze_quarantine=1, bronze=18, silver=18, gold=17)])
def test_mismatch_strings_are_readable(bad):
    assert [str(m) for m in checks.check_hour(bad)] == [f"{H} orders silver->gold: expected 18, found 17"]



def test_bronze_event_carries_the_load_totals_and_the_hours_it_loaded():
    from shopstream.assets import BRONZE_RAW_EVENTS

    inlets = FakeInlets({"shopstream.kafka.orders": [ev(1, logical_hour=H, messages=19)]})
    outlets = {BRONZE_RAW_EVENTS: SimpleNamespace(extra=None)}
    orders = {"inserted": 19, "quarantined": 1, "remaining_lag": 0, "quarantined_by_reason": {"invalid_json": 1}}
    loads = {"totals": {"inserted": 19}, "loads": 3, "topics": {"orders": {**orders, "seconds": 0.4}}}
    extra = windows.record_bronze_event(outlets, loads, inlets, SimpleNamespace(run_after=at(2)))
    assert outlets[BRONZE_RAW_EVENTS].extra == extra == {
        "totals": {"inserted": 19}, "loads": 3, "topics": {"orders": orders},
        "extract": {H: {"orders": 19}}, "extract_until": at(2).isoformat()}
    # without inlet events (a bronze run by hand): the counts only; outside Airflow: no event at all
    assert windows.record_bronze_event(outlets, loads, None, None) == {
        "totals": {"inserted": 19}, "loads": 3, "topics": {"orders": orders}}
    assert windows.record_bronze_event(None, loads, inlets, SimpleNamespace(run_after=at(2))) is None


def test_reconciled_event_marks_where_the_next_window_starts():
    from shopstream.assets import RECONCILED

    outlets = {RECONCILED: SimpleNamespace(extra=None)}
    windows.record_reconciled_event(outlets, at(20), [H])
    assert outlets[RECONCILED].extra == {"bronze_until": at(20).isoformat(), "hours": [H]}
    inlets = FakeInlets({"shopstream.reconciled": [ev(20, **outlets[RECONCILED].extra)],
                         "shopstream.bronze.raw_events": [ev(19, extract={H: {"orders": 1}}),
                                                          ev(21, extract={"2026-03-14T23:00:00Z": {"orders": 2}})]})
    chosen = windows.hours_for_run(SimpleNamespace(conf={}, run_after=at(30)), inlets)
    assert chosen["recorded"] == {"2026-03-14T23:00:00Z": {"orders": 2}}


class FakeOpsConn:
    """A psycopg connection whose only query is ops.extract_published's read."""

    def __init__(self, rows):
        self.rows, self.params = rows, None

    def transaction(self):
        import contextlib

        return contextlib.nullcontext()

    def execute(self, sql, params):
        assert "from ops.extract_published" in sql
        self.params = params
        return SimpleNamespace(fetchall=lambda: self.rows)


def test_expected_counts_are_what_extract_recorded_then_the_asset_events_never_the_generator():
    recorded = [(datetime(2026, 3, 14, 22), "orders-x", 19, 41), (datetime(2026, 3, 14, 22), "events-x", 300, None)]
    conn = FakeOpsConn(recorded)
    topics = {"orders": "orders-x", "events": "events-x", "customers": "customers-x"}
    hours = [datetime(2026, 3, 14, 22, tzinfo=UTC), datetime(2026, 3, 14, 23, tzinfo=UTC)]
    found = published.expected_counts(conn, hours, topics,
                                      {H: {"orders": 25, "customers": 208}, "2026-03-14T23:00:00Z": {"orders": 7}})
    # the recorded keys win over the asset events' message counts; a topic or hour the table lacks falls back
    assert found == {H: {"orders": 19, "order_items": 41, "events": 300, "customers": 208},
                     "2026-03-14T23:00:00Z": {"orders": 7}}
    assert conn.params == [[datetime(2026, 3, 14, 22), datetime(2026, 3, 14, 23)], ["orders-x", "events-x",
                                                                                     "customers-x"]]
    # an hour nobody recorded has no expected counts: its kafka->bronze check is skipped, not a false alarm
    assert published.expected_counts(FakeOpsConn([]), hours, topics) == {}


def test_a_key_in_a_wrong_version_is_a_mismatch_with_examples():
    bad = row(entity="customers", wrong_version=2, wrong_version_keys=("17", "42"))
    assert checks.check_hour(bad) == [Mismatch(H, "customers", "version", 0, 2,
                                               "keys not in the latest admitted version, e.g. 17, 42")]
    assert "customers version: expected 0, found 2 (keys not in the latest admitted version, e.g. 17, 42)" in (
        checks.format_table([bad]))


def test_the_version_order_of_orders_is_dbts():
    import yaml
    from shopstream.dbt.paths import PROJECT_DIR
    from shopstream.reconcile.warehouse import ORDER_STATUSES

    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    assert tuple(project["vars"]["order_statuses"]) == ORDER_STATUSES
