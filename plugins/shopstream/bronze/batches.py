"""Batch assembly: Kafka messages -> one batch of rows (and its binary COPY stream) plus its quarantine rows.

What decides correctness before any SQL runs lives here: which messages enter a batch, where each partition's
position ends, when a partition counts as drained (its high watermark at the start of the run: a bounded drain),
and that poison goes to the quarantine list without stopping the batch. ``BatchAssembler.fill`` streams the
encoded rows to a sink while it consumes (the loader's sink is ``COPY ... FROM STDIN``), so Kafka fetching,
validation and encoding overlap with the server's inserts. No SQL and no transactions here: the loader
(shopstream.bronze.loader) commits a batch with its offsets, or rolls it back and seeks the assembler back.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from shopstream.bronze import poison
from shopstream.bronze.copyrows import RowEncoder, ms_to_utc_naive
from shopstream.bronze.planning import PartitionPlan

if TYPE_CHECKING:
    from shopstream.bronze.loader import LoaderSettings

log = logging.getLogger("shopstream.bronze")

# Encoded rows are handed to the sink in chunks of about this size (fewer, larger writes to the COPY stream).
COPY_CHUNK_BYTES = 256 * 1024


@dataclass
class PartitionState:
    """One partition of a run: its plan, its stored offset and how far this loader got."""

    topic: str
    partition: int
    plan: PartitionPlan
    db_offset: int  # the value this loader last read from / wrote to consumer_offsets (CAS expectation)
    position: int  # next offset to process; > db_offset while a batch is open
    done: bool = False

    @classmethod
    def at(cls, plan: PartitionPlan, db_offset: int) -> PartitionState:
        """The partition of ``plan`` continuing from the stored ``db_offset``."""
        part = cls(plan.topic, plan.partition, plan, db_offset, db_offset)
        part.reset_to(db_offset)
        return part

    def reset_to(self, db_offset: int) -> None:
        """Continue from a stored offset: at the start of a run, after a rollback, or when another loader moved it."""
        self.db_offset = db_offset
        self.position = max(db_offset, self.plan.start)
        self.done = self.position >= self.target

    @property
    def key(self) -> tuple[str, int]:
        return (self.topic, self.partition)

    @property
    def target(self) -> int:
        return self.plan.high


class Batch:
    """The messages of one transaction: rows for bronze.raw_events, rows for the quarantine, and per partition
    the offsets where the batch starts (the stored value) and ends."""

    __slots__ = ("rows", "quarantine", "start", "end", "value_bytes", "rows_by_topic", "q_by_topic",
                 "inserted_by_topic", "staged")

    def __init__(self) -> None:
        self.rows: list[tuple[str, bytes, bytes, int, int, int, int]] = []  # topic key value part off ts type
        self.quarantine: list[tuple] = []  # rows of bronze.raw_events_quarantine (see quarantine_row)
        self.start: dict[tuple[str, int], int] = {}  # partition -> db offset when the batch started
        self.end: dict[tuple[str, int], int] = {}  # partition -> position when the batch ended
        self.value_bytes = 0
        self.rows_by_topic: Counter[str] = Counter()
        self.q_by_topic: Counter[tuple[str, str]] = Counter()
        self.inserted_by_topic: Counter[str] | None = None  # set by the staged path
        self.staged = False

    @property
    def size(self) -> int:
        return len(self.rows) + len(self.quarantine)

    def add_quarantined(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                        ts_type: int, ts: int, reject: tuple[str, str]) -> None:
        """A message for the quarantine, with its reason and detail (``reject``)."""
        self.quarantine.append(quarantine_row(topic, partition, offset, key, value, ts_type, ts, reject))
        self.q_by_topic[(topic, reject[0])] += 1


def quarantine_row(topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                   ts_type: int, ts: int, reject: tuple[str, str]) -> tuple:
    """The bronze.raw_events_quarantine row of a message (raw bytes kept; event_ts only when valid)."""
    valid_ts = poison.classify_timestamp(ts_type, ts) is None
    return (topic, partition, offset, ms_to_utc_naive(ts) if valid_ts else None,
            ts if ts_type != 0 else None, ts_type, key, value, None if value is None else len(value),
            reject[0], reject[1])


class BatchAssembler:
    """Consumes the run's partitions from an ``assign()``ed consumer and fills batches.

    ``add`` the partitions, ``assign`` them, then ``fill`` one batch after the other. After a rollback (or when
    another loader moved a partition) ``seek`` the stored offsets: the assembler drops what it prefetched and
    continues there. ``stalled`` is set when nothing arrived for ``settings.stall_seconds`` while partitions
    were still behind their target.
    """

    def __init__(self, consumer: Any, settings: LoaderSettings) -> None:
        self.consumer = consumer
        self.settings = settings
        self.parts: dict[tuple[str, int], PartitionState] = {}
        self.encoders: dict[str, RowEncoder] = {}
        self.last_progress = time.monotonic()  # when Kafka last delivered something
        self.stalled = False
        self._pending: deque = deque()  # consumed, not yet in a batch
        self._classify = poison.make_classifier(settings.max_value_bytes)

    def add(self, part: PartitionState) -> None:
        self.parts[part.key] = part
        self.encoders.setdefault(part.topic, RowEncoder(part.topic))

    def unfinished(self) -> list[PartitionState]:
        return [p for p in self.parts.values() if not p.done]

    def assign(self) -> None:
        """(Re)assign every unfinished partition at its position; drops prefetched messages."""
        self._pending.clear()
        active = [TopicPartition(p.topic, p.partition, p.position) for p in self.unfinished()]
        self.consumer.assign(active)
        if active:  # a pause (set when a partition reached its target) survives assign(): lift it
            self.consumer.resume([TopicPartition(tp.topic, tp.partition) for tp in active])

    def seek(self, stored: Mapping[tuple[str, int], int]) -> None:
        """Continue every partition from its stored offset (those not in ``stored`` from their own db_offset)."""
        for key, p in self.parts.items():
            p.reset_to(stored.get(key, p.db_offset))
        self.assign()

    def pause(self, p: PartitionState) -> None:
        try:
            self.consumer.pause([TopicPartition(p.topic, p.partition)])
        except KafkaException:  # pragma: no cover - pausing is only an optimisation
            pass

    def fill(self, batch: Batch, limit: int, deadline: float, sink: Callable[[bytes], None]) -> None:
        """Consume, classify and encode messages into the batch (and the COPY stream) until it is full: ``limit``
        messages, ``settings.batch_max_bytes`` value bytes, every partition drained, or ``deadline``."""
        try:
            self._fill(batch, limit, deadline, sink)
        finally:  # even when the COPY fails midway: the batch must describe exactly what it holds
            for key in batch.start:
                batch.end[key] = self.parts[key].position

    def _drained(self, p: PartitionState, batch: Batch) -> None:
        """Everything below the partition's target was delivered (gaps such as transaction markers included)."""
        batch.start.setdefault(p.key, p.db_offset)
        p.position = max(p.position, p.target)
        p.done = True
        self.pause(p)

    def _fill(self, batch: Batch, limit: int, deadline: float, sink: Callable[[bytes], None]) -> None:
        s = self.settings
        parts = self.parts
        pending = self._pending
        consumer = self.consumer
        encoders = self.encoders
        classify = self._classify
        max_bytes = s.batch_max_bytes
        rows = batch.rows
        start = batch.start
        rows_by_topic = batch.rows_by_topic
        chunk: list[bytes] = []
        chunk_bytes = 0
        eof_code = KafkaError._PARTITION_EOF
        active = sum(1 for p in parts.values() if not p.done)
        n = batch.size  # messages in the batch (rows + quarantined), kept locally: the loop is hot
        while active and n < limit and batch.value_bytes < max_bytes:
            if not pending:
                now = time.monotonic()
                if now >= deadline:
                    break
                if now - self.last_progress > s.stall_seconds:
                    self.stalled = True
                    break
                msgs = consumer.consume(s.consume_batch, min(0.25, max(0.0, deadline - now)))
                if not msgs:
                    continue
                self.last_progress = time.monotonic()
                pending.extend(msgs)
            while pending and n < limit:
                m = pending.popleft()
                err = m.error()
                if err is not None:
                    if err.code() == eof_code:
                        p = parts.get((m.topic(), m.partition()))
                        if p is not None and not p.done and m.offset() >= p.target:
                            self._drained(p, batch)  # the end of the log: the drain is complete
                            active -= 1
                        continue
                    if err.fatal():
                        raise KafkaException(err)
                    log.warning("Kafka: %s (%s:%s)", err, m.topic(), m.partition())
                    continue
                topic = m.topic()
                partition = m.partition()
                tp = (topic, partition)
                p = parts.get(tp)
                if p is None or p.done:
                    continue
                offset = m.offset()
                if offset < p.position:  # already handled (a re-fetch after a seek)
                    continue
                if tp not in start:
                    start[tp] = p.db_offset
                if offset >= p.target:  # beyond this run's scope; everything before it was delivered
                    self._drained(p, batch)
                    active -= 1
                    continue
                key = m.key()
                value = m.value()
                ts_type, ts = m.timestamp()
                # headers() is None when the message has none (cheap); classify checks the contract headers
                reject = classify(key, value, ts_type, ts, m.headers())
                n += 1
                if reject is None:
                    rows.append((topic, key, value, partition, offset, ts, ts_type))
                    rows_by_topic[topic] += 1
                    row = encoders[topic].encode(key, value, partition, offset, ts)
                    chunk.append(row)
                    chunk_bytes += len(row)
                    batch.value_bytes += len(value)
                    if chunk_bytes >= COPY_CHUNK_BYTES:
                        sink(b"".join(chunk))
                        chunk.clear()
                        chunk_bytes = 0
                else:
                    batch.add_quarantined(topic, partition, offset, key, value, ts_type, ts, reject)
                    if value is not None:
                        batch.value_bytes += len(value)
                p.position = offset + 1
                if p.position >= p.target:
                    self._drained(p, batch)
                    active -= 1
        if chunk:
            sink(b"".join(chunk))
