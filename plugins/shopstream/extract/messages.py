"""Kafka messages per docs/contracts.md, built as pure functions of (snapshot, logical hour, settings).

A message is a `KafkaMessage(topic, key, value, timestamp_ms, headers)`: key = the entity id as UTF-8,
value = canonical JSON (`sort_keys`, compact separators, `ensure_ascii=False`, UTF-8), timestamp =
CreateTime in ms (customers/products: the logical hour; orders: `order_ts`; events: `event_ts`), headers
`source`, `schema_version`, `logical_hour`, `content_type`, in that order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shopstream.extract.derive import (
    DEFAULT_SETTINGS,
    SCHEMA_VERSION,
    DeriveSettings,
    derive_events,
    derive_orders,
)
from shopstream.extract.pii import scrub_user
from shopstream.hours import HOUR, epoch_ms, hour_iso, to_utc_hour
from shopstream.topics import TOPICS

#: DummyJSON resources each topic needs (what its task fetches).
RESOURCES: dict[str, tuple[str, ...]] = {
    "customers": ("users",),
    "products": ("products",),
    "orders": ("carts",),
    "events": ("users", "products", "carts"),
}

SOURCES: dict[str, str] = {
    "customers": "dummyjson:/users",
    "products": "dummyjson:/products",
    "orders": "derived:/carts",
    "events": "derived:/users,/products,/carts",
}

CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class KafkaMessage:
    topic: str
    key: bytes
    value: bytes
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class Snapshot:
    """The DummyJSON collections one task fetched (only those it needs)."""

    users: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    products: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    carts: Sequence[Mapping[str, Any]] = field(default_factory=tuple)


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def headers_for(base_topic: str, hour: datetime) -> tuple[tuple[str, bytes], ...]:
    return (
        ("source", SOURCES[base_topic].encode()),
        ("schema_version", str(SCHEMA_VERSION).encode()),
        ("logical_hour", hour_iso(hour).encode()),
        ("content_type", CONTENT_TYPE.encode()),
    )


def _message(topic: str, key: str, value: Mapping[str, Any], ts_ms: int, hour: datetime,
             headers: tuple[tuple[str, bytes], ...]) -> KafkaMessage:
    start = epoch_ms(hour)
    if not start <= ts_ms < start + 3_600_000:
        raise ValueError(f"{topic} {key}: timestamp {ts_ms} outside the logical hour {hour_iso(hour)}")
    return KafkaMessage(topic, key.encode("utf-8"), canonical_json(value), ts_ms, headers)


def _ts_ms(text: str) -> int:
    return epoch_ms(datetime.fromisoformat(text.replace("Z", "+00:00")))


def _by_id(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(records, key=lambda r: (str(type(r["id"])), r["id"]))


def customer_messages(users: Iterable[Mapping[str, Any]], hour: datetime, topic: str = "customers"
                      ) -> list[KafkaMessage]:
    hour = to_utc_hour(hour)
    headers, ts = headers_for("customers", hour), epoch_ms(hour)
    return [_message(topic, str(u["id"]), scrub_user(u), ts, hour, headers) for u in _by_id(users)]


def product_messages(products: Iterable[Mapping[str, Any]], hour: datetime, topic: str = "products"
                     ) -> list[KafkaMessage]:
    hour = to_utc_hour(hour)
    headers, ts = headers_for("products", hour), epoch_ms(hour)
    return [_message(topic, str(p["id"]), p, ts, hour, headers) for p in _by_id(products)]


def order_messages(orders: Iterable[Mapping[str, Any]], hour: datetime, topic: str = "orders"
                   ) -> list[KafkaMessage]:
    hour = to_utc_hour(hour)
    headers = headers_for("orders", hour)
    return [_message(topic, o["order_id"], o, _ts_ms(o["order_ts"]), hour, headers) for o in orders]


def event_messages(events: Iterable[Mapping[str, Any]], hour: datetime, topic: str = "events"
                   ) -> list[KafkaMessage]:
    hour = to_utc_hour(hour)
    headers = headers_for("events", hour)
    return [_message(topic, e["event_id"], e, _ts_ms(e["event_ts"]), hour, headers) for e in events]


def build_messages(
    base_topic: str,
    snapshot: Snapshot,
    hour: datetime,
    settings: DeriveSettings = DEFAULT_SETTINGS,
    topic: str | None = None,
) -> list[KafkaMessage]:
    """All messages of one topic for `hour`. `topic` overrides the topic name written into the messages."""
    name = topic or base_topic
    if base_topic == "customers":
        return customer_messages(snapshot.users, hour, name)
    if base_topic == "products":
        return product_messages(snapshot.products, hour, name)
    if base_topic == "orders":
        return order_messages(derive_orders(snapshot.carts, hour, settings), hour, name)
    if base_topic == "events":
        orders = derive_orders(snapshot.carts, hour, settings)
        return event_messages(derive_events(snapshot.users, snapshot.products, orders, hour, settings),
                              hour, name)
    raise ValueError(f"unknown topic {base_topic!r}; expected one of {TOPICS}")


def hour_bounds_ms(hour: datetime) -> tuple[int, int]:
    """[start, end) of the logical hour in epoch ms."""
    hour = to_utc_hour(hour)
    return epoch_ms(hour), epoch_ms(hour + HOUR)
