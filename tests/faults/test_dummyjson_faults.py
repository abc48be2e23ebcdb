"""A misbehaving DummyJSON API: 429s, 5xx, timeouts, dropped connections, truncated and wrong-envelope bodies.

The real extract code (`extract_topic`: DummyJSONClient -> build_messages -> confluent-kafka producer)
runs against the local DummyJSON server with deterministic fault injection and the real Kafka broker:

- a transient fault is retried within the budget and the hour is published exactly once (the topic holds
  exactly the messages of a clean run, byte for byte);
- a persistent fault ends in one clear error that names the URL, the page (skip/limit) and the cause, and
  nothing at all is published: the extract fetches every page of every collection it needs before it
  produces a single message (a fault on the *last* page of the *last* collection proves it);
- end to end through Kafka, the bronze loader and dbt: the retry of a failed hour publishes it once, and
  re-publishing an hour (a retried task whose first attempt did publish, fully or half) only appends
  byte-identical keyed messages, which bronze stores once per Kafka offset and silver deduplicates by key
  (identical copies are `superseded`, never `conflicting_duplicate`), so silver and gold equal a clean run.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from shopstream import faults
from shopstream.bronze.loader import BronzeLoader, LoaderSettings
from shopstream.dummyjson.client import (
    DummyJSONClient,
    DummyJSONError,
    HTTPStatusError,
    InconsistentDataError,
    RetryBudgetExhausted,
)
from shopstream.dummyjson_stub.catalog import generate_catalog, has_snapshot, load_snapshot, snapshot_dir
from shopstream.dummyjson_stub.server import DummyJSONServer
from shopstream.extract.messages import RESOURCES, Snapshot, build_messages
from shopstream.extract.tasks import extract_topic
from shopstream.topics import TOPICS

from tests.faults.harness import assert_build_passed, topic_env
from tests.support.warehouse import Warehouse

pytestmark = [pytest.mark.integration, pytest.mark.faults]

BASES = TOPICS
# A recent past hour (no value counts as "far in the future"; the broker keeps any timestamp).
HOUR = (datetime.now(UTC) - timedelta(days=2)).replace(hour=14, minute=0, second=0, microsecond=0)
PAGE = 100


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def catalog():
    folder = snapshot_dir()
    return load_snapshot(folder) if has_snapshot(folder) else generate_catalog()


@pytest.fixture(scope="module")
def server(catalog):
    srv = DummyJSONServer(catalog, rate_limit=None)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def api(server):
    """The server with no faults and fresh counters; faults set by the test are cleared afterwards."""
    server.clear_faults()
    server.reset()
    yield server
    server.clear_faults()


def make_client(url: str, **overrides: Any) -> DummyJSONClient:
    """Small budgets so a persistent fault fails in seconds (the production defaults are minutes)."""
    settings = dict(page_size=PAGE, timeout=(2.0, 0.6), max_attempts=4, time_budget=20.0, backoff_base=0.05,
                    backoff_cap=0.2, max_restarts=2, rate_limit=None)
    settings.update(overrides)
    return DummyJSONClient(url, **settings)


def expected_messages(catalog, base: str, topic: str, hour: datetime = HOUR):
    snap = Snapshot(**{r: getattr(catalog, r) for r in RESOURCES[base]})
    return build_messages(base, snap, hour, topic=topic)


def read_topic(bootstrap: str, topic: str) -> list[tuple[int, int, bytes, bytes, int]]:
    """Every message of `topic`: (partition, offset, key, value, timestamp ms), from offset 0 to the end."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "faults-reader", "enable.auto.commit": False,
                         "enable.partition.eof": True})
    try:
        parts = sorted(consumer.list_topics(topic, timeout=15).topics[topic].partitions)
        highs = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1] for p in parts}
        pending = {p for p in parts if highs[p] > 0}
        consumer.assign([TopicPartition(topic, p, 0) for p in pending])
        out = []
        deadline = time.monotonic() + 60
        while pending:
            assert time.monotonic() < deadline, f"timed out reading {topic}"
            for m in consumer.consume(1000, 0.5):
                if m.error() is not None:
                    continue
                out.append((m.partition(), m.offset(), m.key(), m.value(), m.timestamp()[1]))
                if m.offset() + 1 >= highs[m.partition()]:
                    pending.discard(m.partition())
        return out
    finally:
        consumer.close()


def high_watermarks(bootstrap: str, topic: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "faults-reader"})
    try:
        parts = consumer.list_topics(topic, timeout=15).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1] for p in parts)
    finally:
        consumer.close()


# ------------------------------------------------------------------------------------------ transient faults

# (case, fault rule on /carts, failures it causes before the page succeeds, failure kind the client counts)
TRANSIENT = [
    ("429 with Retry-After", {"fault": "429", "retry_after": 1, "query": {"skip": "100"}, "times": 2}, 2, "http_429"),
    ("503 burst", {"fault": "503", "times": 3}, 3, "http_5xx"),
    ("500 on the last page", {"fault": "500", "query": {"skip": "200"}, "times": 2}, 2, "http_5xx"),
    ("read timeout", {"fault": "slow", "seconds": 1.5, "query": {"skip": "100"}, "times": 2}, 2, "timeout"),
    ("connection dropped", {"fault": "drop", "times": 2}, 2, "connection"),
    ("truncated body (connection cut)", {"fault": "truncate", "mode": "cut", "fraction": 0.4, "times": 2}, 2,
     "truncated_body"),
    ("truncated body (short length)", {"fault": "truncate", "mode": "short", "fraction": 0.6,
                                       "query": {"skip": "100"}, "times": 2}, 2, "truncated_body"),
    ("HTML instead of JSON", {"fault": "html", "times": 1}, 1, "invalid_json"),
    ("wrong envelope key", {"fault": "envelope", "variant": "rename", "times": 2}, 2, "malformed"),
    ("bare list envelope", {"fault": "envelope", "variant": "list", "times": 1}, 1, "malformed"),
    ("total as a string", {"fault": "envelope", "variant": "total_type", "times": 1}, 1, "malformed"),
    ("skip not echoed", {"fault": "envelope", "variant": "skip_mismatch", "query": {"skip": "100"}, "times": 1}, 1,
     "malformed"),
    ("item without id", {"fault": "missing_id", "index": 5, "times": 1}, 1, "malformed"),
    ("total changes between pages", {"fault": "total", "query": {"skip": "100"}, "times": 1}, 1, "inconsistent"),
    ("duplicate id within a page", {"fault": "duplicate_id", "query": {"skip": "200"}, "times": 1}, 1,
     "malformed"),
]


@pytest.mark.parametrize("case,rule,failures,kind", TRANSIENT, ids=[t[0] for t in TRANSIENT])
def test_transient_fault_is_retried_and_the_hour_published_exactly_once(
        api, catalog, kafka_bootstrap, unique_topics, fault_report, case, rule, failures, kind):
    topic = unique_topics("orders")["orders"]
    api.set_faults([{**rule, "path": "/carts"}])
    client = make_client(api.url)
    started = time.monotonic()
    result = extract_topic("orders", HOUR, client, {"bootstrap.servers": kafka_bootstrap}, topic=topic)
    seconds = time.monotonic() - started

    fired = sum(r["fired"] for r in api.faults.describe())
    assert fired == failures, api.faults.describe()
    assert client.stats["failures"].get(kind) == failures, client.stats["failures"]
    expected = expected_messages(catalog, "orders", topic)
    got = read_topic(kafka_bootstrap, topic)
    want = Counter((m.key, m.value) for m in expected)
    have = Counter((k, v) for _, _, k, v, _ in got)
    lost = sum((want - have).values())
    duplicates = sum((have - want).values())
    fault_report.record(f"dummyjson: {case} (transient)", messages_in=len(expected), rows_out=len(got),
                        duplicates=duplicates, lost=lost,
                        note=f"{fired} fault(s) {kind}, {client.stats['requests']} requests, "
                             f"{client.stats['restarts']} restart(s), {seconds:.1f} s")
    assert result["published"] == len(expected) == len(got)
    assert (lost, duplicates) == (0, 0)
    if kind == "inconsistent":
        assert client.stats["restarts"] == 1  # the whole collection was fetched again
    else:
        assert client.stats["retries"] == failures


# ------------------------------------------------------------------------------------------ persistent faults

# (case, rule on /carts?skip=200 - the last page of the last collection the events task fetches -, error
#  class, text the cause must contain)
PERSISTENT = [
    ("429 forever", {"fault": "429", "retry_after": 0}, RetryBudgetExhausted, "HTTP 429"),
    ("429 Retry-After beyond the budget", {"fault": "429", "retry_after": 60}, RetryBudgetExhausted,
     "time budget"),
    ("503 forever", {"fault": "503"}, RetryBudgetExhausted, "HTTP 503"),
    ("timeouts forever", {"fault": "slow", "seconds": 1.0}, RetryBudgetExhausted, "timed out"),
    ("connection dropped forever", {"fault": "drop"}, RetryBudgetExhausted, "connection error"),
    ("truncated forever", {"fault": "truncate", "mode": "short", "fraction": 0.5}, RetryBudgetExhausted,
     "truncated"),
    ("wrong envelope forever", {"fault": "envelope", "variant": "rename"}, RetryBudgetExhausted,
     "envelope has no 'carts' list"),
    ("HTML forever", {"fault": "html"}, RetryBudgetExhausted, "not valid JSON"),
    ("inconsistent total forever", {"fault": "total"}, InconsistentDataError, "'total' changed"),
    ("404 (not retried)", {"fault": "404"}, HTTPStatusError, "HTTP 404"),
]


@pytest.mark.parametrize("case,rule,error,cause", PERSISTENT, ids=[p[0] for p in PERSISTENT])
def test_persistent_fault_fails_clearly_and_publishes_nothing(
        api, kafka_bootstrap, unique_topics, fault_report, case, rule, error, cause):
    topic = unique_topics("events")["events"]
    # the events task fetches /users, /products, then /carts: everything but the last carts page succeeds
    skip = "200" if rule["fault"] != "total" else "100"
    api.set_faults([{**rule, "path": "/carts", "query": {"skip": skip}}])
    client = make_client(api.url, time_budget=8.0)
    started = time.monotonic()
    with pytest.raises(DummyJSONError) as info:
        extract_topic("events", HOUR, client, {"bootstrap.servers": kafka_bootstrap}, topic=topic)
    seconds = time.monotonic() - started
    err = info.value
    text = str(err)
    published = high_watermarks(kafka_bootstrap, topic)
    fault_report.record(f"dummyjson: {case} (persistent)", messages_in=0, rows_out=published, duplicates=0,
                        lost=0, note=f"{type(err).__name__} after {seconds:.1f} s; nothing published")
    assert type(err) is error, (type(err), text)
    # the message names the URL, the page and the cause
    assert f"GET {api.url}/carts?limit={PAGE}&skip=" in text, text
    assert re.search(r"\(page skip=\d+ limit=100\)", text), text
    assert cause in text, text
    assert err.url and "/carts" in err.url and err.skip is not None
    if error is HTTPStatusError:
        assert err.attempts == 1 and api.stats()["responses"].get("404") == 1  # not retried
    elif error is RetryBudgetExhausted and "budget" not in cause:
        assert err.attempts == 4 or "time budget" in text, text
    assert seconds < 30
    # users and products and the first carts pages were fetched, yet not one message went out
    assert client.stats["pages"] >= 3 + 2 + 1
    assert published == 0


# ------------------------------------------------------------------------------------------ end to end


def run_loader(params: dict, bootstrap: str, topics: dict[str, str]):
    dsn = psycopg.conninfo.make_conninfo(**{k: params[k] for k in ("host", "port", "user", "password", "dbname")})
    return BronzeLoader(dsn, {"bootstrap.servers": bootstrap}, topics=list(topics.values()),
                        settings=LoaderSettings()).run()


def silver_expectations(catalog, topics) -> dict[str, Any]:
    msgs = {b: expected_messages(catalog, b, topics[b]) for b in BASES}
    orders = [json.loads(m.value) for m in msgs["orders"]]
    return {
        "messages": {b: len(v) for b, v in msgs.items()},
        "silver.customers": len({m.key for m in msgs["customers"]}),
        "silver.products": len({m.key for m in msgs["products"]}),
        "silver.orders": len({o["order_id"] for o in orders}),
        "silver.order_items": sum(len(o["items"]) for o in orders),
        "silver.events": len({m.key for m in msgs["events"]}),
        "revenue": sum(Decimal(o["total_amount"]) for o in orders),
    }


def assert_silver_and_gold_equal_a_clean_run(wh: Warehouse, exp: dict[str, Any]) -> dict[str, int]:
    counts = {t: wh.scalar(f"select count(*) from {t}") for t in
              ("silver.customers", "silver.products", "silver.orders", "silver.order_items", "silver.events")}
    assert counts == {t: exp[t] for t in counts}
    assert wh.scalar("select count(*) from silver.quarantine") == 0
    assert wh.scalar("select count(*) from gold.fct_orders") == exp["silver.orders"]
    assert wh.scalar("select count(*) from gold.fct_order_items") == exp["silver.order_items"]
    assert wh.scalar("select count(*) from gold.dim_customers") == exp["silver.customers"]
    assert wh.rows("select sum(orders), sum(revenue) from gold.agg_orders_daily") == [
        (exp["silver.orders"], exp["revenue"])]
    assert wh.scalar("select sum(events) from gold.agg_events_daily") == exp["silver.events"]
    return counts


def test_failed_extract_then_retry_publishes_the_hour_once_end_to_end(
        api, catalog, kafka_bootstrap, unique_topics, fresh_database, tmp_path, fault_report):
    """Orders and events hit a persistent 503 on the last carts page (customers and products succeed); their
    retry after the API recovers publishes them: Kafka, bronze and silver hold each message once."""
    topics = unique_topics(*BASES)
    producer = {"bootstrap.servers": kafka_bootstrap}
    api.set_faults([{"fault": "503", "path": "/carts", "query": {"skip": "200"}}])
    failed = []
    for base in BASES:
        try:
            extract_topic(base, HOUR, make_client(api.url, time_budget=5.0), producer, topic=topics[base])
        except RetryBudgetExhausted as exc:
            failed.append(base)
            assert "/carts?limit=100&skip=200" in str(exc) and "HTTP 503" in str(exc)
    assert failed == ["orders", "events"]
    assert high_watermarks(kafka_bootstrap, topics["orders"]) == high_watermarks(kafka_bootstrap, topics["events"]) == 0
    api.clear_faults()
    for base in failed:  # the task retries
        extract_topic(base, HOUR, make_client(api.url), producer, topic=topics[base])

    exp = silver_expectations(catalog, topics)
    in_kafka = {b: high_watermarks(kafka_bootstrap, topics[b]) for b in BASES}
    assert in_kafka == exp["messages"]
    wh = Warehouse.open(fresh_database, tmp_path / "dbt")
    try:
        load = run_loader(fresh_database, kafka_bootstrap, topics)
        assert load.totals()["inserted"] == sum(exp["messages"].values()) and load.totals()["quarantined"] == 0
        with topic_env(topics):
            assert_build_passed(wh.build())
        counts = assert_silver_and_gold_equal_a_clean_run(wh, exp)
        n_bronze = wh.scalar("select count(*) from bronze.raw_events")
        staged = dict(wh.rows("select _status, count(*) from staging.stg_orders group by 1"))
    finally:
        wh.close()
    assert n_bronze == sum(exp["messages"].values())
    assert staged == {"admitted": exp["silver.orders"]}  # one version per order: nothing was published twice
    total = sum(exp["messages"].values())
    fault_report.record("dummyjson: persistent 503, task retried after recovery (e2e)", messages_in=total,
                        rows_out=sum(counts[t] for t in ("silver.customers", "silver.products", "silver.orders",
                                                          "silver.events")),
                        duplicates=n_bronze - total, lost=total - n_bronze,
                        note="failed attempt published 0 messages; Kafka = bronze = one clean hour")


def test_republished_hour_is_deduplicated_by_bronze_and_silver_end_to_end(
        api, catalog, kafka_bootstrap, unique_topics, fresh_database, tmp_path, monkeypatch, fault_report):
    """Every topic of the hour is published twice (a task retried after it had published, e.g. it died
    before reporting success); orders also get a half publish first (a crash mid-publish, through the
    `extract.publish:orders` fault checkpoint). The copies are byte-identical and keyed the same: bronze
    stores every copy once per Kafka offset, staging marks the extra copies `superseded` (not conflicting),
    and silver/gold equal one clean run."""
    topics = unique_topics(*BASES)
    producer = {"bootstrap.servers": kafka_bootstrap}
    spec = tmp_path / "faults.json"
    faults.write_spec(spec, {"extract.publish:orders": {"fail_times": 1}})
    monkeypatch.setenv(faults.FILE_ENV, str(spec))
    # a flaky API on top: every 7th request answers 503 (retried)
    api.set_faults([{"fault": "503", "every": 7}])

    with pytest.raises(faults.InjectedFault):
        extract_topic("orders", HOUR, make_client(api.url), producer, topic=topics["orders"])
    partial = high_watermarks(kafka_bootstrap, topics["orders"])
    for _attempt in range(2):
        for base in BASES:
            extract_topic(base, HOUR, make_client(api.url), producer, topic=topics[base])
    exp = silver_expectations(catalog, topics)
    assert 0 < partial < exp["messages"]["orders"]

    # Kafka: 2 (orders: 2 + a half) copies of each message, byte-identical per key
    for base in BASES:
        got = read_topic(kafka_bootstrap, topics[base])
        by_key: dict[bytes, set] = {}
        for _p, _o, k, v, ts in got:
            by_key.setdefault(k, set()).add((v, ts))
        assert all(len(v) == 1 for v in by_key.values()), f"{base}: copies differ"
        assert len(by_key) == exp["messages"][base]
        assert len(got) == 2 * exp["messages"][base] + (partial if base == "orders" else 0)
        key_parts: dict[bytes, set] = {}
        for p, _o, k, _v, _t in got:
            key_parts.setdefault(k, set()).add(p)
        assert all(len(v) == 1 for v in key_parts.values()), "a key moved partition between copies"

    produced = sum(2 * n for n in exp["messages"].values()) + partial
    wh = Warehouse.open(fresh_database, tmp_path / "dbt")
    try:
        load = run_loader(fresh_database, kafka_bootstrap, topics)
        assert load.totals()["inserted"] == produced
        with topic_env(topics):
            assert_build_passed(wh.build())
        counts = assert_silver_and_gold_equal_a_clean_run(wh, exp)
        statuses = {}
        for base, model in (("customers", "stg_customers"), ("products", "stg_products"), ("orders", "stg_orders"),
                            ("events", "stg_events")):
            statuses[base] = dict(wh.rows(f"select _status, count(*) from staging.{model} group by 1"))
        # a re-run of dbt over the same bronze changes nothing
        with topic_env(topics):
            assert_build_passed(wh.build())
        assert assert_silver_and_gold_equal_a_clean_run(wh, exp) == counts
        n_bronze = wh.scalar("select count(*) from bronze.raw_events")
    finally:
        wh.close()
    assert n_bronze == produced
    for base in BASES:
        n = exp["messages"][base]
        copies = 2 * n + (partial if base == "orders" else 0)
        assert statuses[base] == {"admitted": n, "superseded": copies - n}, (base, statuses[base])
    silver_rows = sum(counts[t] for t in ("silver.customers", "silver.products", "silver.orders", "silver.events"))
    distinct = sum(exp["messages"].values())
    fault_report.record("dummyjson: hour re-published x2 + half (e2e)", messages_in=produced, rows_out=silver_rows,
                        duplicates=silver_rows - distinct, lost=distinct - silver_rows,
                        note=f"bronze {n_bronze} rows (one per offset); {produced - distinct} identical copies "
                             "superseded in staging; silver/gold = one clean hour")
