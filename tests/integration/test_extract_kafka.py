"""Extract end to end: local DummyJSON server -> extract -> the real Kafka broker -> read back with kafka-python.

Writes go through the pipeline's own code (confluent-kafka); reads through kafka-python, an independent
client, so the assertions are about what is on the broker.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from shopstream.dummyjson.client import DummyJSONClient
from shopstream.dummyjson_stub.catalog import has_snapshot, load_snapshot, snapshot_dir
from shopstream.dummyjson_stub.server import DummyJSONServer
from shopstream.extract.messages import RESOURCES, TOPICS, Snapshot, build_messages, hour_bounds_ms
from shopstream.extract.tasks import extract_topic

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# A fixed past hour, after the DAG's start_date (Airflow creates no task instances before it). Kafka 4 brokers
# with default settings reject CreateTimes more than 1 h in the future (INVALID_RECORD).
HOUR = datetime(2025, 6, 1, 13, tzinfo=UTC)
# Requests per extraction at page_size 100 against 208 users / 194 products / 208 carts.
EXPECTED_REQUESTS = {"customers": 3, "products": 2, "orders": 3, "events": 8}
SENSITIVE = ("password", "ssn", "ein", "bank.cardNumber", "bank.iban", "ip", "macAddress", "crypto.wallet")


@pytest.fixture(scope="module")
def catalog():
    folder = snapshot_dir(ROOT)
    assert has_snapshot(folder), f"DummyJSON snapshot not found at {folder} (SHOPSTREAM_DUMMYJSON_DATA)"
    return load_snapshot(folder)


@pytest.fixture(scope="module")
def dummyjson_url(catalog):
    with DummyJSONServer(catalog) as url:  # the contract's rate limit (100 per 10 s) stays on
        yield url


def read_topic(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list:
    """Every record of `topic` (all partitions, from the beginning up to the end offsets) via kafka-python."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=1000)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        records = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"timed out reading {topic}"
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def extract_hour(url: str, bootstrap: str, names: dict[str, str], hour: datetime = HOUR) -> dict[str, dict]:
    client = DummyJSONClient(url)
    try:
        return {t: extract_topic(t, hour, client, {"bootstrap.servers": bootstrap}, topic=names[t]) for t in TOPICS}
    finally:
        client.close()


def test_publish_one_hour_and_read_it_back(dummyjson_url, kafka_bootstrap, unique_topics, catalog):
    names = unique_topics(*TOPICS)
    counts = extract_hour(dummyjson_url, kafka_bootstrap, names)

    expected = {t: build_messages(t, Snapshot(catalog.users, catalog.products, catalog.carts), HOUR, topic=names[t])
                for t in TOPICS}
    start, end = hour_bounds_ms(HOUR)
    secrets = {v for u in catalog.users for v in _values(u, SENSITIVE)}
    assert len(secrets) > 1000
    for topic in TOPICS:
        c = counts[topic]
        assert c["published"] == len(expected[topic]) > 0
        assert c["requests"] == EXPECTED_REQUESTS[topic] and c["retries"] == 0, c
        assert c["logical_hour"] == "2025-06-01T13:00:00Z"

        records = read_topic(kafka_bootstrap, names[topic])
        assert len(records) == len(expected[topic])
        got = {(r.key, r.value) for r in records}
        assert got == {(m.key, m.value) for m in expected[topic]}
        assert len({r.key for r in records}) == len(records)  # one message per entity
        by_key = {m.key: m for m in expected[topic]}
        for r in records:
            assert r.timestamp_type == 0  # CreateTime: the event time we set, not the broker's clock
            assert start <= r.timestamp < end
            assert r.timestamp == by_key[r.key].timestamp_ms
            headers = dict((k, v) for k, v in r.headers)
            assert [k for k, _ in r.headers] == ["source", "schema_version", "logical_hour", "content_type"]
            assert headers["logical_hour"] == b"2025-06-01T13:00:00Z"
            assert headers["schema_version"] == b"1" and headers["content_type"] == b"application/json"
            value = r.value.decode("utf-8")
            leaked = [s for s in secrets if json.dumps(s) in value or (len(s) >= 12 and s in value)]
            assert not leaked, f"PII in {topic} {r.key!r}"
    # Spread over partitions by key (3 partitions per topic).
    assert len({r.partition for r in read_topic(kafka_bootstrap, names["events"])}) == 3


def test_same_hour_twice_gives_identical_key_value_sets(dummyjson_url, kafka_bootstrap, unique_topics):
    first, second = unique_topics(*TOPICS), unique_topics(*TOPICS)
    extract_hour(dummyjson_url, kafka_bootstrap, first)
    extract_hour(dummyjson_url, kafka_bootstrap, second)
    for topic in TOPICS:
        a = read_topic(kafka_bootstrap, first[topic])
        b = read_topic(kafka_bootstrap, second[topic])
        assert a
        assert sorted((r.key, r.value, r.timestamp, r.partition, tuple(r.headers)) for r in a) == \
            sorted((r.key, r.value, r.timestamp, r.partition, tuple(r.headers)) for r in b)
    # ...and a different hour differs.
    third = unique_topics("orders")
    extract_topic("orders", HOUR + timedelta(hours=1), DummyJSONClient(dummyjson_url),
                  {"bootstrap.servers": kafka_bootstrap}, topic=third["orders"])
    other = {(r.key, r.value) for r in read_topic(kafka_bootstrap, third["orders"])}
    assert other and other.isdisjoint({(r.key, r.value) for r in read_topic(kafka_bootstrap, first["orders"])})


def test_unreachable_broker_fails_loudly(dummyjson_url):
    from shopstream.extract.publisher import PublishError

    config = {"bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": 2000, "socket.timeout.ms": 1000}
    started = time.monotonic()
    with pytest.raises(PublishError) as info:
        extract_topic("orders", HOUR, DummyJSONClient(dummyjson_url), config, flush_timeout=10)
    assert info.value.failed + info.value.undelivered > 0
    assert time.monotonic() - started < 30


def _values(user: dict, paths) -> list[str]:
    out = []
    for path in paths:
        node = user
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, str):
            out.append(node)
    return out


# ---------------------------------------------------------------------------------------- through Airflow


@pytest.mark.airflow
def test_dag_runs_through_airflow(airflow_db, dummyjson_url, kafka_bootstrap, unique_topics, catalog, monkeypatch):
    names = unique_topics(*TOPICS)
    host, port = dummyjson_url.removeprefix("http://").rsplit(":", 1)
    monkeypatch.setenv("AIRFLOW_CONN_DUMMYJSON_API",
                       json.dumps({"conn_type": "http", "host": host, "port": int(port), "schema": "http"}))
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT",
                       json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": kafka_bootstrap}}))
    for t in TOPICS:
        monkeypatch.setenv(f"SHOPSTREAM_TOPIC_{t.upper()}", names[t])

    from airflow.models.asset import AssetEvent
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    dag = _load_dag()
    # A manual run at logical date L gets the data interval [L-1h, L): it processes hour L-1h = HOUR.
    dr = dag.test(logical_date=HOUR + timedelta(hours=1))
    with create_session() as session:
        dr = session.scalar(select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == dr.run_id))
        tis = {ti.task_id: ti for ti in dr.get_task_instances(session=session)}
        assert {k: v.state for k, v in tis.items()} == {"publish_hour": TaskInstanceState.SUCCESS}
        assert dr.state == DagRunState.SUCCESS
        results = tis["publish_hour"].xcom_pull(task_ids="publish_hour", session=session)
        events = session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == dr.run_id)).all()
        extras = {e.asset.name: e.extra for e in events}
    assert set(extras) == {f"shopstream.kafka.{t}" for t in TOPICS}
    for t in TOPICS:
        assert extras[f"shopstream.kafka.{t}"]["logical_hour"] == "2025-06-01T13:00:00Z"
        assert extras[f"shopstream.kafka.{t}"]["topic"] == names[t]
        assert results[t]["logical_hour"] == "2025-06-01T13:00:00Z"
        assert results[t]["fetched"] == {r: len(getattr(catalog, r)) for r in RESOURCES[t]}
        records = read_topic(kafka_bootstrap, names[t])
        assert len(records) == results[t]["published"] == extras[f"shopstream.kafka.{t}"]["messages"] > 0
        assert {dict(r.headers)["logical_hour"] for r in records} == {b"2025-06-01T13:00:00Z"}


def _load_dag():
    import importlib.util

    from airflow.sdk import DAG

    spec = importlib.util.spec_from_file_location("shopstream_extract_itest", ROOT / "dags" / "shopstream_extract.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.shopstream_extract()  # the @dag function returns the DAG (the file does not bind it)
    assert isinstance(dag, DAG)
    return dag
