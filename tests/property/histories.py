"""Random histories of the four topics, for the property tests: nobody chose these inputs.

A history is a list of batches; each batch is the bronze rows one load adds before one `dbt build`. The
generator draws a small universe (a few customers, products, orders and events, each with one or more
versions) so that keys collide often, then scatters the versions over the batches:

- versions arrive in any order relative to their Kafka timestamps (late, older versions included);
- a parent may arrive after its children (pending, admitted later) or never (held back for good);
- an order's later version may change its status, move its order_ts across midnight, or change its items
  (drop, add, change quantities) - items of the winning version only must be in gold;
- whole messages are re-sent verbatim in a later batch (at-least-once delivery);
- customers change names and e-mail addresses (each address is used by one customer only).

Versions of one key never share a Kafka timestamp: equal timestamps with different content are a defect case
of their own (conflicting duplicates), and the oracle refuses them (`UnmodelledInput`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from tests.support.contract_messages import Message, customer, event, item, message, order, product

FIRST_NAMES = ("Ada", "Grace", "Linus", "Barbara")
PRICES = ("4.99", "12.50", "100.00", "0.10")
STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled")
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "checkout_start", "checkout_complete")

N_CUSTOMERS = 4  # customer ids 1..N; id N+1 is referenced but never published
N_PRODUCTS = 3  # product ids 1..N; id N+1 is referenced but never published
SPAN_MINUTES = 48 * 60  # business and Kafka timestamps fall in the two days after the base hour


@dataclass
class History:
    """batches[i] = the messages of load i, in arrival (offset) order."""

    base: datetime
    batches: list[list[Message]]

    def messages(self) -> list[Message]:
        return [m for batch in self.batches for m in batch]

    def by_topic(self) -> dict[str, list[tuple[datetime, dict[str, Any]]]]:
        """Every message as the oracle takes it: {topic: [(naive UTC Kafka timestamp, value)]}."""
        out: dict[str, list[tuple[datetime, dict[str, Any]]]] = {}
        for m in self.messages():
            out.setdefault(m.topic, []).append((m.event_ts.replace(tzinfo=None), m.value))
        return out

    def describe(self) -> str:
        """One line per message, for a failing example's report."""
        lines = []
        for n, batch in enumerate(self.batches):
            for m in batch:
                lines.append(f"batch {n} {m.topic:9} key={m.key} kafka_ts={m.event_ts:%m-%d %H:%M} {m.value}")
        return "\n".join(lines)


def _distinct_minutes(draw, count: int) -> list[int]:
    return draw(st.lists(st.integers(0, SPAN_MINUTES - 1), min_size=count, max_size=count, unique=True))


@st.composite
def histories(draw, max_batches: int = 4) -> History:
    from tests.support.contract_messages import base_hour

    base = base_hour(days_ago=4, hour=22)  # the spans cross midnight twice, and stay in the past
    n_batches = draw(st.integers(1, max_batches))
    placed: list[tuple[int, Message]] = []  # (batch, message)

    def at(minute: int) -> datetime:
        return base + timedelta(minutes=minute)

    def place(msg: Message) -> None:
        placed.append((draw(st.integers(0, n_batches - 1)), msg))

    # customers: 0..3 versions each (0 = never published); names and e-mails change between versions
    for cid in range(1, N_CUSTOMERS + 1):
        n_versions = draw(st.integers(0, 3))
        for minute in _distinct_minutes(draw, n_versions):
            first = draw(st.sampled_from(FIRST_NAMES))
            email_version = draw(st.integers(0, 2))  # a later version may go back to an earlier address
            place(message("customers", customer(cid, first, f"Last{cid}", f"c{cid}.e{email_version}@example.com"),
                          at(minute)))

    # products: 0..2 versions each; the price and title change
    for pid in range(1, N_PRODUCTS + 1):
        n_versions = draw(st.integers(0, 2))
        for minute in _distinct_minutes(draw, n_versions):
            place(message("products", product(pid, f"Product {pid} {draw(st.sampled_from('ABC'))}",
                                              draw(st.sampled_from(PRICES))), at(minute)))

    # orders: 0..4 orders with 1..3 versions; a version may move order_ts or change its items
    for n in range(draw(st.integers(0, 4))):
        order_id = f"o-p-{n:04d}"
        cid = str(draw(st.integers(1, N_CUSTOMERS + 1)))
        order_minute = draw(st.integers(0, SPAN_MINUTES - 1))
        for minute in _distinct_minutes(draw, draw(st.integers(1, 3))):
            if draw(st.booleans()):
                order_minute = draw(st.integers(0, SPAN_MINUTES - 1))
            lines = draw(st.lists(st.tuples(st.integers(1, N_PRODUCTS + 1), st.integers(1, 3)),
                                  min_size=1, max_size=3))
            items = [item(order_id, line, str(pid), qty, draw(st.sampled_from(PRICES)))
                     for line, (pid, qty) in enumerate(lines)]
            place(message("orders", order(order_id, cid, at(order_minute), items,
                                          status=draw(st.sampled_from(STATUSES))), at(minute)))

    # events: 0..5 events with 1..2 versions (the type may be corrected); the customer may never exist
    for n in range(draw(st.integers(0, 5))):
        event_id = f"e-p-{n:05d}"
        cid = str(draw(st.integers(1, N_CUSTOMERS + 1)))
        for minute in _distinct_minutes(draw, draw(st.integers(1, 2))):
            event_minute = draw(st.integers(0, SPAN_MINUTES - 1))
            place(message("events", event(event_id, draw(st.sampled_from(EVENT_TYPES)), cid, at(event_minute)),
                          at(minute)))

    # at-least-once delivery: some messages are sent again, verbatim, in the same or a later batch
    resends = draw(st.lists(st.integers(0, max(len(placed) - 1, 0)), max_size=3)) if placed else []
    for index in resends:
        batch, msg = placed[index]
        placed.append((draw(st.integers(batch, n_batches - 1)),
                       Message(msg.topic, msg.key, msg.value, msg.event_ts)))

    batches: list[list[Message]] = [[] for _ in range(n_batches)]
    for batch, msg in placed:
        batches[batch].append(msg)
    for batch in batches:  # arrival order inside a load is independent of the Kafka timestamps
        order_keys = draw(st.permutations(range(len(batch))))
        batch[:] = [batch[i] for i in order_keys]
    return History(base=base, batches=batches)
