"""The bronze loader's Kafka side: its consumer configuration, a partition's watermarks, the partitions of topics.

The loader reads Kafka with a plain confluent-kafka ``Consumer`` that it ``assign()``s itself (no group membership,
no rebalancing); PostgreSQL holds the offsets (``shopstream.bronze.offsets``), Kafka only gets an informational
copy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from shopstream import retry

log = logging.getLogger("shopstream.bronze")

# The Kafka consumer group of the loader, and the key of its stored offsets (bronze.consumer_offsets).
DEFAULT_GROUP = "shopstream-bronze"

# Errors of a partition whose leader is moving or not elected yet: retried until the timeout.
_TRANSIENT = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
              KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.REQUEST_TIMED_OUT, KafkaError._TIMED_OUT,
              KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._UNKNOWN_PARTITION,
              KafkaError._UNKNOWN_TOPIC}


def build_consumer_config(base: dict[str, Any], group: str) -> dict[str, Any]:
    """The connection's confluent config plus what this loader's correctness needs (forced) and tuning."""
    cfg = dict(base)
    cfg.update({
        "group.id": group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,  # end of partition is reported: how a drain knows it is complete
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
    })
    cfg.setdefault("fetch.max.bytes", 64 * 1024 * 1024)
    cfg.setdefault("max.partition.fetch.bytes", 8 * 1024 * 1024)
    cfg.setdefault("queued.max.messages.kbytes", 128 * 1024)
    cfg.setdefault("fetch.wait.max.ms", 100)
    cfg.setdefault("error_cb", _kafka_error_cb)
    return cfg


def _kafka_error_cb(err: KafkaError) -> None:
    if err.fatal():
        log.error("Kafka fatal error: %s", err)
    else:  # transport errors while a broker restarts: librdkafka reconnects by itself
        log.warning("Kafka: %s", err)


def _is_transient(exc: BaseException) -> bool:
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return isinstance(err, KafkaError) and (err.retriable() or err.code() in _TRANSIENT)


def watermarks(consumer: Any, topic: str, partition: int, timeout: float) -> tuple[int, int]:
    """(low, high) from the partition leader, retrying transient errors (e.g. leader not elected yet)."""
    give_up = time.monotonic() + timeout
    return retry.call(
        lambda attempt: consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=max(0.5, give_up - time.monotonic()), cached=False),
        retry_if=_is_transient, wait=lambda attempt, _: retry.exponential_delay(attempt, 0.1, 1.0),
        deadline=give_up)


def topic_partitions(consumer: Any, topic: str, timeout: float) -> list[int]:
    """The partition numbers of a topic, from the broker's metadata; KafkaException when the topic is unknown."""
    tmd = consumer.list_topics(topic=topic, timeout=timeout).topics.get(topic)
    if tmd is None or tmd.error is not None:
        raise KafkaException(tmd.error if tmd is not None else KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
    return sorted(tmd.partitions)


def list_partitions(consumer_config: dict[str, Any], topics: Sequence[str],
                    timeout: float = 15.0) -> dict[tuple[str, int], tuple[int, int]]:
    """{(topic, partition): (low, high)} for every partition of the topics, straight from the broker."""
    consumer = Consumer(build_consumer_config(consumer_config, DEFAULT_GROUP + "-planner"))
    try:
        out = {}
        for topic in topics:
            for p in topic_partitions(consumer, topic, timeout):
                out[(topic, p)] = watermarks(consumer, topic, p, timeout)
        return out
    finally:
        consumer.close()
