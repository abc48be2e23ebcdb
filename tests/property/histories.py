"""Random histories of the four topics, for the property tests: nobody chose these inputs.

A history is a list of batches; each batch is the bronze rows one load adds before one `dbt build`. The
generator draws a small universe (a few customers, products, orders and events, each with one or more
versions, following docs/contracts.md) so that keys collide often, then scatters the versions over the
batches:

- versions arrive in any order relative to their Kafka timestamps (late, older versions included);
- ties in event time: versions of one order may share their Kafka timestamp with different statuses (the
  lifecycle decides);
- a parent may arrive after its children (pending, admitted later) or never (customer 5 and product 4 are
  referenced but never published): a newer version waiting for a parent never hides the older admissible one;
- an order's later version may change its status, move its order_ts across midnight, or change its items
  (drop, add, change quantities) - items of the winning version only must be in silver and gold;
- whole messages are re-sent verbatim in the same or a later batch (at-least-once delivery);
- customers change names and e-mail addresses, written with case variants and blanks around them; an
  address may be one that another customer holds, held before, or claims too (a shared address), so claims
  meet, wait and are granted later; a group of customers may swap e-mails (a cycle) or pass them along (a
  chain), their messages spread over any batches;
- some versions carry a Kafka timestamp (or order_ts / event_ts) far in the past (1970) or the future:
  rejected by the timestamp window;
- conflicting duplicates (all four topics): a version's twin - same key and Kafka timestamp (an
  order's: also its status), other content (an order's customer may be one that never comes, a customer's
  address may be taken, so either twin may be pending) - on any partition, in any batch: the higher (partition, offset) wins, whichever
  batch brings it (docs/contracts.md, "Ties").

Cases left out on purpose, because their result depends on how the history is cut into batches (by design,
so no oracle can predict it from the messages alone):
- batches with reject_rate_min_rows (20) rows of one topic or more: the reject-rate gate rejects a batch by
  its share of rejects, which a full refresh (one batch) overrides on purpose (docs/runbook.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from tests.e2e.oracle import ORDER_STATUSES
from tests.support.contract_messages import (
    PARTITIONS,
    Message,
    customer,
    event,
    item,
    message,
    order,
    partition_for,
    product,
)

FIRST_NAMES = ("Ada", "Grace", "Linus", "Barbara")
PRICES = ("4.99", "12.50", "100.00", "0.10")
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "checkout_start", "checkout_complete")

N_CUSTOMERS = 4  # customer ids 1..N; id N+1 is referenced but never published
N_PRODUCTS = 3  # product ids 1..N; id N+1 is referenced but never published
SPAN_MINUTES = 48 * 60  # business and Kafka timestamps fall in the two days after the base hour
REJECT_RATE_MIN_ROWS = 20  # dbt var reject_rate_min_rows: smaller batches never trip the gate
FAR_PAST = datetime(1970, 1, 1, 0, 0, tzinfo=UTC)


@dataclass
class History:
    """batches[i] = the messages of load i, in arrival (offset) order."""

    base: datetime
    batches: list[list[Message]]

    def messages(self) -> list[Message]:
        return [m for batch in self.batches for m in batch]

    def describe(self) -> str:
        """One line per message, for a failing example's report."""
        lines = []
        for n, batch in enumerate(self.batches):
            for m in batch:
                partition = m.partition if m.partition is not None else partition_for(m.key or "")
                lines.append(f"batch {n} {m.topic:9} key={m.key} p={partition} kafka_ts={m.event_ts:%Y-%m-%d %H:%M}"
                             f" {m.value}")
        return "\n".join(lines)


def _distinct_minutes(draw, count: int) -> list[int]:
    return draw(st.lists(st.integers(0, SPAN_MINUTES - 1), min_size=count, max_size=count, unique=True))


def _spelled(draw, email: str) -> str:
    """The address as a producer may write it: case variants and blanks (staging trims and lower-cases)."""
    variant = draw(st.sampled_from(("as is", "upper", "title", "blanks")))
    return {"as is": email, "upper": email.upper(), "title": email.title(), "blanks": f"  {email} "}[variant]


@st.composite
def histories(draw, max_batches: int = 4) -> History:
    from tests.support.contract_messages import base_hour

    base = base_hour(days_ago=4, hour=22)  # the spans cross midnight twice, and stay in the past
    far_future = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=400)
    n_batches = draw(st.integers(1, max_batches))
    placed: list[tuple[int, Message]] = []  # (batch, message)

    def at(minute: int) -> datetime:
        return base + timedelta(minutes=minute)

    def out_of_window(ts: datetime) -> datetime:
        """Now and then a timestamp outside the valid window (rejected with past_/future_timestamp)."""
        return draw(st.sampled_from((ts,) * 8 + (FAR_PAST, far_future)))

    def place(msg: Message, batch: int | None = None) -> None:
        placed.append((draw(st.integers(0, n_batches - 1)) if batch is None else batch, msg))

    # customers: 0..3 versions each (0 = never published); names and e-mails change between versions; an
    # address is the customer's own c<id>.e<n>, another customer's c<other>.e0, or a shared one: claims meet
    latest_email: dict[int, str] = {}
    for cid in range(1, N_CUSTOMERS + 1):
        n_versions = draw(st.integers(0, 3))
        for minute in sorted(_distinct_minutes(draw, n_versions)):
            email = draw(st.sampled_from((
                f"c{cid}.e0@example.com", f"c{cid}.e1@example.com", f"c{cid}.e2@example.com",  # may go back
                f"c{draw(st.integers(1, N_CUSTOMERS))}.e0@example.com", "shared@example.com")))
            latest_email[cid] = email
            place(message("customers", customer(cid, draw(st.sampled_from(FIRST_NAMES)), f"Last{cid}",
                                                 _spelled(draw, email)), out_of_window(at(minute))))

    # an e-mail swap (cycle) or chain among 2-3 published customers as their latest versions, in any batches
    if len(latest_email) >= 2 and draw(st.booleans()):
        group = draw(st.lists(st.sampled_from(sorted(latest_email)), min_size=2, max_size=3, unique=True))
        cycle = draw(st.booleans())
        for n, cid in enumerate(group):
            if n + 1 < len(group):
                email = latest_email[group[n + 1]]
            else:
                email = latest_email[group[0]] if cycle else f"c{cid}.e9@example.com"
            place(message("customers", customer(cid, "Swapped", f"Last{cid}", _spelled(draw, email)),
                          at(SPAN_MINUTES + n)))

    # products: 0..2 versions each; the price and title change
    for pid in range(1, N_PRODUCTS + 1):
        n_versions = draw(st.integers(0, 2))
        for minute in _distinct_minutes(draw, n_versions):
            place(message("products", product(pid, f"Product {pid} {draw(st.sampled_from('ABC'))}",
                                              draw(st.sampled_from(PRICES))), out_of_window(at(minute))))

    # orders: 0..4 orders with 1..3 versions; a version may move order_ts (across midnight, or out of the
    # window), change its status or its items; versions may share a Kafka timestamp (not a status)
    for n in range(draw(st.integers(0, 4))):
        order_id = f"o-p-{n:04d}"
        cid = str(draw(st.integers(1, N_CUSTOMERS + 1)))
        order_minute = draw(st.integers(0, SPAN_MINUTES - 1))
        kafka_minutes = _distinct_minutes(draw, 2)
        versions = draw(st.lists(st.tuples(st.sampled_from(kafka_minutes), st.sampled_from(ORDER_STATUSES)),
                                 min_size=1, max_size=3, unique=True))
        for minute, status in versions:
            if draw(st.booleans()):
                order_minute = draw(st.integers(0, SPAN_MINUTES - 1))
            lines = draw(st.lists(st.tuples(st.integers(1, N_PRODUCTS + 1), st.integers(1, 3)),
                                  min_size=1, max_size=3))
            items = [item(order_id, line, str(pid), qty, draw(st.sampled_from(PRICES)))
                     for line, (pid, qty) in enumerate(lines)]
            place(message("orders", order(order_id, cid, out_of_window(at(order_minute)), items, status=status),
                          out_of_window(at(minute))))

    # events: 0..5 events with 1..2 versions (the type may be corrected); the customer may never exist
    for n in range(draw(st.integers(0, 5))):
        event_id = f"e-p-{n:05d}"
        cid = str(draw(st.integers(1, N_CUSTOMERS + 1)))
        for minute in _distinct_minutes(draw, draw(st.integers(1, 2))):
            event_minute = draw(st.integers(0, SPAN_MINUTES - 1))
            place(message("events", event(event_id, draw(st.sampled_from(EVENT_TYPES)), cid,
                                          out_of_window(at(event_minute))), out_of_window(at(minute))))

    # conflicting duplicates: up to 3 twins of any version (same key, Kafka timestamp and
    # order status; the other fields drawn again, so a twin may also be identical), on any partition
    def twin(msg: Message) -> dict:
        v = msg.value
        if msg.topic == "customers":  # another name or address (its own, another customer's, the shared one)
            email = draw(st.sampled_from((f"c{v['id']}.e0@example.com", f"c{v['id']}.e1@example.com",
                                          f"c{draw(st.integers(1, N_CUSTOMERS))}.e0@example.com",
                                          "shared@example.com")))
            return customer(v["id"], draw(st.sampled_from(FIRST_NAMES)), v["lastName"], _spelled(draw, email))
        if msg.topic == "products":
            return product(v["id"], f"Product {v['id']} {draw(st.sampled_from('ABC'))}", draw(st.sampled_from(PRICES)))
        cid = str(draw(st.integers(1, N_CUSTOMERS + 1)))
        business_ts = datetime.fromisoformat(v["order_ts" if msg.topic == "orders" else "event_ts"].replace("Z", "+00:00"))
        if draw(st.booleans()):
            business_ts = at(draw(st.integers(0, SPAN_MINUTES - 1)))
        if msg.topic == "events":
            return event(v["event_id"], draw(st.sampled_from(EVENT_TYPES)), cid, business_ts)
        lines = draw(st.lists(st.tuples(st.integers(1, N_PRODUCTS + 1), st.integers(1, 3)), min_size=1, max_size=2))
        items = [item(v["order_id"], line, str(pid), qty, draw(st.sampled_from(PRICES)))
                 for line, (pid, qty) in enumerate(lines)]
        return order(v["order_id"], cid, business_ts, items, status=v["status"])

    originals = [msg for _, msg in placed]
    for msg in draw(st.lists(st.sampled_from(originals), max_size=3)) if originals else []:
        place(Message(msg.topic, msg.key, twin(msg), msg.event_ts, partition=draw(st.integers(0, PARTITIONS - 1))))

    # at-least-once delivery: some messages are sent again, verbatim, in the same or a later batch
    resends = draw(st.lists(st.integers(0, max(len(placed) - 1, 0)), max_size=3)) if placed else []
    for index in resends:
        batch, msg = placed[index]
        placed.append((draw(st.integers(batch, n_batches - 1)),
                       Message(msg.topic, msg.key, msg.value, msg.event_ts, partition=msg.partition)))

    batches: list[list[Message]] = [[] for _ in range(n_batches)]
    for batch, msg in placed:
        batches[batch].append(msg)
    for batch in batches:  # arrival order inside a load is independent of the Kafka timestamps
        order_keys = draw(st.permutations(range(len(batch))))
        batch[:] = [batch[i] for i in order_keys]
        for topic in {m.topic for m in batch}:
            assert sum(m.topic == topic for m in batch) < REJECT_RATE_MIN_ROWS, "the gate would decide"
    return History(base=base, batches=batches)
