"""Orders and clickstream events derived from a DummyJSON snapshot for one logical hour.

DummyJSON is a static catalogue: it has users, products and carts but no orders, no events and no
timestamps. This module turns a snapshot plus a logical hour into the hour's orders and events, as pure
functions (no I/O, no wall clock, no global random state):

* every random choice comes from `random.Random(str)` seeded with `"{seed}:{YYYYMMDDHH}:..."`. String seeds
  are hashed with SHA-512, so they are stable across processes, machines and PYTHONHASHSEED; only
  `Random.random()` is used, whose sequence CPython keeps stable;
* the same (snapshot, hour, seed, settings) always gives equal outputs; inputs are sorted by id first,
  so the order in which the API listed the records does not matter.

Orders: each cart independently becomes an order in hour H with probability `order_rate` (default 0.09,
~19 of the 208 DummyJSON carts an hour), decided by `Random("{seed}:{H}:orders:{cart_id}")`, so whether
cart 7 orders in hour H does not depend on the other carts. `order_id = o-{H}-{cart_id:04d}`; items are the
cart's lines, `order_item_id = {order_id}-{line:02d}` (a cart can hold the same product twice);
`unit_price` is the line's price, `total_amount = sum(round(quantity * unit_price, 2))`, money as
2-decimal strings (ROUND_HALF_UP); `order_ts` a whole second inside the hour; status weighted
(placed 15 %, paid 55 %, shipped 15 %, delivered 10 %, cancelled 5 %).

Events: exactly `events_per_hour` events (default 300) unless the hour has more orders than that, in
which case it has one `checkout_complete` per order and nothing else:
* one session per order, by the order's customer, ending with `checkout_complete` at the order's
  `order_ts` (carrying its `order_id`). Sessions are as rich as the budget allows: `page_view`,
  `product_view` + `add_to_cart` for each item, `checkout_start`, `checkout_complete`; else
  `checkout_start` + `checkout_complete`; else `checkout_complete` alone;
* the rest of the budget: browsing sessions (1-8 events) of random real users on random real products,
  which may add to cart and start a checkout but never complete one.
Events are sorted by (event_ts, session, step) and numbered: `event_id = e-{H}-{index:05d}`;
`session_id = s-{H}-{index:03d}` numbered by the session's first event. Every timestamp lies inside
`[H, H+1h)`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from shopstream.hours import hour_compact, hour_iso, iso_seconds, to_utc_hour

SCHEMA_VERSION = 1
DEFAULT_SEED = "shopstream-v1"
DEFAULT_ORDER_RATE = 0.09
DEFAULT_EVENTS_PER_HOUR = 300
CURRENCY = "USD"

ORDER_STATUSES: tuple[tuple[str, float], ...] = (
    ("placed", 0.15),
    ("paid", 0.55),
    ("shipped", 0.15),
    ("delivered", 0.10),
    ("cancelled", 0.05),
)
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "checkout_start", "checkout_complete")

_CENT = Decimal("0.01")
_SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class DeriveSettings:
    """Knobs of the derivation; part of its input (changing one changes the derived data)."""

    seed: str = DEFAULT_SEED
    order_rate: float = DEFAULT_ORDER_RATE
    events_per_hour: int = DEFAULT_EVENTS_PER_HOUR

    def __post_init__(self) -> None:
        if not 0.0 <= self.order_rate <= 1.0:
            raise ValueError(f"order_rate must be within [0, 1], got {self.order_rate}")
        if self.events_per_hour < 0:
            raise ValueError(f"events_per_hour must be >= 0, got {self.events_per_hour}")


DEFAULT_SETTINGS = DeriveSettings()


def money(value: Any) -> Decimal:
    """A price/amount as a Decimal rounded half-up to cents (floats go through their shortest repr)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise TypeError(f"not a number: {value!r}")
    return Decimal(str(value)).quantize(_CENT, rounding=ROUND_HALF_UP)


def line_total(quantity: int, unit_price: Decimal | str) -> Decimal:
    return (Decimal(quantity) * Decimal(unit_price)).quantize(_CENT, rounding=ROUND_HALF_UP)


def order_id_for(hour: datetime, cart_id: int) -> str:
    return f"o-{hour_compact(hour)}-{int(cart_id):04d}"


def order_item_id_for(order_id: str, line: int) -> str:
    return f"{order_id}-{line:02d}"


def event_id_for(hour: datetime, index: int) -> str:
    return f"e-{hour_compact(hour)}-{index:05d}"


def session_id_for(hour: datetime, index: int) -> str:
    return f"s-{hour_compact(hour)}-{index:03d}"


def _rng(seed: str, hour: datetime, *parts: object) -> random.Random:
    return random.Random(":".join([seed, hour_compact(hour), *map(str, parts)]))


def _pick(rng: random.Random, seq: Sequence[Any]) -> Any:
    return seq[min(int(rng.random() * len(seq)), len(seq) - 1)]


def _weighted(rng: random.Random, options: Sequence[tuple[str, float]]) -> str:
    x = rng.random() * sum(w for _, w in options)
    for value, weight in options:
        if x < weight:
            return value
        x -= weight
    return options[-1][0]


def _by_id(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(records, key=lambda r: (str(type(r["id"])), r["id"]))


# --------------------------------------------------------------------------------------------- orders


def derive_orders(
    carts: Iterable[Mapping[str, Any]],
    hour: datetime,
    settings: DeriveSettings = DEFAULT_SETTINGS,
) -> list[dict[str, Any]]:
    """The orders placed in `hour`, sorted by (order_ts, order_id). Values follow docs/contracts.md."""
    hour = to_utc_hour(hour)
    hour_text = hour_iso(hour)
    orders: list[dict[str, Any]] = []
    for cart in _by_id(carts):
        lines = cart.get("products") or []
        rng = _rng(settings.seed, hour, "orders", cart["id"])
        if rng.random() >= settings.order_rate or not lines:
            continue
        order_id = order_id_for(hour, cart["id"])
        order_ts = hour + timedelta(seconds=int(rng.random() * _SECONDS_PER_HOUR))
        status = _weighted(rng, ORDER_STATUSES)
        items = []
        total = Decimal("0.00")
        for line_no, line in enumerate(lines):
            unit_price = money(line["price"])
            quantity = int(line["quantity"])
            if quantity <= 0:
                raise ValueError(f"cart {cart['id']} line {line_no}: quantity {quantity} <= 0")
            total += line_total(quantity, unit_price)
            items.append({
                "order_item_id": order_item_id_for(order_id, line_no),
                "line": line_no,
                "product_id": str(line["id"]),
                "quantity": quantity,
                "unit_price": f"{unit_price:.2f}",
            })
        orders.append({
            "order_id": order_id,
            "customer_id": str(cart["userId"]),
            "cart_id": int(cart["id"]),
            "order_ts": iso_seconds(order_ts),
            "status": status,
            "currency": CURRENCY,
            "total_amount": f"{total:.2f}",
            "items": items,
            "logical_hour": hour_text,
            "schema_version": SCHEMA_VERSION,
        })
    orders.sort(key=lambda o: (o["order_ts"], o["order_id"]))
    return orders


# --------------------------------------------------------------------------------------------- events


@dataclass
class _Step:
    ts: datetime
    event_type: str
    customer_id: str
    product_id: str | None = None
    order_id: str | None = None
    page: str = "/"


def _order_session(order: Mapping[str, Any], mode: str, rng: random.Random, hour: datetime) -> list[_Step]:
    customer = order["customer_id"]
    done = _Step(_parse_ts(order["order_ts"]), "checkout_complete", customer,
                 order_id=order["order_id"], page="/checkout/complete")
    if mode == "minimal":
        return [done]
    steps: list[_Step] = []
    if mode == "full":
        steps.append(_Step(hour, "page_view", customer, page="/"))
        for item in order["items"]:
            pid = item["product_id"]
            steps.append(_Step(hour, "product_view", customer, product_id=pid, page=f"/products/{pid}"))
            steps.append(_Step(hour, "add_to_cart", customer, product_id=pid, page=f"/products/{pid}"))
    steps.append(_Step(hour, "checkout_start", customer, page="/checkout"))
    steps.append(done)
    # Walk back from the completion: each earlier step 5-89 s before the next, never before the hour.
    for i in range(len(steps) - 2, -1, -1):
        gap = timedelta(seconds=5 + int(rng.random() * 85))
        steps[i].ts = max(hour, steps[i + 1].ts - gap)
    return steps


def _browsing_session(
    length: int,
    users: Sequence[str],
    products: Sequence[Mapping[str, Any]],
    rng: random.Random,
    hour: datetime,
) -> list[_Step]:
    last = hour + timedelta(seconds=_SECONDS_PER_HOUR - 1)
    customer = _pick(rng, users)
    ts = hour + timedelta(seconds=int(rng.random() * _SECONDS_PER_HOUR))
    first = _pick(rng, products)
    page = "/" if rng.random() < 0.5 else f"/products/category/{first.get('category', 'all')}"
    steps = [_Step(ts, "page_view", customer, page=page)]
    in_cart = False
    while len(steps) < length:
        ts = min(last, ts + timedelta(seconds=3 + int(rng.random() * 118)))
        prev = steps[-1]
        x = rng.random()
        if prev.event_type == "product_view" and x < 0.3:
            steps.append(_Step(ts, "add_to_cart", customer, product_id=prev.product_id, page=prev.page))
            in_cart = True
        elif in_cart and x < 0.45:
            steps.append(_Step(ts, "checkout_start", customer, page="/checkout"))
            in_cart = False  # abandoned checkout: browsing sessions never complete one
        elif x < 0.6:
            p = _pick(rng, products)
            steps.append(_Step(ts, "page_view", customer, page=f"/products/category/{p.get('category', 'all')}"))
        else:
            pid = str(_pick(rng, products)["id"])
            steps.append(_Step(ts, "product_view", customer, product_id=pid, page=f"/products/{pid}"))
    return steps


def _parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def derive_events(
    users: Iterable[Mapping[str, Any]],
    products: Iterable[Mapping[str, Any]],
    orders: Sequence[Mapping[str, Any]],
    hour: datetime,
    settings: DeriveSettings = DEFAULT_SETTINGS,
) -> list[dict[str, Any]]:
    """The hour's clickstream, sorted by event_id (= by time). `orders` are `derive_orders`'s output."""
    hour = to_utc_hour(hour)
    hour_text = hour_iso(hour)
    user_ids = [str(u["id"]) for u in _by_id(users)]
    product_list = _by_id(products)
    budget = settings.events_per_hour
    ordered = sorted(orders, key=lambda o: o["order_id"])
    for o in ordered:
        if o["logical_hour"] != hour_text:
            raise ValueError(f"order {o['order_id']} belongs to {o['logical_hour']}, not {hour_text}")

    full_size = sum(2 * len(o["items"]) + 3 for o in ordered)
    mode = "full" if full_size <= budget else "short" if 2 * len(ordered) <= budget else "minimal"
    sessions: list[tuple[int, list[_Step]]] = []  # (kind, steps); kind breaks ties: orders first
    for o in ordered:
        sessions.append((0, _order_session(o, mode, _rng(settings.seed, hour, "events", o["order_id"]), hour)))
    remaining = budget - sum(len(s) for _, s in sessions)
    if remaining > 0 and user_ids and product_list:
        rng = _rng(settings.seed, hour, "events", "browsing")
        while remaining > 0:
            length = min(remaining, 1 + int(rng.random() * 8))
            sessions.append((1, _browsing_session(length, user_ids, product_list, rng, hour)))
            remaining -= length

    numbered = sorted(range(len(sessions)), key=lambda i: (sessions[i][1][0].ts, sessions[i][0], i))
    flat = []
    for session_no, i in enumerate(numbered):
        for step_no, step in enumerate(sessions[i][1]):
            flat.append((step.ts, session_no, step_no, step))
    flat.sort(key=lambda t: t[:3])
    events = []
    for index, (ts, session_no, _, step) in enumerate(flat):
        events.append({
            "event_id": event_id_for(hour, index),
            "event_type": step.event_type,
            "customer_id": step.customer_id,
            "event_ts": iso_seconds(ts),
            "session_id": session_id_for(hour, session_no),
            "product_id": step.product_id,
            "order_id": step.order_id,
            "page": step.page,
            "logical_hour": hour_text,
            "schema_version": SCHEMA_VERSION,
        })
    return events
