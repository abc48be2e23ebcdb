"""Known Kafka message sets for bronze loads, and bronze read back: shared by the bronze tests and
bench/bench_bronze.py.

`event_messages` makes n clickstream-like messages spread over topics and partitions, `produce` publishes them
and returns what the broker acknowledged, `bronze_set` / `produced_set` put both sides in one comparable shape.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

# A fixed past hour: Kafka 4 rejects CreateTimes more than 1 h in the future.
BASE_TS_MS = 1_748_782_800_000  # 2025-06-01T13:00:00Z


@dataclass(frozen=True)
class Produced:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    ts_ms: int


def event_value(i: int, pad: int = 250) -> dict[str, Any]:
    """A clickstream-like object of ~500 bytes once serialised canonically."""
    return {
        "event_id": f"e-2025060113-{i:08d}", "event_type": ("page_view", "product_view", "add_to_cart")[i % 3],
        "customer_id": str(i % 208 + 1), "event_ts": "2025-06-01T13:05:31Z",
        "session_id": f"s-2025060113-{i % 997:03d}", "product_id": str(i % 194 + 1), "order_id": None,
        "page": f"/products/{i % 194 + 1}", "logical_hour": "2025-06-01T13:00:00Z", "schema_version": 1,
        "note": "x" * pad,
    }


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_messages(topics: list[str], n: int, partitions: int = 3, start: int = 0, pad: int = 250,
                   seed: int = 7) -> Iterator[tuple[str, int, bytes, bytes, int]]:
    """n messages (topic, partition, key, value, ts_ms) spread over topics and partitions."""
    rnd = random.Random(seed)
    for i in range(start, start + n):
        topic = topics[i % len(topics)]
        yield (topic, rnd.randrange(partitions), str(i).encode(), canonical(event_value(i, pad)),
               BASE_TS_MS + (i % 3_600_000))


def produce(bootstrap: str, messages: Iterable[tuple], *, record: bool = True,
            headers: list[tuple[str, bytes]] | None = None) -> list[Produced]:
    """Produce (topic, partition, key, value, ts_ms) messages; returns what the broker acknowledged."""
    from confluent_kafka import Producer

    producer = Producer({
        "bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000, "batch.num.messages": 100_000,
        "queue.buffering.max.messages": 500_000, "queue.buffering.max.kbytes": 512 * 1024,
        "enable.idempotence": True, "compression.type": "none",
    })
    acked: list[Produced] = []
    errors: list[str] = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        elif record:
            acked.append(Produced(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(),
                                  msg.timestamp()[1]))

    cb = on_delivery
    for topic, partition, key, value, ts in messages:
        while True:
            try:
                producer.produce(topic, value, key, partition=partition, timestamp=ts, headers=headers,
                                 on_delivery=cb)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(120)
    if remaining or errors:
        raise RuntimeError(f"produce failed: {remaining} undelivered, errors {errors[:5]}")
    return acked


def bronze_set(conninfo: str, topics: Iterable[str] | None = None) -> list[tuple[str, int, int, str, str]]:
    """(topic, partition, offset, key, canonical value) of every bronze row, as a list (duplicates kept)."""
    import psycopg

    sql = 'SELECT topic, "partition", "offset", record_key, record_value::text FROM bronze.raw_events'
    params: list[Any] = []
    if topics is not None:
        sql += " WHERE topic = ANY(%s)"
        params.append(list(topics))
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(sql, params).fetchall()
    return [(t, p, o, k, canonical(json.loads(v)).decode()) for t, p, o, k, v in rows]


def produced_set(produced: Iterable[Produced]) -> list[tuple[str, int, int, str, str]]:
    return [(m.topic, m.partition, m.offset, m.key.decode(), canonical(json.loads(m.value)).decode())
            for m in produced]
