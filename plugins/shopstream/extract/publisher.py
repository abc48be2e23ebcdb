"""Publish `KafkaMessage`s with confluent-kafka and check that every single one was delivered.

`publish(messages, producer_config)` takes a plain confluent-kafka config dict (tests pass
`{"bootstrap.servers": ...}`; the DAG passes the Airflow `kafka_default` connection's config, see
`shopstream.connections.kafka_config`). On top of it the producer always runs with `enable.idempotence=true` and
`acks=all` (no duplicates or reordering from the producer's own retries, no acknowledged-but-lost writes)
and batching defaults (`linger.ms`, `batch.num.messages`, `compression.type=none`) that the connection may
override. It fails - `PublishError` - unless every message got a successful delivery report before the
flush deadline: one failed report or one undelivered message is enough.

Re-publishing an hour (task retry, backfill) appends the same (key, value) pairs again: idempotence holds
per producer session only, so downstream deduplicates by key (orders: `order_id`, events: `event_id`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from shopstream import faults
from shopstream.extract.messages import KafkaMessage

log = logging.getLogger(__name__)

#: Enforced: the delivery guarantees this module promises.
REQUIRED_CONFIG: dict[str, Any] = {"enable.idempotence": True, "acks": "all"}

#: Defaults the connection's extra may override.
DEFAULT_CONFIG: dict[str, Any] = {
    "linger.ms": 20,
    "batch.num.messages": 10_000,
    # Uncompressed: every client can read it (kafka-python ships no lz4/snappy/zstd codec unless the extra
    # packages are installed). lz4 published ~1.7x faster at 100x the catalogue; set it on the connection.
    "compression.type": "none",
    # Same partitioner as the Java client and kafka-python (murmur2 of the key), so every client maps a key
    # to the same partition.
    "partitioner": "murmur2_random",
    # Give up on a message well before the flush deadline, so failures are reported, not left pending.
    "message.timeout.ms": 60_000,
}

#: Keys that are consumer-only (a shared Airflow Kafka connection may carry them); the producer drops them.
CONSUMER_ONLY_KEYS = frozenset({
    "group.id", "group.instance.id", "enable.auto.commit", "auto.offset.reset", "auto.commit.interval.ms",
    "enable.auto.offset.store", "session.timeout.ms", "max.poll.interval.ms", "isolation.level",
    "fetch.min.bytes", "fetch.max.bytes", "fetch.wait.max.ms", "max.partition.fetch.bytes",
    "partition.assignment.strategy", "heartbeat.interval.ms", "check.crcs",
})


class PublishError(RuntimeError):
    """Some messages were not delivered (`failed` with an error report, `undelivered` still pending)."""

    def __init__(self, message: str, *, failed: int, undelivered: int, first_error: str | None):
        super().__init__(message)
        self.failed = failed
        self.undelivered = undelivered
        self.first_error = first_error


@dataclass
class PublishResult:
    published: int = 0
    per_topic: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: {topic: {partition: [first offset, last offset]}} of the delivered messages (recorded in ops.extract_published)
    offsets: dict[str, dict[int, list[int]]] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.published / self.seconds if self.seconds > 0 else 0.0


def producer_settings(producer_config: Mapping[str, Any]) -> dict[str, Any]:
    """The effective producer config: defaults < connection config (minus consumer keys) < required."""
    base = {k: v for k, v in producer_config.items() if k not in CONSUMER_ONLY_KEYS}
    if not base.get("bootstrap.servers"):
        raise ValueError("producer config needs 'bootstrap.servers'")
    for key, value in REQUIRED_CONFIG.items():
        if key in base and str(base[key]).lower() not in {str(value).lower(), "-1"}:
            log.warning("overriding %s=%r from the connection with %r", key, base[key], value)
    return {**DEFAULT_CONFIG, **base, **REQUIRED_CONFIG}


def publish(
    messages: Iterable[KafkaMessage],
    producer_config: Mapping[str, Any],
    *,
    flush_timeout: float = 120.0,
    producer: Producer | None = None,
    fault_point: str | None = None,
) -> PublishResult:
    """Produce every message and wait for all delivery reports; raise `PublishError` on any loss.

    `producer` (optional) is used as is and left open; otherwise one is built from `producer_config`
    (see `producer_settings`) and closed before returning (after purging what a failure left queued).
    `fault_point` (optional): a `shopstream.faults` checkpoint passed once half of the messages (of a sized
    collection) were produced and flushed - a configured fault then leaves a partial publish behind.
    """
    started = time.perf_counter()
    half = (len(messages) + 1) // 2 if fault_point and hasattr(messages, "__len__") else None
    own = producer is None
    if own:
        producer = Producer(producer_settings(producer_config))
    state: dict[str, Any] = {"ok": 0, "failed": 0, "first_error": None}
    offsets: dict[str, dict[int, list[int]]] = {}

    def on_delivery(err: KafkaError | None, msg: Any) -> None:
        if err is None:
            state["ok"] += 1
            if msg is not None:  # the delivered message's coordinates (only a stand-in producer passes none)
                span = offsets.setdefault(msg.topic(), {}).setdefault(msg.partition(), [msg.offset(), msg.offset()])
                span[0], span[1] = min(span[0], msg.offset()), max(span[1], msg.offset())
        else:
            state["failed"] += 1
            if state["first_error"] is None:
                state["first_error"] = f"{msg.topic()} key={msg.key()!r}: {err}"

    sent = 0
    per_topic: dict[str, int] = {}
    undelivered = 0
    try:
        for m in messages:
            while True:
                try:
                    producer.produce(
                        m.topic, value=m.value, key=m.key, timestamp=m.timestamp_ms,
                        headers=list(m.headers), on_delivery=on_delivery,
                    )
                    break
                except BufferError:  # local queue full: serve delivery reports, then retry this message
                    producer.poll(0.1)
                except KafkaException as exc:  # e.g. unknown topic with auto-create off, message too large
                    err = exc.args[0] if exc.args else exc
                    state["failed"] += 1
                    if state["first_error"] is None:
                        state["first_error"] = f"{m.topic} key={m.key!r}: {err}"
                    break
            sent += 1
            per_topic[m.topic] = per_topic.get(m.topic, 0) + 1
            if sent == half:
                faults.checkpoint(fault_point, prepare=lambda: producer.flush(flush_timeout))
            if sent % 1000 == 0:
                producer.poll(0)
        undelivered = producer.flush(flush_timeout)
        elapsed = time.perf_counter() - started
        # A report can be neither ok nor failed only when flush timed out (then also counted in `undelivered`).
        missing = max(undelivered, sent - state["ok"] - state["failed"])
        if state["failed"] or missing:
            raise PublishError(
                f"{state['failed']} of {sent} messages failed and {missing} were not delivered within "
                f"{flush_timeout:g} s; first error: {state['first_error'] or 'flush timeout'}",
                failed=state["failed"], undelivered=missing, first_error=state["first_error"],
            )
    finally:
        if own:
            if undelivered or sent > state["ok"] + state["failed"]:
                producer.purge()  # close() would otherwise wait for them again
                producer.poll(0)
            producer.close()
    log.info("published %d messages in %.2f s (%s)", sent, elapsed, per_topic)
    return PublishResult(published=state["ok"], per_topic=per_topic, seconds=elapsed, offsets=offsets)


def open_producer(producer_config: Mapping[str, Any]) -> Producer:
    """A producer with this module's settings (see `producer_settings`), for several `publish(..., producer=)`."""
    return Producer(producer_settings(producer_config))


def close_producer(producer: Producer) -> None:
    """Close a producer from `open_producer`, dropping what a failed publish left queued (close() would otherwise
    wait for it again)."""
    if len(producer):
        producer.purge()
        producer.poll(0)
    producer.close()
