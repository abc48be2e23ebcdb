"""The project's local Kafka broker (scripts/kafka.sh: KRaft, Apache Kafka's own jars).

Writes go through confluent-kafka (the client the pipeline uses); reads go through kafka-python, an
independent implementation of the protocol, so a round trip proves what is on the broker, not what one
client library thinks it wrote.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource
from kafka import KafkaConsumer
from kafka import TopicPartition as KpTopicPartition
from kafka.structs import OffsetAndMetadata

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "scripts" / "kafka.sh"
PROJECT_TOPICS = ("customers", "products", "orders", "events")


def _kafka_sh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(KAFKA_SH), *args], capture_output=True, text=True, timeout=180)


def _produce(bootstrap: str, topic: str, messages: list[dict]) -> list[tuple[int, int]]:
    """Produce with confluent-kafka (acks=all, idempotent); returns (partition, offset) per message."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    delivered: list[tuple[int, int]] = []
    errors: list = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            delivered.append((msg.partition(), msg.offset()))

    for m in messages:
        producer.produce(topic, key=m["key"], value=m["value"], headers=m.get("headers"),
                         timestamp=m.get("timestamp", 0), partition=m.get("partition", -1),
                         on_delivery=on_delivery)
    assert producer.flush(30) == 0, "messages still queued after 30 s"
    assert not errors, errors
    assert len(delivered) == len(messages)
    return delivered


def _consume_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 30.0, **extra) -> list:
    """Read a topic from the beginning with kafka-python until `expected` records arrived."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
        **extra,
    )
    try:
        partitions = None
        deadline = time.monotonic() + timeout_s
        while not partitions and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                time.sleep(0.2)
        assert partitions, f"kafka-python sees no partitions for {topic}"
        consumer.assign([KpTopicPartition(topic, p) for p in sorted(partitions)])
        consumer.seek_to_beginning()
        records: list = []
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def test_project_topics_exist_with_configured_partitions(kafka_bootstrap):
    want = int(os.environ.get("SHOPSTREAM_KAFKA_PARTITIONS", "3"))
    md = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=15)
    assert len(md.brokers) == 1
    for name in PROJECT_TOPICS:
        assert name in md.topics, f"topic {name} missing; topics: {sorted(md.topics)}"
        topic = md.topics[name]
        assert topic.error is None, topic.error
        assert len(topic.partitions) == want, f"{name}: {len(topic.partitions)} partitions, want {want}"
        for p in topic.partitions.values():
            assert p.replicas == [1] and p.isrs == [1], (name, p.id, p.replicas, p.isrs)
            assert p.leader == 1


def test_broker_config_is_the_generated_single_node_kraft_config(kafka_bootstrap):
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    [future] = admin.describe_configs([ConfigResource(ConfigResource.Type.BROKER, "1")]).values()
    cfg = {k: v.value for k, v in future.result(15).items()}
    assert cfg["process.roles"] == "broker,controller"
    assert cfg["auto.create.topics.enable"] == "false"
    assert cfg["num.partitions"] == os.environ.get("SHOPSTREAM_KAFKA_PARTITIONS", "3")
    assert cfg["offsets.topic.replication.factor"] == "1"
    assert cfg["transaction.state.log.replication.factor"] == "1"
    assert cfg["transaction.state.log.min.isr"] == "1"
    assert cfg["group.initial.rebalance.delay.ms"] == "0"
    # event-time timestamps: backfilled hours must not expire, hours ahead of the clock must not be rejected
    assert cfg["log.retention.ms"] == "-1"
    assert cfg["log.message.timestamp.type"] == "CreateTime"
    assert int(cfg["log.message.timestamp.after.max.ms"]) >= 365 * 24 * 3600 * 1000
    assert int(cfg["log.message.timestamp.before.max.ms"]) >= 10 * 365 * 24 * 3600 * 1000
    assert cfg["log.dirs"] == str(ROOT / ".local" / "kafka" / "data")


def test_start_is_idempotent_and_status_reports_topics(kafka_bootstrap):
    again = _kafka_sh("start")
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stderr
    status = _kafka_sh("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "running" in status.stdout and kafka_bootstrap in status.stdout
    want = os.environ.get("SHOPSTREAM_KAFKA_PARTITIONS", "3")
    for name in PROJECT_TOPICS:
        assert re.search(rf"^\s*{name}\s+{want} partitions$", status.stdout, re.M), status.stdout
    topics = _kafka_sh("topics")
    assert topics.returncode == 0, topics.stderr


def test_confluent_message_reads_back_intact_with_kafka_python(kafka_bootstrap, unique_topics):
    topic = unique_topics("roundtrip")["roundtrip"]
    event_ts_ms = 1_764_248_467_000  # 2025-11-27T13:01:07Z: event time, not wall clock
    value = json.dumps({"event_id": "e-1", "emoji": "\u00e9\u6f22", "n": 1}, sort_keys=True,
                       separators=(",", ":"), ensure_ascii=False).encode()
    headers = [
        ("source", b"derived:/carts"),
        ("schema_version", b"1"),
        ("logical_hour", b"2025-11-27T13:00:00Z"),
        ("content_type", b"application/json"),
        ("binary", bytes(range(256))),
    ]
    [(partition, offset)] = _produce(kafka_bootstrap, topic, [
        {"key": b"e-1", "value": value, "headers": headers, "timestamp": event_ts_ms, "partition": 0},
    ])
    # Event times far from the wall clock (a backfilled year-old hour, a generated hour a month ahead) are
    # stored as sent, not rejected (Kafka 4 defaults reject > 1 h ahead) nor rewritten.
    now_ms = int(time.time() * 1000)
    odd_times = [now_ms - 400 * 86_400_000, now_ms + 30 * 86_400_000]
    _produce(kafka_bootstrap, topic, [
        {"key": b"t", "value": b"{}", "timestamp": ts, "partition": 1} for ts in odd_times
    ])

    records = _consume_all(kafka_bootstrap, topic, expected=3)
    assert sorted(r.timestamp for r in records if r.partition == 1) == odd_times
    [record] = [r for r in records if r.partition == 0]
    assert (record.partition, record.offset) == (partition, offset)
    assert record.key == b"e-1"
    assert record.value == value
    assert json.loads(record.value.decode()) == {"event_id": "e-1", "emoji": "\u00e9\u6f22", "n": 1}
    assert list(record.headers) == headers
    assert record.timestamp == event_ts_ms
    assert record.timestamp_type == 0  # CreateTime: the producer's timestamp is kept, not the append time


def test_messages_and_committed_offsets_survive_restart(kafka_bootstrap, unique_topics):
    topic = unique_topics("durable")["durable"]
    run = uuid.uuid4().hex
    messages = [
        {"key": f"k{i}".encode(), "value": f'{{"i":{i},"run":"{run}"}}'.encode(),
         "headers": [("run", run.encode())], "timestamp": 1_700_000_000_000 + i, "partition": i % 3}
        for i in range(30)
    ]
    delivered = _produce(kafka_bootstrap, topic, messages)
    assert sorted(p for p, _ in delivered) == sorted(i % 3 for i in range(30))

    # A consumer group commits partway, as the extract→bronze loader does.
    group = f"test-durable-{run[:8]}"
    committer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    try:
        committer.commit({KpTopicPartition(topic, 0): OffsetAndMetadata(4, "", -1)})
    finally:
        committer.close()

    restarted = _kafka_sh("restart")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert "stopping Kafka" in restarted.stderr and "Kafka is up" in restarted.stderr

    records = _consume_all(kafka_bootstrap, topic, expected=len(messages), timeout_s=60)
    got = sorted((r.key, r.value, r.timestamp, r.partition) for r in records)
    want = sorted((m["key"], m["value"], m["timestamp"], m["partition"]) for m in messages)
    assert got == want

    # The committed offset lives in __consumer_offsets and must come back too (read with confluent-kafka).
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        [committed] = consumer.committed([TopicPartition(topic, 0)], timeout=30)
        assert committed.offset == 4
    finally:
        consumer.close()

    # The project topics are still there after the restart.
    md = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=15)
    assert set(PROJECT_TOPICS) <= set(md.topics)
