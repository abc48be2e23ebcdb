"""Histories the property test once failed on, replayed by every run (hypothesis @example): each is the
shrunk history, the divergence it showed, and the commit that fixed it."""

from __future__ import annotations

from datetime import timedelta

from tests.property.histories import History
from tests.support.contract_messages import base_hour, customer, item, message, order, product

BASE = base_hour(days_ago=4, hour=22)


def _at(minutes: int):
    return BASE + timedelta(minutes=minutes)


# Seed 7 of the first version: an order's newest version waits for a product that never comes; the older
# version is admissible. Incremental kept the older one (admitted in batch 0), a full refresh superseded it by
# the pending one and dropped the order. Rule now: the latest ADMISSIBLE version wins (stg_orders, stg_events).
PENDING_NEWEST_VERSION = History(base=BASE, batches=[
    [message("customers", customer(1, "Ada", "Last1", "c1.e0@example.com"), _at(0)),
     message("products", product(1, "Product 1 A", "4.99"), _at(0)),
     message("orders", order("o-p-0000", "1", _at(10), [item("o-p-0000", 0, "1", 1, "4.99")], status="paid"),
             _at(10))],
    [message("orders", order("o-p-0000", "1", _at(10), [item("o-p-0000", 0, "4", 1, "4.99")], status="shipped"),
             _at(20))],
])

REGRESSIONS: list[History] = [PENDING_NEWEST_VERSION]
