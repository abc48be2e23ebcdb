"""Bad input at every boundary: poison Kafka messages and invalid-but-parseable records, end to end.

One scenario (module fixture `scenario`) runs the real pipeline stages against the real broker and a fresh
PostgreSQL database:

1. hour h1: a clean hour (customers, products, orders, events) -> Kafka -> bronze loader -> dbt build;
2. hour h2: ONE Kafka load that mixes a clean hour (30 orders, 40 events, with the contract's headers) with
   - poison messages (`POISON`: not JSON, wrong encodings, empty, huge, not an object, tombstones, missing /
     invalid keys, jsonb-incompatible strings and numbers, repeated JSON keys, unsupported or malformed
     headers ...) that the bronze loader must quarantine in bronze.raw_events_quarantine with the exact
     reason, and
   - invalid-but-parseable records (`INVALID`: wrong types, unparseable numbers and dates, negative amounts
     and prices, bad e-mails, quantity <= 0, unknown foreign keys, conflicting duplicates, far-future
     timestamps, duplicate e-mails, wrong schema versions, a foreign shape on a topic ...) that pass bronze
     and must land in silver.quarantine with the exact reason;
   then one dbt build, which must pass every test (gold included);
3. the customer the pending records wait for arrives (another load + build): they are admitted.

Each kind is its own test case (parametrised over the shared scenario) and records its figures with the
`fault_report` fixture. "Lost" means a message that is neither stored (bronze / silver) nor quarantined
with its reason; "duplicates" are extra copies of one Kafka coordinate in bronze or of one key in silver.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from shopstream.bronze import poison
from shopstream.bronze.loader import BronzeLoader, LoaderSettings

from tests.faults.harness import assert_build_passed, topic_env
from tests.support.contract_messages import (
    base_hour,
    canonical,
    customer,
    customer_value,
    event,
    hour_messages,
    item,
    order,
    partition_for,
    product,
    product_value,
)
from tests.support.project_env import admin_dsn
from tests.support.throwaway import create_warehouse_and_topics, drop_warehouse_and_topics
from tests.support.warehouse import Warehouse

pytestmark = [pytest.mark.integration, pytest.mark.faults]

PARTITIONS = 3
MAX_VALUE_BYTES = 256 * 1024  # the loader's oversize limit in this scenario (the broker takes 1 MB)
SOURCES = {"customers": "dummyjson:/users", "products": "dummyjson:/products", "orders": "derived:/carts",
           "events": "derived:/users,/products,/carts"}
KEY_FIELD = {"customers": "customer_id", "products": "product_id", "orders": "order_id", "events": "event_id"}


# ------------------------------------------------------------------------------------------ messages


@dataclass
class Msg:
    """One message to produce: value bytes exactly as sent (None = tombstone)."""

    topic: str  # logical topic (customers, products, orders, events)
    key: bytes | None
    value: bytes | None
    ts: datetime
    headers: list[tuple[str, bytes | None]] | None = None
    partition: int | None = None
    # filled in from the delivery report
    kafka_topic: str = ""
    kafka_partition: int = -1
    offset: int = -1

    @property
    def coords(self) -> tuple[str, int, int]:
        return (self.kafka_topic, self.kafka_partition, self.offset)


def contract_headers(topic: str, hour: datetime) -> list[tuple[str, bytes]]:
    return [("source", SOURCES[topic].encode()), ("schema_version", b"1"),
            ("logical_hour", hour.strftime("%Y-%m-%dT%H:00:00Z").encode()),
            ("content_type", b"application/json")]


def msg(topic: str, value: Any, ts: datetime, key: Any = "auto", *, headers: Any = "contract",
        raw: bool = False) -> Msg:
    """A message; `value` a dict (serialised canonically) or, with raw=True, the exact bytes/None."""
    if key == "auto":
        field_name = {"customers": "id", "products": "id", "orders": "order_id", "events": "event_id"}[topic]
        key = str(value[field_name])
    key_bytes = key.encode() if isinstance(key, str) else key
    value_bytes = value if raw else canonical(value).encode()
    hdrs = contract_headers(topic, ts.replace(minute=0, second=0, microsecond=0)) if headers == "contract" \
        else headers
    part = partition_for(key_bytes.decode("utf-8", "replace")) if key_bytes else 0
    return Msg(topic, key_bytes, value_bytes, ts, hdrs, part)


@dataclass
class PoisonCase:
    kind: str
    message: Msg
    reason: str  # bronze.raw_events_quarantine.reason, exactly
    detail_contains: str = ""


@dataclass
class InvalidCase:
    """Parseable records that pass bronze; `expect` = the exact silver.quarantine rows of its bronze row:
    {(source_table, record_key, reason, status)}. `winner`: the case has a version that must win in silver
    (table, key column, key, column, value) - the quarantined/superseded messages are the others."""

    kind: str
    messages: list[Msg]
    expect: set[tuple[str, str, str, str]] = field(default_factory=set)
    absent: tuple[str, str, str] | None = None  # (silver table, key column, key) that must not be in silver
    winner: tuple[str, str, str, str, Any] | None = None
    superseded: int = 0  # messages of the case that end as staging status 'superseded' (kept, not lost)
    admitted_later: tuple[str, str, str] | None = None  # pending, admitted once its parent arrives
    stays_pending: bool = False


def poison_cases(h: datetime) -> list[PoisonCase]:
    ts = h + timedelta(minutes=20)
    hc = f"{h:%Y%m%d%H}"
    good_order = canonical(order(f"o-{hc}-8000", "1", ts, [item(f"o-{hc}-8000", 0, "1", 1, 6.25)])).encode()
    # jsonb would keep only the last of a repeated key: a customer naming two e-mails, an order item naming two
    # products (the second key spelled with an escape)
    two_emails = b'{"email":"first.copy@x.dummyjson.com",' + canonical(customer_value(9201)).encode()[1:]
    two_products = canonical(order(f"o-{hc}-8001", "1", ts, [item(f"o-{hc}-8001", 0, "1", 1, 6.25)])).encode()
    two_products = two_products.replace(b'"product_id":"1"', b'"product_id":"1","\\u0070roduct_id":"2"', 1)
    cases = [
        ("not_json", "orders", b"k-not-json", b"order_id=o-1&status=paid&total=12.50", poison.INVALID_JSON, ""),
        ("truncated_json", "orders", b"k-truncated", good_order[: len(good_order) // 2], poison.INVALID_JSON, ""),
        ("trailing_garbage", "orders", b"k-trailing", good_order + b" }", poison.INVALID_JSON, "Extra data"),
        ("nan_literal", "products", b"k-nan", b'{"id":9,"price":NaN}', poison.INVALID_JSON, ""),
        ("empty_value", "events", b"k-empty", b"", poison.INVALID_JSON, ""),
        ("utf8_bom", "customers", b"k-bom", b'\xef\xbb\xbf{"id":1}', poison.INVALID_JSON, "BOM"),
        ("nested_too_deep", "events", b"k-deep", ('{"a":' * 5000 + "1" + "}" * 5000).encode(),
         poison.INVALID_JSON, "nested deeper"),
        ("latin1_encoding", "customers", b"k-latin1", '{"id":77,"firstName":"Zoë"}'.encode("latin-1"),
         poison.INVALID_UTF8, ""),
        ("utf16_encoding", "customers", b"k-utf16", json.dumps({"id": 78}).encode("utf-16"), poison.INVALID_UTF8, ""),
        ("tombstone", "customers", b"1", None, poison.TOMBSTONE, ""),
        ("json_array", "orders", b"k-array", b'[{"order_id":"o-1"}]', poison.NOT_OBJECT, "list"),
        ("json_string", "events", b"k-string", b'"page_view"', poison.NOT_OBJECT, "str"),
        ("json_number", "products", b"k-number", b"12.5", poison.NOT_OBJECT, "float"),
        ("json_null_literal", "products", b"k-null", b"null", poison.NOT_OBJECT, "NoneType"),
        ("huge_value", "events", b"k-huge", canonical({"event_id": "e-huge", "blob": "x" * (MAX_VALUE_BYTES + 10)})
         .encode(), poison.OVERSIZE, "limit"),
        ("no_key", "orders", None, b'{"order_id":"o-nokey"}', poison.MISSING_KEY, "no key"),
        ("empty_key", "orders", b"", b'{"order_id":"o-emptykey"}', poison.MISSING_KEY, "empty key"),
        ("non_utf8_key", "customers", b"\xff\xfe9", b'{"id":9}', poison.INVALID_KEY, "not UTF-8"),
        ("nul_in_key", "customers", b"9\x00", b'{"id":9}', poison.INVALID_KEY, "NUL"),
        ("nul_escape_in_string", "customers", b"k-nul", b'{"id":9,"firstName":"A\\u0000B"}',
         poison.JSONB_REJECTED, "\\u0000"),
        ("lone_surrogate", "customers", b"k-surrogate", b'{"id":9,"firstName":"\\udc00"}', poison.JSONB_REJECTED,
         "surrogate"),
        ("number_beyond_numeric", "products", b"k-tiny", b'{"id":9,"price":1e-20000}', poison.JSONB_REJECTED,
         "numeric"),
        ("duplicate_json_key", "customers", b"9201", two_emails, f"{poison.DUPLICATE_JSON_KEY}:email",
         'key "email" appears 2 times in the top-level object'),
        ("duplicate_json_key_nested_escaped", "orders", f"o-{hc}-8001".encode(), two_products,
         f"{poison.DUPLICATE_JSON_KEY}:items[0].product_id", "in the object at items[0]"),
    ]
    out = [PoisonCase(kind, msg(topic, value, ts, key, raw=True), reason, detail)
           for kind, topic, key, value, reason, detail in cases]
    ok_value = canonical(customer_value(3)).encode()
    base = contract_headers("customers", h)
    header_cases = [
        ("header_schema_version_2", [*base[:1], ("schema_version", b"2"), *base[2:]],
         poison.UNSUPPORTED_SCHEMA_VERSION, "'2'"),
        ("header_content_type_avro", [*base[:3], ("content_type", b"application/avro")],
         poison.UNSUPPORTED_CONTENT_TYPE, "avro"),
        ("header_not_utf8", [("source", b"\xff\xfedummyjson"), *base[1:]], poison.INVALID_HEADER, "not UTF-8"),
        ("header_repeated_conflicting", [*base, ("schema_version", b"3")], poison.INVALID_HEADER, "repeated"),
        ("header_logical_hour_garbage", [*base[:2], ("logical_hour", b"yesterday"), base[3]],
         poison.INVALID_HEADER, "logical_hour"),
        ("header_without_value", [*base[:1], ("schema_version", None), *base[2:]], poison.INVALID_HEADER,
         "no value"),
    ]
    for kind, headers, reason, detail in header_cases:
        # a perfectly good customer value (customer 3 again, identical): only the headers are wrong
        out.append(PoisonCase(kind, msg("customers", ok_value, ts, "3", raw=True, headers=headers), reason, detail))
    return out


def invalid_cases(h: datetime) -> list[InvalidCase]:
    """Invalid-but-parseable records for hour `h`; they reference customer 1 and product 1 (valid in silver)."""
    hc = f"{h:%Y%m%d%H}"
    ts = h + timedelta(minutes=10)
    far = h + timedelta(days=400)
    c, p = "1", "1"
    price = product_value(1)["price"]
    cases: list[InvalidCase] = []

    def rejected(kind, topic, value, reason, *, key="auto", event_ts=None, items=None, table=None, qkey=None,
                 status="rejected"):
        m = msg(topic, value, event_ts or ts, key)
        table = table or topic
        qkey = qkey or (m.key.decode())
        expect = {(table, qkey, reason, status)} | set(items or ())
        cases.append(InvalidCase(kind, [m], expect, absent=(table, KEY_FIELD[table], qkey)))

    def drop(d, k):
        return {x: y for x, y in d.items() if x != k}

    # --- customers
    rejected("bad_email", "customers", customer(9001, "Bad", "Email", "not-an-email"), "invalid_email")
    rejected("missing_email", "customers", drop(customer(9002, "No", "Email", "x"), "email"), "missing_field:email")
    rejected("missing_id", "customers", drop(customer(9003, "No", "Id", "noid@x.dummyjson.com"), "id"),
             "missing_field:id", key="9003")
    rejected("wrong_type_id", "customers", {**customer(9004, "Obj", "Id", "objid@x.dummyjson.com"), "id": {"v": 9004}},
             "invalid_type:id", key="9004")
    rejected("wrong_type_email", "customers", customer(9005, "Obj", "Mail", {"address": "a@b.com"}),
             "invalid_type:email")
    rejected("duplicate_email_across_customers", "customers",
             customer(9006, "Copy", "Cat", customer_value(1)["email"]), "duplicate_email",
             status="pending")  # waits until customer 1 gives the address up
    rejected("key_mismatch", "customers", customer(9007, "Key", "Mismatch", "key@x.dummyjson.com"), "key_mismatch",
             key="9999", qkey="9007")
    rejected("far_future_kafka_ts_customer", "customers", customer(9008, "Future", "Person", "future@x.dummyjson.com"),
             "future_timestamp:event_ts", event_ts=h + timedelta(days=30))
    rejected("schema_version_2_customer", "customers",
             {**customer(9009, "New", "Shape", "v2@x.dummyjson.com"), "schema_version": 2}, "unsupported_schema_version")
    # --- products
    rejected("unparseable_price", "products", product(9101, "Bad Price", "twelve"), "invalid_number:price")
    rejected("nan_price_string", "products", product(9102, "NaN Price", "NaN"), "invalid_number:price")
    rejected("negative_price", "products", product(9103, "Negative", -3.5), "negative_price")
    rejected("missing_price", "products", drop(product(9104, "No Price", 1), "price"), "missing_field:price")
    rejected("wrong_type_price", "products", product(9105, "Obj Price", {"amount": 1}), "invalid_type:price")
    rejected("unparseable_product_date", "products", product(9106, "Bad Date", 3, created="2026-02-30T10:00:00Z"),
             "invalid_timestamp:meta.createdAt")
    rejected("far_future_product_date", "products",
             product(9107, "Future", 3, created=far.strftime("%Y-%m-%dT%H:%M:%S.000Z")),
             "future_timestamp:meta.createdAt")
    # --- orders (and their items)
    def oid(n):
        return f"o-{hc}-{n}"

    rejected("unparseable_order_date", "orders",
             {**order(oid(9201), c, ts, [item(oid(9201), 0, p, 1, price)]), "order_ts": "2026-13-45T99:00:00Z"},
             "invalid_timestamp:order_ts")
    rejected("unparseable_total", "orders", order(oid(9202), c, ts, [item(oid(9202), 0, p, 1, price)],
                                                  total_amount="12,50"), "invalid_number:total_amount")
    rejected("zero_quantity", "orders", order(oid(9203), c, ts, [item(oid(9203), 0, p, 0, price),
                                                                 item(oid(9203), 1, p, 1, price)]),
             "invalid_items", items={("order_items", f"{oid(9203)}-00", "quantity_not_positive", "rejected")})
    rejected("negative_quantity", "orders", order(oid(9204), c, ts, [item(oid(9204), 0, p, -2, price)],
                                                  total_amount="0.00"),
             "invalid_items", items={("order_items", f"{oid(9204)}-00", "quantity_not_positive", "rejected")})
    rejected("negative_unit_price", "orders", order(oid(9205), c, ts, [item(oid(9205), 0, p, 2, "-1.00")],
                                                    total_amount="0.00"),
             "invalid_items", items={("order_items", f"{oid(9205)}-00", "negative_price", "rejected")})
    rejected("negative_total_amount", "orders", order(oid(9206), c, ts, [item(oid(9206), 0, p, 1, price)],
                                                      total_amount="-5.00"), "negative_amount;total_mismatch")
    rejected("unparseable_quantity", "orders", order(oid(9207), c, ts, [item(oid(9207), 0, p, "two", price)],
                                                     total_amount="1.00"),
             "invalid_items", items={("order_items", f"{oid(9207)}-00", "invalid_number:quantity", "rejected")})
    rejected("wrong_type_quantity", "orders", order(oid(9208), c, ts, [item(oid(9208), 0, p, True, price)],
                                                    total_amount="1.00"),
             "invalid_items", items={("order_items", f"{oid(9208)}-00", "invalid_type:quantity", "rejected")})
    rejected("wrong_type_items", "orders", {**order(oid(9209), c, ts, [item(oid(9209), 0, p, 1, price)]),
                                            "items": {"0": "not a list"}}, "invalid_type:items")
    rejected("unknown_status", "orders", order(oid(9210), c, ts, [item(oid(9210), 0, p, 1, price)],
                                               status="teleported"), "invalid_status")
    rejected("missing_customer_field", "orders",
             drop(order(oid(9211), c, ts, [item(oid(9211), 0, p, 1, price)]), "customer_id"),
             "missing_field:customer_id")
    rejected("total_mismatch", "orders", order(oid(9212), c, ts, [item(oid(9212), 0, p, 2, price)],
                                               total_amount="0.01"), "total_mismatch")
    rejected("far_future_order_ts", "orders", order(oid(9213), c, far, [item(oid(9213), 0, p, 1, price)]),
             "future_timestamp:order_ts", event_ts=ts)
    rejected("schema_version_2_order", "orders", order(oid(9214), c, ts, [item(oid(9214), 0, p, 1, price)],
                                                       schema_version=2), "unsupported_schema_version")
    rejected("missing_key_field_order_id", "orders",
             drop(order(oid(9215), c, ts, [item(oid(9215), 0, p, 1, price)]), "order_id"),
             "missing_field:order_id", key=oid(9215))
    rejected("foreign_shape_on_orders_topic", "orders", customer(9216, "Wrong", "Topic", "wrong@x.dummyjson.com"),
             "missing_field:order_id;missing_field:customer_id;missing_field:order_ts;"
             "missing_field:total_amount;missing_field:status;missing_field:items", key="o-foreign-9216")
    rejected("duplicate_item_id", "orders", order(oid(9217), c, ts, [item(oid(9217), 0, p, 1, price),
                                                                     item(oid(9217), 0, p, 1, price)]),
             "invalid_items", items={("order_items", f"{oid(9217)}-00", "duplicate_item_id", "rejected")})
    # pending: an order whose customer arrives later (admitted then), one whose product never arrives
    o = oid(9218)
    m = msg("orders", order(o, "8888", ts, [item(o, 0, p, 1, price)]), ts)
    cases.append(InvalidCase("unknown_customer_arrives_later", [m], {("orders", o, "pending_customer", "pending")},
                             admitted_later=("orders", "order_id", o)))
    o = oid(9219)
    m = msg("orders", order(o, c, ts, [item(o, 0, "99999", 1, price)]), ts)
    cases.append(InvalidCase("unknown_product_never_arrives", [m], {("orders", o, "pending_product", "pending")},
                             absent=("orders", "order_id", o), stays_pending=True))
    # --- events
    def eid(n):
        return f"e-{hc}-{n}"

    rejected("unknown_event_type", "events", event(eid(99001), "teleport", c, ts), "unknown_event_type")
    rejected("missing_event_id", "events", drop(event(eid(99002), "page_view", c, ts), "event_id"),
             "missing_field:event_id", key=eid(99002))
    rejected("far_future_event_ts", "events", event(eid(99003), "page_view", c, far), "future_timestamp:event_ts")
    rejected("far_future_kafka_ts_event", "events", event(eid(99004), "page_view", c, ts),
             "future_timestamp:kafka_ts", event_ts=far)
    rejected("unparseable_event_ts", "events", {**event(eid(99005), "page_view", c, ts), "event_ts": "yesterday"},
             "invalid_timestamp:event_ts")
    rejected("wrong_type_event_type", "events", {**event(eid(99006), "page_view", c, ts), "event_type": ["page_view"]},
             "invalid_type:event_type")
    rejected("schema_version_2_event", "events", event(eid(99007), "page_view", c, ts, schema_version="2"),
             "unsupported_schema_version")
    e = eid(99008)
    cases.append(InvalidCase("event_unknown_customer_arrives_later", [msg("events", event(e, "page_view", "8888", ts),
                                                                          ts)],
                             {("events", e, "pending_customer", "pending")}, admitted_later=("events", "event_id", e)))
    # conflicting duplicate: same key and timestamp, different content; the later offset wins, the other is kept
    # in the quarantine (not lost)
    e = eid(99009)
    first = msg("events", event(e, "page_view", c, ts, page="/a"), ts)
    second = msg("events", event(e, "page_view", c, ts, page="/b"), ts)
    cases.append(InvalidCase("conflicting_duplicate_same_ts", [first, second],
                             {("events", e, "conflicting_duplicate", "rejected")},
                             winner=("events", "event_id", e, "event_data->>'page'", "/b")))
    # duplicate keys with different timestamps: the latest wins, older versions are superseded (kept in staging)
    newer = msg("products", product_value(4, price=60.0), h + timedelta(minutes=20))
    older = msg("products", product_value(4, price=50.0), h + timedelta(minutes=10))
    cases.append(InvalidCase("duplicate_key_latest_wins_product", [newer, older], set(),
                             winner=("products", "product_id", "4", "price", Decimal("60.00")), superseded=1))
    older_c = msg("customers", {**customer_value(3), "lastName": "Older"}, h + timedelta(minutes=5))
    newer_c = msg("customers", {**customer_value(3), "lastName": "Newer"}, h + timedelta(minutes=15))
    cases.append(InvalidCase("duplicate_key_latest_wins_customer", [older_c, newer_c], set(),
                             winner=("customers", "customer_id", "3", "last_name", "Newer"), superseded=1))
    return cases


# ------------------------------------------------------------------------------------------ plumbing


def produce(bootstrap: str, topics: dict[str, str], messages: list[Msg]) -> None:
    """Produce in list order; fill in each message's coordinates from its delivery report."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5,
                         "message.max.bytes": 2_000_000})
    errors: list[str] = []

    def report(m: Msg):
        def cb(err, km):
            if err is not None:
                errors.append(f"{m.key!r}: {err}")
            else:
                m.kafka_topic, m.kafka_partition, m.offset = km.topic(), km.partition(), km.offset()
        return cb

    for m in messages:
        ts_ms = int(m.ts.timestamp() * 1000)
        producer.produce(topics[m.topic], value=m.value, key=m.key, partition=m.partition, timestamp=ts_ms,
                         headers=m.headers, on_delivery=report(m))
        producer.poll(0)
    assert producer.flush(60) == 0
    assert not errors, errors
    assert all(m.offset >= 0 for m in messages)


@dataclass
class Scenario:
    wh: Warehouse
    topics: dict[str, str]
    poison: list[PoisonCase]
    invalid: list[InvalidCase]
    good: list[Msg]
    load2: Any
    quarantine2: dict[int, set]  # bronze_id -> quarantine rows after the poisoned build
    quarantine3: dict[int, set]  # ... after the late parent arrived

    def bronze_ids(self, m: Msg) -> list[int]:
        return [r[0] for r in self.wh.rows(
            'select bronze_id from bronze.raw_events where topic = %s and "partition" = %s and "offset" = %s',
            *m.coords)]

    def bronze_quarantine(self, m: Msg) -> list[tuple]:
        return self.wh.rows(
            'select reason, detail, record_key, record_value from bronze.raw_events_quarantine '
            'where topic = %s and "partition" = %s and "offset" = %s', *m.coords)


@pytest.fixture(scope="module")
def scenario(postgres_service, kafka_bootstrap, tmp_path_factory):
    name, topics, admin = create_warehouse_and_topics(admin_dsn(), postgres_service["user"], kafka_bootstrap,
                                                      "t_faults", "inputfaults", PARTITIONS)
    params = {**postgres_service, "dbname": name}
    dsn = psycopg.conninfo.make_conninfo(**params)
    wh = Warehouse.open(params, Path(tmp_path_factory.mktemp("dbt-input-faults")))

    def load():
        return BronzeLoader(dsn, {"bootstrap.servers": kafka_bootstrap}, topics=list(topics.values()),
                            settings=LoaderSettings(max_value_bytes=MAX_VALUE_BYTES)).run()

    def build():
        with topic_env(topics):
            run = wh.build()
        assert_build_passed(run)
        assert any(r["unique_id"].startswith("model.shopstream.agg_orders_daily") for r in run.results)
        return run

    def quarantine_by_bronze_id():
        out: dict[int, set] = {}
        for bid, *row in wh.rows("select bronze_id, source_table, record_key, reason, status from silver.quarantine"):
            out.setdefault(bid, set()).add(tuple(row))
        return out

    try:
        h1 = base_hour(days_ago=2, hour=9)
        h2 = h1 + timedelta(hours=1)

        def as_msgs(fixture_messages):
            return [msg(m.topic, m.value, m.event_ts) for m in fixture_messages]

        # 1. a clean hour
        produce(kafka_bootstrap, topics, as_msgs(hour_messages(h1)))
        first = load()
        assert first.totals()["quarantined"] == 0
        build()

        # 2. one load mixing a clean hour with every kind of bad input
        good = as_msgs(hour_messages(h2, n_orders=30, n_events=40))
        poisons = poison_cases(h2)
        invalid = invalid_cases(h2)
        bad: list[Msg] = [pc.message for pc in poisons] + [m for ic in invalid for m in ic.messages]
        mixed: list[Msg] = []
        for i in range(max(len(good), len(bad))):  # interleaved: bad input sits between good messages
            if i < len(good):
                mixed.append(good[i])
            if i < len(bad):
                mixed.append(bad[i])
        produce(kafka_bootstrap, topics, mixed)
        load2 = load()
        build()
        q2 = quarantine_by_bronze_id()

        # 3. the customer the pending order and event wait for arrives
        produce(kafka_bootstrap, topics, [msg("customers", customer_value(8888), h2 + timedelta(minutes=50))])
        load()
        build()
        q3 = quarantine_by_bronze_id()
        yield Scenario(wh, topics, poisons, invalid, good, load2, q2, q3)
    finally:
        wh.close()
        drop_warehouse_and_topics(admin_dsn(), name, admin, topics)


# ------------------------------------------------------------------------------------------ poison


def _poison_kinds() -> list[str]:
    return [c.kind for c in poison_cases(base_hour())]


def test_at_least_ten_kinds_of_each():
    assert len(set(_poison_kinds())) >= 10
    assert len({c.reason for c in poison_cases(base_hour())}) >= 10  # ... and 10 distinct bronze reasons
    assert len({c.kind for c in invalid_cases(base_hour())}) >= 10


@pytest.mark.parametrize("kind", _poison_kinds())
def test_poison_message_is_quarantined_in_bronze(scenario, fault_report, kind):
    case = next(c for c in scenario.poison if c.kind == kind)
    m = case.message
    stored = scenario.bronze_ids(m)
    quarantined = scenario.bronze_quarantine(m)
    lost = 1 - min(1, len(stored) + len(quarantined))
    duplicates = max(0, len(stored) + len(quarantined) - 1)
    fault_report.record(f"poison: {kind}", messages_in=1, rows_out=len(stored), duplicates=duplicates, lost=lost,
                        quarantined=len(quarantined), note=f"bronze quarantine reason {case.reason}")
    assert (lost, duplicates) == (0, 0)
    assert stored == [], "poison reached bronze.raw_events"
    [(reason, detail, key, value)] = quarantined
    assert reason == case.reason, (kind, reason, detail)
    assert detail and case.detail_contains in detail, (kind, detail)
    # raw bytes kept as received, for reprocessing
    assert (None if key is None else bytes(key)) == m.key
    assert (None if value is None else bytes(value)) == m.value


def test_loader_counts_match_the_poison_set(scenario):
    by_reason = Counter(c.reason for c in scenario.poison)
    got: Counter = Counter()
    for counts in scenario.load2.topics.values():
        got.update(counts.quarantined_by_reason)
    assert got == by_reason
    assert scenario.load2.totals()["quarantined"] == len(scenario.poison)
    assert scenario.load2.totals()["remaining_lag"] == 0


# ------------------------------------------------------------------------------------------ invalid records


def _invalid_kinds() -> list[str]:
    return [c.kind for c in invalid_cases(base_hour())]


@pytest.mark.parametrize("kind", _invalid_kinds())
def test_invalid_record_is_quarantined_in_silver(scenario, fault_report, kind):
    case = next(c for c in scenario.invalid if c.kind == kind)
    wh = scenario.wh
    bronze = [scenario.bronze_ids(m) for m in case.messages]
    duplicates = sum(max(0, len(ids) - 1) for ids in bronze)
    assert all(len(ids) == 1 for ids in bronze), ("each message is in bronze exactly once", bronze)
    ids = [ids[0] for ids in bronze]
    staged = {}
    for bid in ids:
        for table in ("stg_customers", "stg_products", "stg_orders", "stg_events"):
            for status, reason in wh.rows(f"select _status, _reject_reason from staging.{table} "
                                          "where _bronze_id = %s", bid):
                staged.setdefault(bid, []).append((status, reason))
    assert all(len(staged.get(bid, [])) == 1 for bid in ids), ("staged exactly once", staged)

    q2 = set().union(*(scenario.quarantine2.get(bid, set()) for bid in ids))
    q3 = set().union(*(scenario.quarantine3.get(bid, set()) for bid in ids))
    assert q2 == case.expect, (kind, q2)  # the exact reason(s), status and key

    rows_out = 0
    accounted = len(q2) > 0
    if case.absent:
        table, column, key = case.absent
        n = wh.scalar(f"select count(*) from silver.{table} where {column} = %s", key)
        assert n == 0, f"{kind}: reached silver.{table}"
        assert q3 == case.expect, "a rejected (or never-satisfied pending) record stays in the quarantine"
    if case.stays_pending:
        assert {r[3] for r in q3} == {"pending"}
    if case.admitted_later:
        table, column, key = case.admitted_later
        rows_out = wh.scalar(f"select count(*) from silver.{table} where {column} = %s", key)
        assert rows_out == 1, f"{kind}: the pending record was not admitted once its parent arrived"
        assert q3 == set(), "admitted: it left the quarantine"
        gold = {"orders": ("gold.fct_orders", "order_id"), "events": ("silver.events", "event_id")}[table]
        assert wh.scalar(f"select count(*) from {gold[0]} where {gold[1]} = %s", key) == 1
        duplicates += max(0, rows_out - 1)
    if case.winner:
        table, column, key, expr, value = case.winner
        rows = wh.rows(f"select {expr} from silver.{table} where {column} = %s", key)
        rows_out = len(rows)
        duplicates += max(0, len(rows) - 1)
        assert rows == [(value,)], (kind, rows)
        # the losing versions are kept: superseded in staging, or rejected in the quarantine
        statuses = Counter(s for v in staged.values() for s, _ in v)
        assert statuses["superseded"] == case.superseded, statuses
        assert statuses["admitted"] == 1, statuses
        assert statuses["superseded"] + statuses["rejected"] == len(case.messages) - 1, statuses
        accounted = True
    lost = 0 if accounted else len(case.messages)
    reasons = sorted({r[2] for r in q2}) or ["superseded (latest wins)"]
    fault_report.record(f"invalid: {kind}", messages_in=len(case.messages), rows_out=rows_out, duplicates=duplicates,
                        lost=lost, quarantined=len({bid for bid in ids if scenario.quarantine2.get(bid)}),
                        note="; ".join(reasons))
    assert (lost, duplicates) == (0, 0)


# ------------------------------------------------------------------------------------------ the good ones


def test_good_messages_in_the_poisoned_batch_all_reach_bronze_silver_and_gold(scenario, fault_report):
    wh = scenario.wh
    good = scenario.good
    copies = [len(scenario.bronze_ids(m)) for m in good]
    bronze_lost, bronze_dup = copies.count(0), sum(max(0, n - 1) for n in copies)
    # every good message of the batch was stored byte-for-byte (canonical JSON) and staged once
    stored = {(t, p, o): v for t, p, o, v in wh.rows(
        'select topic, "partition", "offset", record_value::text from bronze.raw_events')}
    for m in good:
        assert json.loads(stored[m.coords]) == json.loads(m.value)

    values = [json.loads(m.value) for m in good]
    expect = {
        "customers": {str(v["id"]) for m, v in zip(good, values, strict=True) if m.topic == "customers"},
        "products": {str(v["id"]) for m, v in zip(good, values, strict=True) if m.topic == "products"},
        "orders": {v["order_id"] for m, v in zip(good, values, strict=True) if m.topic == "orders"},
        "events": {v["event_id"] for m, v in zip(good, values, strict=True) if m.topic == "events"},
    }
    items = {i["order_item_id"] for m, v in zip(good, values, strict=True) if m.topic == "orders" for i in v["items"]}
    missing, dups, rows_out = {}, {}, 0
    for table, keys in expect.items():
        col = KEY_FIELD[table]
        got = Counter(r[0] for r in wh.rows(f"select {col} from silver.{table} where {col} = any(%s)", list(keys)))
        missing[table] = keys - set(got)
        dups[table] = sum(n - 1 for n in got.values())
        rows_out += len(got)
    got_items = Counter(r[0] for r in wh.rows(
        "select order_item_id from silver.order_items where order_item_id = any(%s)", list(items)))
    missing["order_items"] = items - set(got_items)
    dups["order_items"] = sum(n - 1 for n in got_items.values())
    # gold: the facts and dimensions have every good key, and the daily aggregates add up to silver
    gold_missing = {
        "dim_customers": expect["customers"] - {r[0] for r in wh.rows("select customer_id from gold.dim_customers")},
        "dim_products": expect["products"] - {r[0] for r in wh.rows("select product_id from gold.dim_products")},
        "fct_orders": expect["orders"] - {r[0] for r in wh.rows("select order_id from gold.fct_orders")},
        "fct_order_items": items - {r[0] for r in wh.rows("select order_item_id from gold.fct_order_items")},
    }
    assert wh.rows("select sum(orders), sum(revenue) from gold.agg_orders_daily") == wh.rows(
        "select count(*)::bigint, sum(total_amount) from silver.orders")
    assert wh.scalar("select sum(events) from gold.agg_events_daily") == wh.scalar("select count(*) from silver.events")
    lost = bronze_lost + sum(len(v) for v in missing.values()) + sum(len(v) for v in gold_missing.values())
    duplicates = bronze_dup + sum(dups.values())
    fault_report.record("input: good messages in the poisoned batch", messages_in=len(good), rows_out=rows_out,
                        duplicates=duplicates, lost=lost, quarantined=0,
                        note=f"{len(scenario.poison)} poison + {sum(len(c.messages) for c in scenario.invalid)} "
                             "invalid messages in the same load; dbt build (gold tests) passed")
    assert {k: v for k, v in missing.items() if v} == {}
    assert {k: v for k, v in gold_missing.items() if v} == {}
    assert (lost, duplicates) == (0, 0)


def test_whole_scenario_accounts_for_every_message(scenario):
    """Every message produced in the poisoned load is in exactly one place: bronze or bronze's quarantine."""
    wh = scenario.wh
    n_raw = wh.scalar("select count(*) from bronze.raw_events where topic = any(%s)", list(scenario.topics.values()))
    n_q = wh.scalar("select count(*) from bronze.raw_events_quarantine")
    produced_total = sum(hi for hi in wh.rows(
        'select sum(next_offset) from bronze.consumer_offsets')[0])
    assert n_raw + n_q == produced_total
    assert wh.rows("select source_table, reason from silver.quarantine where status = 'pending' order by 1") == [
        ("customers", "duplicate_email"),  # customer 9006 waits for customer 1's address
        ("orders", "pending_product")]  # product 99999 never comes


# ------------------------------------------------------------------------------------------ classification (pure)


@pytest.mark.parametrize("headers,reason", [
    (None, None),
    ([], None),
    ([("traceparent", b"\xff\xfe")], None),  # headers outside the contract are ignored
    ([("schema_version", b"1"), ("content_type", b"application/json; charset=utf-8")], None),
    ([("schema_version", b" 1 ")], None),
    ([("schema_version", b"1"), ("schema_version", b"1")], None),  # repeated, agreeing
    ([("logical_hour", b"2026-11-27T13:00:00Z")], None),
    ([("schema_version", b"2")], poison.UNSUPPORTED_SCHEMA_VERSION),
    ([("schema_version", b"")], poison.INVALID_HEADER),
    ([("content_type", b"text/csv")], poison.UNSUPPORTED_CONTENT_TYPE),
    ([("logical_hour", b"2026-11-27T13:30:00Z")], poison.INVALID_HEADER),
    ([("source", b"\xc3\x28")], poison.INVALID_HEADER),
    ([("source", None)], poison.INVALID_HEADER),
    ([("schema_version", b"1"), ("schema_version", b"2")], poison.INVALID_HEADER),
])
def test_header_classification(headers, reason):
    check = poison.make_classifier()
    got = check(b"k", b'{"a":1}', 1, 1_748_782_800_000, headers)
    assert (None if got is None else got[0]) == reason
    full = poison.classify(b"k", b'{"a":1}', 1, 1_748_782_800_000, headers=headers)
    assert (None if full is None else full[0]) == reason
    # a tombstone stays a tombstone whatever its headers say
    assert check(b"k", None, 1, 1_748_782_800_000, headers)[0] == poison.TOMBSTONE
