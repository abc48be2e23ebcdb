"""shopstream.ops: the rows each task records (pure), and that every write is one upsert on the table's key."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from shopstream import ops
from shopstream.reconcile.checks import HourCounts, Mismatch, summarize


def test_extract_rows_one_per_topic_with_keys_items_and_offsets():
    results = {
        "orders": {"topic": "orders-x", "logical_hour": "2026-11-27T13:00:00Z", "published": 21, "keys": 19,
                   "order_items": 40, "offsets": {"0": [5, 12], "1": [0, 12]}},
        "events": {"topic": "events", "logical_hour": "2026-11-27T13:00:00Z", "published": 300, "keys": 300,
                   "offsets": {}},
    }
    rows = ops.extract_rows(results, "scheduled__1")
    assert rows[0] == {"logical_hour": datetime(2026, 11, 27, 13), "topic": "orders-x", "base_topic": "orders",
                       "messages": 21, "keys": 19, "order_items": 40,
                       "offsets": json.dumps({"0": [5, 12], "1": [0, 12]}), "dag_run_id": "scheduled__1"}
    assert rows[1]["order_items"] is None and rows[1]["keys"] == 300


def test_bronze_rows_one_per_topic_with_reasons_lag_and_hours():
    merged = {"totals": {"inserted": 20}, "topics": {
        "orders": {"inserted": 19, "quarantined": 1, "remaining_lag": 0, "quarantined_by_reason": {"invalid_json": 1},
                   "seconds": 0.3},
        "events": {"inserted": 1, "quarantined": 0, "remaining_lag": 7, "quarantined_by_reason": {}}}}
    rows = ops.bronze_rows(merged, "run-1", ["2026-11-27T14:00:00Z", "2026-11-27T13:00:00Z"])
    assert rows == [
        {"dag_run_id": "run-1", "topic": "orders", "inserted": 19, "quarantined": 1,
         "quarantined_by_reason": '{"invalid_json": 1}', "remaining_lag": 0,
         "extract_hours": '["2026-11-27T13:00:00Z", "2026-11-27T14:00:00Z"]'},
        {"dag_run_id": "run-1", "topic": "events", "inserted": 1, "quarantined": 0, "quarantined_by_reason": "{}",
         "remaining_lag": 7, "extract_hours": '["2026-11-27T13:00:00Z", "2026-11-27T14:00:00Z"]'}]


def test_reconcile_rows_carry_the_counts_and_the_mismatches_of_their_hour():
    h = "2026-11-27T13:00:00Z"
    counts = [HourCounts(h, "orders", 19, 19, 0, 18, 0, 18, silver_quarantine_by_reason={"pending_customer": 1}),
              HourCounts(h, "order_items", 40, 40, 0, 40, 0, 40),
              HourCounts(h, "customers", 5, 5, 0, 5, 0, 5, 1, ("7",))]
    mismatches = [Mismatch(h, "orders", "bronze->silver", 19, 18), Mismatch(h, "customers", "version", 0, 1, "7")]
    summary = summarize([datetime(2026, 11, 27, 13, tzinfo=UTC)], counts, [], mismatches)
    rows = ops.reconcile_rows(summary, {"orders": "orders-x", "customers": "customers"}, "run-2")
    by = {r["entity"]: r for r in rows}
    assert by["orders"]["topic"] == by["order_items"]["topic"] == "orders-x"
    assert by["orders"]["ok"] is False and by["orders"]["mismatches"] == [
        f"{h} orders bronze->silver: expected 19, found 18"]
    assert by["orders"]["silver_quarantine_by_reason"] == '{"pending_customer": 1}'
    assert by["order_items"]["ok"] is True and by["order_items"]["mismatches"] == []
    assert by["customers"]["wrong_version"] == 1 and not by["customers"]["ok"]
    assert by["orders"]["hour"] == datetime(2026, 11, 27, 13) and by["orders"]["dag_run_id"] == "run-2"


class FakeConn:
    def __init__(self):
        self.batches = []

    def transaction(self):
        import contextlib
        return contextlib.nullcontext()

    def cursor(self):
        conn = self

        class Cursor:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def executemany(self, sql, rows):
                conn.batches.append((sql, rows))
        return Cursor()


def test_every_write_is_an_upsert_on_the_tables_key():
    conn = FakeConn()
    ops.record_bronze_loads(conn, {"topics": {"t": {"inserted": 1}}}, "run")
    ops.record_extract(conn, {"orders": {"topic": "o", "logical_hour": "2026-11-27T13:00:00Z", "published": 1}},
                       "run")
    ops.record_reconciliation(conn, {"counts": []}, {}, "run")  # nothing to write: no statement
    keys = ["on conflict (dag_run_id, topic) do update", "on conflict (logical_hour, topic) do update"]
    assert [k in sql for k, (sql, _) in zip(keys, conn.batches, strict=True)] == [True, True]
    assert all(isinstance(r["now"], datetime) for _, rows in conn.batches for r in rows)
