"""The task glue (fetch -> build -> publish, asset event extra) with a fake client and publisher."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime

import pendulum
import pytest
import shopstream.extract.tasks as tasks
from shopstream.assets import KAFKA_TOPIC_ASSETS
from shopstream.dummyjson_stub.catalog import load_snapshot, snapshot_dir
from shopstream.extract.messages import TOPICS
from shopstream.extract.publisher import PublishResult

H13 = datetime(2026, 11, 27, 13, tzinfo=UTC)


class FakeClient:
    def __init__(self, catalog):
        self.catalog = catalog
        self.stats = {"requests": 0, "retries": 0}
        self.fetched = []
        self.closed = False

    def fetch_all(self, resource):
        self.fetched.append(resource)
        records = self.catalog[resource]
        self.stats["requests"] += -(-len(records) // 100)
        return records

    def close(self):
        self.closed = True


class Outlet:
    extra: dict | None = None


@pytest.fixture(scope="module")
def catalog():
    return load_snapshot(snapshot_dir())


@pytest.fixture(autouse=True)
def connections(monkeypatch):
    """The task's preflight checks that its connections are defined (the clients themselves are fakes here), so
    the tests define them instead of relying on the developer's .env."""
    monkeypatch.setenv("AIRFLOW_CONN_DUMMYJSON_API", json.dumps({"conn_type": "http", "host": "dummyjson.invalid",
                                                                 "schema": "http"}))
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", json.dumps({"conn_type": "kafka",
                                                                 "extra": {"bootstrap.servers": "kafka.invalid:9092"}}))
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DB", json.dumps({"conn_type": "postgres", "host": "pg.invalid",
                                                                "port": 5432, "login": "u", "schema": "db"}))


@pytest.fixture(autouse=True)
def ops_records(monkeypatch):
    """What the task records in the ops schema (shopstream.ops), captured instead of written."""
    out = []
    monkeypatch.setattr(tasks.ops, "record_extract",
                        lambda target, results, run_id: out.append((target, tasks.ops.extract_rows(results, run_id))))
    return out


@pytest.fixture
def sent(monkeypatch):
    out = []

    def fake_publish(messages, producer_config, **kwargs):
        messages = list(messages)
        out.append((messages, producer_config))
        return PublishResult(published=len(messages), per_topic={}, seconds=0.01)

    monkeypatch.setattr(tasks, "publish", fake_publish)
    monkeypatch.setattr(tasks, "open_producer", lambda config: ("producer", config))
    monkeypatch.setattr(tasks, "close_producer", lambda producer: None)
    return out


@pytest.fixture
def task_client(catalog, monkeypatch):
    """The Airflow task's clients replaced: the DummyJSON client of the `dummyjson_api` connection is a FakeClient
    (returned), and the Kafka config of a connection is {"bootstrap.servers": <its connection id>}."""
    client = FakeClient(catalog)
    monkeypatch.setattr(tasks, "dummyjson_client", lambda conn_id="dummyjson_api": client)
    monkeypatch.setattr(tasks, "kafka_config", lambda conn_id: {"bootstrap.servers": conn_id})
    return client


@pytest.mark.parametrize("topic", TOPICS)
def test_extract_topic_fetches_only_what_it_needs(topic, catalog, sent):
    client = FakeClient(catalog)
    counts = tasks.extract_topic(topic, H13, client, {"bootstrap.servers": "b"}, topic=f"{topic}-x")
    assert tuple(client.fetched) == tasks.RESOURCES[topic]
    assert counts["requests"] == {"customers": 3, "products": 2, "orders": 3, "events": 8}[topic]
    messages, config = sent[0]
    assert config == {"bootstrap.servers": "b"}
    assert counts["published"] == len(messages) > 0 and {m.topic for m in messages} == {f"{topic}-x"}
    assert counts["fetched"] == {r: len(catalog[r]) for r in tasks.RESOURCES[topic]}
    assert counts["logical_hour"] == "2026-11-27T13:00:00Z"


def test_run_extract_task_uses_the_run_hour_env_topic_and_sets_the_asset_extra(task_client, sent, monkeypatch):
    client = task_client
    monkeypatch.setenv("SHOPSTREAM_TOPIC_ORDERS", "orders-abc")
    outlets = defaultdict(Outlet)
    context = {
        "data_interval_start": pendulum.datetime(2026, 11, 27, 13, tz="UTC"),
        "logical_date": pendulum.datetime(2026, 11, 27, 14, tz="UTC"),
        "params": {"seed": "shopstream-v1", "order_rate": 0.5, "events_per_hour": 300},
        "outlet_events": outlets,
    }
    counts = tasks.run_extract_task("orders", **context)
    messages, config = sent[0]
    assert config == {"bootstrap.servers": "kafka_default"}
    assert {m.topic for m in messages} == {"orders-abc"}
    assert {json.loads(m.value)["logical_hour"] for m in messages} == {"2026-11-27T13:00:00Z"}
    assert len(messages) > 60  # order_rate 0.5 of 208 carts, from the params
    assert outlets[KAFKA_TOPIC_ASSETS["orders"]].extra == {
        "logical_hour": "2026-11-27T13:00:00Z", "topic": "orders-abc", "messages": len(messages)}
    assert counts["published"] == len(messages) and client.closed


def test_extract_hour_fetches_each_resource_once_and_publishes_every_topic(catalog, sent):
    client = FakeClient(catalog)
    results = tasks.extract_hour(H13, client, {"bootstrap.servers": "b"}, topics={t: f"{t}-x" for t in TOPICS})
    assert sorted(client.fetched) == ["carts", "products", "users"]  # 8 requests, not 16 as four tasks made
    assert client.stats["requests"] == 8
    assert list(results) == list(TOPICS)  # published in this order: customers first, events last
    for (messages, _), topic in zip(sent, TOPICS, strict=True):
        assert {m.topic for m in messages} == {f"{topic}-x"}
        assert results[topic]["published"] == len(messages) > 0
        assert results[topic]["fetched"] == {r: len(catalog[r]) for r in tasks.RESOURCES[topic]}
    # the same messages as four separate single-topic extracts (the hour is deterministic either way)
    for topic in TOPICS:
        tasks.extract_topic(topic, H13, FakeClient(catalog), {}, topic=f"{topic}-x")
        alone = sent[-1][0]
        assert [m.value for m in alone] == [m.value for m in sent[TOPICS.index(topic)][0]]


def test_run_extract_hour_task_sets_one_asset_event_per_topic(task_client, sent, monkeypatch):
    client = task_client
    monkeypatch.setenv("SHOPSTREAM_TOPIC_EVENTS", "events-abc")
    outlets = defaultdict(Outlet)
    context = {"data_interval_start": pendulum.datetime(2026, 11, 27, 13, tz="UTC"),
               "logical_date": pendulum.datetime(2026, 11, 27, 14, tz="UTC"), "outlet_events": outlets}
    results = tasks.run_extract_hour_task(**context)
    assert set(results) == set(TOPICS) and client.closed
    for topic in TOPICS:
        name = "events-abc" if topic == "events" else topic
        assert outlets[KAFKA_TOPIC_ASSETS[topic]].extra == {
            "logical_hour": "2026-11-27T13:00:00Z", "topic": name, "messages": results[topic]["published"]}


def test_run_extract_task_without_a_date_fails_before_fetching(task_client, sent):
    with pytest.raises(ValueError, match="logical hour"):
        tasks.run_extract_task("customers", data_interval_start=None, logical_date=None)
    assert task_client.fetched == [] and sent == []


def test_run_extract_hour_task_records_what_it_published_in_the_ops_schema(task_client, sent, ops_records):
    context = {"data_interval_start": pendulum.datetime(2026, 11, 27, 13, tz="UTC"),
               "logical_date": pendulum.datetime(2026, 11, 27, 14, tz="UTC"), "run_id": "manual__x"}
    results = tasks.run_extract_hour_task(**context)
    [(target, rows)] = ops_records
    assert target == "warehouse_db"
    by_topic = {r["base_topic"]: r for r in rows}
    assert set(by_topic) == set(TOPICS)
    messages = {topic: msgs for (msgs, _), topic in zip(sent, TOPICS, strict=True)}
    for topic, row in by_topic.items():
        assert row["logical_hour"] == datetime(2026, 11, 27, 13) and row["dag_run_id"] == "manual__x"
        assert row["messages"] == results[topic]["published"] == len(messages[topic])
        assert row["keys"] == len({m.key for m in messages[topic]}) > 0
    orders = {m.key: json.loads(m.value) for m in messages["orders"]}
    assert by_topic["orders"]["order_items"] == sum(len(o["items"]) for o in orders.values()) > 0
    assert by_topic["customers"]["order_items"] is None
