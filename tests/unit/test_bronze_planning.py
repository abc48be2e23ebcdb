"""Offsets planning and partition groups (shopstream.bronze.planning)."""

from __future__ import annotations

import random

import pytest
from shopstream.bronze.planning import format_tp, parse_tp, parse_tps, plan_partition, split_groups


def test_never_loaded_starts_at_log_start():
    p = plan_partition("orders", 0, None, low=5, high=100)
    assert (p.start, p.target, p.pending, p.note) == (5, 100, 95, None)


def test_resumes_at_stored_offset():
    p = plan_partition("orders", 0, 40, low=0, high=100)
    assert (p.start, p.target, p.pending, p.note) == (40, 100, 60, None)


def test_caught_up_has_nothing_pending():
    assert plan_partition("orders", 0, 100, low=0, high=100).pending == 0
    assert plan_partition("orders", 0, None, low=0, high=0).pending == 0


def test_stored_offset_deleted_by_retention_is_reported():
    p = plan_partition("orders", 1, 10, low=50, high=80)
    assert p.start == 50 and p.pending == 30
    assert "10..49" in p.note


def test_stored_offset_beyond_log_end_loads_nothing():
    p = plan_partition("orders", 1, 500, low=0, high=80)
    assert p.start == 500 and p.pending == 0 and "beyond" in p.note


def test_bad_watermarks():
    with pytest.raises(ValueError):
        plan_partition("orders", 0, None, low=10, high=5)


def test_split_covers_every_partition_once_and_balances():
    rnd = random.Random(3)
    items = [(t, p, rnd.randrange(0, 10_000)) for t in ("customers", "products", "orders", "events")
             for p in range(3)]
    groups = split_groups(items, 3)
    flat = [x for g in groups for x in g]
    assert sorted(flat) == sorted(format_tp(t, p) for t, p, _ in items)
    assert len(flat) == len(set(flat)) == 12
    loads = [sum(w for t, p, w in items if format_tp(t, p) in g) for g in groups]
    assert max(loads) - min(loads) <= max(w for *_, w in items)  # LPT bound
    assert split_groups(list(reversed(items)), 3) == groups  # deterministic, order-independent


def test_split_with_nothing_pending_spreads_by_count():
    items = [("t", p, 0) for p in range(6)]
    assert [len(g) for g in split_groups(items, 3)] == [2, 2, 2]


def test_split_more_groups_than_partitions():
    assert split_groups([("t", 0, 5), ("t", 1, 7)], 8) == [["t:1"], ["t:0"]]
    assert split_groups([], 3) == []
    with pytest.raises(ValueError):
        split_groups([("t", 0, 1)], 0)


def test_topic_partition_text_form():
    assert parse_tp("orders-ab12:2") == ("orders-ab12", 2)
    assert parse_tps("a:0, b:1,") == [("a", 0), ("b", 1)]
    for bad in ("orders", "orders:", ":1", "orders:x", "orders:-1"):
        with pytest.raises(ValueError):
            parse_tp(bad)
    with pytest.raises(ValueError):
        parse_tps(["a:0", "a:0"])
