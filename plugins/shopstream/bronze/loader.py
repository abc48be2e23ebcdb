"""Kafka -> bronze.raw_events loader: bounded drain, exactly-once rows, offsets stored with the data.

Plain Python (confluent-kafka + psycopg 3); Airflow only in ``airflow_entry`` and the DAG.

One run of ``BronzeLoader``:
1. applies the bronze DDL (idempotent, serialised by an advisory lock);
2. for each assigned partition reads the watermarks (the high watermark is this run's target: a bounded
   drain) and the stored next offset from bronze.consumer_offsets (PostgreSQL is the source of truth;
   Kafka's committed offsets are only a copy for lag tools), then ``assign()``s the partitions at those
   offsets (no group membership, no rebalancing);
3. loops over batches until every partition reached its target (or a message/time budget ran out). A
   batch is one transaction:
     - take the load-barrier advisory lock (shared; see 004_stable_high_watermark.sql) and lock the
       consumer_offsets rows of the active partitions (sorted: no deadlocks), compare them with what this
       loader last read/wrote (compare-and-set): a row that moved means another loader owns that range ->
       adopt its offset and seek there, never write the same messages twice;
     - stream the messages straight into ``COPY bronze.raw_events FROM STDIN (FORMAT BINARY)`` while
       consuming (Kafka fetch, validation and encoding overlap with the server's inserts); poison messages
       go to bronze.raw_events_quarantine instead, with their reason;
     - update the offsets rows to the new positions, COMMIT; then commit the same offsets to Kafka
       (asynchronously, informational only).
   The UNIQUE (topic, partition, offset) constraint is the safety net: a batch that hits it (offsets were
   reset, or another consumer group loaded the same topic) is rolled back and redone through a staging
   table with INSERT ... ON CONFLICT DO NOTHING, so each message is still stored once; the loader stays on
   that path while batches keep meeting stored rows. A batch PostgreSQL refuses for its data (jsonb limits
   that Python did not catch) is redone with the offending rows isolated (bisection with savepoints) and
   quarantined as ``jsonb_rejected``.
4. returns (and logs) per-topic counts: read, inserted, already present, quarantined, remaining lag.

A lost database connection (restart) is retried for ``db_retry_seconds``: reconnect, re-read the offsets
(they say whether the last batch committed), seek there. Killing the process at any point is safe: an
open transaction rolls back and the next run starts at the stored offsets.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from shopstream import faults, retry
from shopstream.bronze import poison
from shopstream.bronze.copyrows import COPY_COLUMNS, SIGNATURE, TRAILER, RowEncoder, ms_to_utc_naive
from shopstream.bronze.planning import PartitionPlan, plan_partition

log = logging.getLogger("shopstream.bronze")

DEFAULT_GROUP = "shopstream-bronze"
# Every loader transaction holds this advisory lock shared; bronze.stable_high_watermark() takes it
# exclusively for an instant (include/sql/bronze/004_stable_high_watermark.sql). b"cbronzee" as a bigint.
LOAD_BARRIER_KEY = 7161412180392961381
# Serialises DDL application between loaders starting together. b"cbronzeD" as a bigint.
DDL_LOCK_KEY = int.from_bytes(b"cbronzeD", "big")

_STAGE = "pg_temp.bronze_stage"
_STAGE_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS bronze_stage (topic VARCHAR NOT NULL, record_key VARCHAR, "
    'record_value JSONB NOT NULL, "partition" INTEGER NOT NULL, "offset" BIGINT NOT NULL, '
    "event_ts TIMESTAMP NOT NULL) ON COMMIT DELETE ROWS"
)
_INSERT_FROM_STAGE = (
    "WITH ins AS (INSERT INTO bronze.raw_events " + COPY_COLUMNS + " "
    'SELECT topic, record_key, record_value, "partition", "offset", event_ts FROM ' + _STAGE + " "
    'ORDER BY topic, "partition", "offset" '
    'ON CONFLICT (topic, "partition", "offset") DO NOTHING RETURNING topic) '
    "SELECT topic, count(*) FROM ins GROUP BY topic"
)
_INSERT_QUARANTINE = (
    'INSERT INTO bronze.raw_events_quarantine (topic, "partition", "offset", event_ts, timestamp_ms, '
    "timestamp_type, record_key, record_value, value_bytes, reason, detail) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    'ON CONFLICT (topic, "partition", "offset") DO NOTHING'
)

_COPY_CHUNK_BYTES = 256 * 1024


def sql_dir() -> Path:
    """include/sql/bronze of this checkout (SHOPSTREAM_BRONZE_SQL_DIR or SHOPSTREAM_ROOT override it)."""
    if os.environ.get("SHOPSTREAM_BRONZE_SQL_DIR"):
        return Path(os.environ["SHOPSTREAM_BRONZE_SQL_DIR"])
    root = os.environ.get("SHOPSTREAM_ROOT")
    base = Path(root) if root else Path(__file__).resolve().parents[3]
    return base / "include" / "sql" / "bronze"


def apply_ddl(conn: psycopg.Connection | str) -> list[str]:
    """Apply include/sql/bronze/*.sql in name order, in one transaction, serialised between loaders."""
    files = sorted(sql_dir().glob("*.sql"))
    if not files:
        raise FileNotFoundError(f"no bronze DDL in {sql_dir()}")
    own = isinstance(conn, str)
    c = psycopg.connect(conn) if own else conn
    try:
        with c.transaction():
            c.execute("SELECT pg_advisory_xact_lock(%s)", [DDL_LOCK_KEY])
            for path in files:
                c.execute(path.read_text())
    finally:
        if own:
            c.close()
    return [p.name for p in files]


@dataclass(frozen=True)
class LoaderSettings:
    consumer_group: str = DEFAULT_GROUP
    batch_max_messages: int = 20_000  # rows + quarantined per transaction
    batch_max_bytes: int = 32 * 1024 * 1024  # value bytes per transaction
    batch_max_seconds: float = 2.0  # a batch commits at the latest this long after it started
    max_value_bytes: int = poison.DEFAULT_MAX_VALUE_BYTES  # larger values are quarantined (oversize)
    max_messages: int | None = None  # budget per run (None: drain to the high watermarks)
    max_seconds: float | None = None  # budget per run (the batch in flight is finished)
    stall_seconds: float = 60.0  # no message and no end-of-partition for this long -> LoaderStalled
    db_retry_seconds: float = 60.0  # how long a lost database connection is retried
    commit_to_kafka: bool = True  # copy the offsets to Kafka after each DB commit (for lag tools)
    apply_ddl: bool = True
    watermark_timeout: float = 15.0
    consume_batch: int = 5_000  # messages per consumer.consume() call


class LoaderStalled(RuntimeError):
    """Nothing arrived from Kafka for stall_seconds while partitions were still behind their target."""


@dataclass
class TopicCounts:
    read: int = 0  # messages of committed batches (= inserted + already_present + quarantined)
    inserted: int = 0
    already_present: int = 0  # stored by an earlier load (UNIQUE safety net)
    quarantined: int = 0
    remaining_lag: int = 0  # high watermark at the end - stored next offset, over the topic's partitions
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)


@dataclass
class LoadResult:
    topics: dict[str, TopicCounts]
    partitions: list[dict[str, Any]]
    consumer_group: str
    stopped_by: str  # drained | max_messages | max_seconds
    seconds: float
    batches: int = 0
    safety_net_batches: int = 0  # batches redone through staging + ON CONFLICT DO NOTHING
    rejected_by_postgres: int = 0  # rows isolated by bisection after PostgreSQL refused a batch
    offset_conflicts: int = 0  # times another loader had moved one of our partitions (CAS lost)
    db_reconnects: int = 0

    def totals(self) -> dict[str, int]:
        keys = ("read", "inserted", "already_present", "quarantined", "remaining_lag")
        return {k: sum(getattr(c, k) for c in self.topics.values()) for k in keys}

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["totals"] = self.totals()
        return out


@dataclass
class _Part:
    topic: str
    partition: int
    plan: PartitionPlan
    db_offset: int  # the value this loader last read from / wrote to consumer_offsets (CAS expectation)
    position: int  # next offset to process; > db_offset while a batch is open
    done: bool = False

    @property
    def key(self) -> tuple[str, int]:
        return (self.topic, self.partition)

    @property
    def target(self) -> int:
        return self.plan.high


class _Batch:
    __slots__ = ("rows", "quarantine", "start", "end", "value_bytes", "rows_by_topic", "q_by_topic",
                 "inserted_by_topic", "staged")

    def __init__(self) -> None:
        self.rows: list[tuple[str, bytes, bytes, int, int, int, int]] = []  # topic key value part off ts type
        self.quarantine: list[tuple] = []
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


_TRANSIENT = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
              KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.REQUEST_TIMED_OUT, KafkaError._TIMED_OUT,
              KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._UNKNOWN_PARTITION,
              KafkaError._UNKNOWN_TOPIC}


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


def _kafka_error_cb(err: KafkaError) -> None:
    if err.fatal():
        log.error("Kafka fatal error: %s", err)
    else:  # transport errors while a broker restarts: librdkafka reconnects by itself
        log.warning("Kafka: %s", err)


class BronzeLoader:
    """Load Kafka partitions into bronze.raw_events. ``run()`` once per instance."""

    def __init__(
        self,
        conninfo: str,
        consumer_config: dict[str, Any],
        *,
        topics: Sequence[str] | None = None,
        partitions: Sequence[tuple[str, int]] | None = None,
        settings: LoaderSettings | None = None,
        consumer_factory: Callable[[dict[str, Any]], Any] = Consumer,
    ):
        if (topics is None) == (partitions is None):
            raise ValueError("give exactly one of topics= or partitions=")
        self.conninfo = conninfo
        self.settings = settings or LoaderSettings()
        self.consumer_config = build_consumer_config(consumer_config, self.settings.consumer_group)
        self._topics = list(topics) if topics is not None else None
        self._explicit = [(t, int(p)) for t, p in partitions] if partitions is not None else None
        self._consumer_factory = consumer_factory
        self._conn: psycopg.Connection | None = None
        self._consumer: Any = None
        self._parts: dict[tuple[str, int], _Part] = {}
        self._encoders: dict[str, RowEncoder] = {}
        self._pending: deque = deque()
        self._counts: dict[str, TopicCounts] = {}
        self._staging_mode = False
        self._last_progress = 0.0
        self._stalled = False
        self._stats = Counter()

    # ------------------------------------------------------------------------------------------ run

    def run(self) -> LoadResult:
        s = self.settings
        started = time.monotonic()
        deadline = started + s.max_seconds if s.max_seconds is not None else None
        self._conn = self._connect()
        self._consumer = self._consumer_factory(self.consumer_config)
        stopped_by = "drained"
        try:
            if s.apply_ddl:
                apply_ddl(self._conn)
            self._start()
            budget = s.max_messages
            fault_checked = False
            self._last_progress = time.monotonic()
            while any(not p.done for p in self._parts.values()):
                if budget is not None and budget <= 0:
                    stopped_by = "max_messages"
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    stopped_by = "max_seconds"
                    break
                limit = s.batch_max_messages if budget is None else min(budget, s.batch_max_messages)
                batch_deadline = time.monotonic() + s.batch_max_seconds
                if deadline is not None:
                    batch_deadline = min(batch_deadline, deadline)
                batch = self._process_batch(limit, batch_deadline)
                if budget is not None and batch is not None:
                    budget -= batch.size
                if not fault_checked and batch is not None and batch.size:
                    fault_checked = True
                    faults.checkpoint("bronze.load")  # after the first committed batch (shopstream.faults)
                if self._stalled:
                    behind = [f"{p.topic}:{p.partition}@{p.position}/{p.target}"
                              for p in self._parts.values() if not p.done]
                    raise LoaderStalled(f"no message from Kafka for {s.stall_seconds:.0f} s; still behind: "
                                        f"{', '.join(behind[:20])}")
            result = self._result(stopped_by, time.monotonic() - started)
        finally:
            self._close()
        self._log_result(result)
        return result

    # ------------------------------------------------------------------------------------------ start

    def _connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self.conninfo, autocommit=False, application_name="shopstream-bronze-loader")
        return conn

    def _resolve_partitions(self) -> list[tuple[str, int]]:
        if self._explicit is not None:
            wanted = self._explicit
            topics = sorted({t for t, _ in wanted})
        else:
            wanted = None
            topics = list(self._topics)
        found: list[tuple[str, int]] = []
        for topic in topics:
            md = self._consumer.list_topics(topic=topic, timeout=self.settings.watermark_timeout)
            tmd = md.topics.get(topic)
            if tmd is None or tmd.error is not None:
                raise KafkaException(tmd.error if tmd is not None else KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
            found.extend((topic, p) for p in tmd.partitions)
        if wanted is None:
            return sorted(found)
        missing = sorted(set(wanted) - set(found))
        if missing:
            raise ValueError(f"partitions not in Kafka: {missing}")
        return sorted(wanted)

    def _start(self) -> None:
        s = self.settings
        tps = self._resolve_partitions()
        marks = {}
        for topic, part in tps:
            marks[(topic, part)] = watermarks(self._consumer, topic, part, s.watermark_timeout)
        with self._conn.transaction():
            cur = self._conn.cursor()
            cur.executemany(
                'INSERT INTO bronze.consumer_offsets (consumer_group, topic, "partition", next_offset) '
                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [(s.consumer_group, t, p, marks[(t, p)][0]) for t, p in tps])
            stored = self._read_offsets(cur, tps)
        for topic, part in tps:
            low, high = marks[(topic, part)]
            plan = plan_partition(topic, part, stored.get((topic, part)), low, high)
            if plan.note:
                log.warning("%s:%s: %s", topic, part, plan.note)
            db = stored[(topic, part)]
            p = _Part(topic, part, plan, db_offset=db, position=max(db, plan.start))
            p.done = p.position >= p.target
            self._parts[(topic, part)] = p
            self._counts.setdefault(topic, TopicCounts())
            self._encoders.setdefault(topic, RowEncoder(topic))
        pending = sum(max(0, p.target - p.position) for p in self._parts.values())
        log.info("bronze load: group %s, %d partitions, %d messages to drain (high watermarks at start)",
                 s.consumer_group, len(tps), pending)
        self._assign()

    def _read_offsets(self, cur: psycopg.Cursor, tps: Iterable[tuple[str, int]],
                      lock: bool = False) -> dict[tuple[str, int], int]:
        tps = sorted(tps)
        if not tps:
            return {}
        cur.execute(
            'SELECT topic, "partition", next_offset FROM bronze.consumer_offsets '
            'WHERE consumer_group = %s AND (topic, "partition") IN (SELECT * FROM unnest(%s::text[], %s::int[])) '
            'ORDER BY topic, "partition"' + (" FOR UPDATE" if lock else ""),
            [self.settings.consumer_group, [t for t, _ in tps], [p for _, p in tps]])
        return {(t, p): o for t, p, o in cur.fetchall()}

    def _assign(self) -> None:
        """(Re)assign every unfinished partition at its position; drops prefetched messages."""
        self._pending.clear()
        active = [TopicPartition(p.topic, p.partition, p.position) for p in self._parts.values() if not p.done]
        self._consumer.assign(active)
        if active:  # a pause (set when a partition reached its target) survives assign(): lift it
            self._consumer.resume([TopicPartition(tp.topic, tp.partition) for tp in active])

    def _pause(self, p: _Part) -> None:
        try:
            self._consumer.pause([TopicPartition(p.topic, p.partition)])
        except KafkaException:  # pragma: no cover - pausing is only an optimisation
            pass

    # ------------------------------------------------------------------------------------------ batches

    def _process_batch(self, limit: int, deadline: float) -> _Batch | None:
        batch = _Batch()
        try:
            self._write_streaming(batch, limit, deadline, staged=self._staging_mode)
        except psycopg.Error as exc:
            kind = self._error_kind(exc)
            self._rollback_quietly()
            if kind == "connection":
                self._recover_connection(batch, exc)
                return batch
            if kind == "retry":
                log.warning("batch dropped (%s); re-reading the stored offsets", exc.diag.message_primary)
                self._resync_from_db()
                return None
            if kind == "unique":
                log.warning("batch of %d rows met rows already in bronze (%s); redoing it through staging + "
                            "ON CONFLICT DO NOTHING", len(batch.rows), exc.diag.message_primary)
                self._staging_mode = True
                if not self._replay(batch, validate=False):
                    return None
            elif kind == "data":
                log.warning("PostgreSQL refused a value of a batch (%s); isolating it", exc.diag.message_primary)
                if not self._replay(batch, validate=True):
                    return None
            else:
                raise
        self._after_commit(batch)
        return batch

    def _write_streaming(self, batch: _Batch, limit: int, deadline: float, staged: bool) -> None:
        conn = self._conn
        cur = conn.cursor()
        self._lock_and_reconcile(cur)
        if staged:
            cur.execute(_STAGE_DDL)
            target = _STAGE
        else:
            target = "bronze.raw_events"
        with cur.copy(f"COPY {target} {COPY_COLUMNS} FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(SIGNATURE)
            self._fill(batch, limit, deadline, copy.write)
            copy.write(TRAILER)
        if staged:
            batch.staged = True
            cur.execute(_INSERT_FROM_STAGE)
            batch.inserted_by_topic = Counter({t: n for t, n in cur.fetchall()})
        self._finish_batch(cur, batch)
        conn.commit()

    def _lock_and_reconcile(self, cur: psycopg.Cursor) -> None:
        """Lock the offsets rows of the active partitions; adopt any another loader has moved meanwhile."""
        cur.execute("SELECT pg_advisory_xact_lock_shared(%s)", [LOAD_BARRIER_KEY])
        active = [p.key for p in self._parts.values() if not p.done]
        stored = self._read_offsets(cur, active, lock=True)
        moved = False
        for key in active:
            p = self._parts[key]
            db = stored.get(key)
            if db is None:  # the row was deleted (offsets reset): recreate it at our last known value
                cur.execute(
                    'INSERT INTO bronze.consumer_offsets (consumer_group, topic, "partition", next_offset) '
                    "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [self.settings.consumer_group, p.topic, p.partition, p.db_offset])
                stored2 = self._read_offsets(cur, [key], lock=True)
                db = stored2[key]
            if db != p.db_offset:
                self._stats["offset_conflicts"] += 1
                log.warning("%s:%s: stored offset moved %d -> %d under us (another loader); continuing at %d",
                            p.topic, p.partition, p.db_offset, db, db)
                p.db_offset = db
                p.position = max(db, p.plan.start)
                p.done = p.position >= p.target
                moved = True
        if moved:
            self._assign()

    def _fill(self, batch: _Batch, limit: int, deadline: float, sink: Callable[[bytes], None]) -> None:
        """Consume, classify and encode messages into the batch (and the COPY stream) until it is full."""
        try:
            self._fill_loop(batch, limit, deadline, sink)
        finally:  # even when the COPY fails midway: the batch must describe exactly what it holds
            for key in batch.start:
                batch.end[key] = self._parts[key].position

    def _fill_loop(self, batch: _Batch, limit: int, deadline: float, sink: Callable[[bytes], None]) -> None:
        s = self.settings
        parts = self._parts
        pending = self._pending
        consumer = self._consumer
        encoders = self._encoders
        classify = poison.make_classifier(s.max_value_bytes)
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
                if now - self._last_progress > s.stall_seconds:
                    self._stalled = True
                    break
                msgs = consumer.consume(s.consume_batch, min(0.25, max(0.0, deadline - now)))
                if not msgs:
                    continue
                self._last_progress = time.monotonic()
                pending.extend(msgs)
            while pending and n < limit:
                m = pending.popleft()
                err = m.error()
                if err is not None:
                    if err.code() == eof_code:
                        p = parts.get((m.topic(), m.partition()))
                        if p is not None and not p.done and m.offset() >= p.target:
                            # Everything below the end of the log was delivered: the drain is complete
                            # (gaps such as transaction markers included).
                            if p.key not in start:
                                start[p.key] = p.db_offset
                            p.position = max(p.position, p.target)
                            p.done = True
                            active -= 1
                            self._pause(p)
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
                    p.position = max(p.position, p.target)
                    p.done = True
                    active -= 1
                    self._pause(p)
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
                    if chunk_bytes >= _COPY_CHUNK_BYTES:
                        data = b"".join(chunk)
                        chunk.clear()
                        chunk_bytes = 0
                        sink(data)
                else:
                    batch.quarantine.append(_quarantine_row(topic, partition, offset, key, value, ts_type, ts,
                                                            reject))
                    batch.q_by_topic[(topic, reject[0])] += 1
                    if value is not None:
                        batch.value_bytes += len(value)
                p.position = offset + 1
                if p.position >= p.target:
                    p.done = True
                    active -= 1
                    self._pause(p)
        if chunk:
            data = b"".join(chunk)
            chunk.clear()
            sink(data)

    def _finish_batch(self, cur: psycopg.Cursor, batch: _Batch) -> None:
        """Quarantine rows and offsets updates: the same transaction as the rows."""
        if batch.quarantine:
            cur.executemany(_INSERT_QUARANTINE, batch.quarantine)
        for key in sorted(batch.end):
            if batch.end[key] == batch.start[key]:
                continue
            cur.execute(
                "UPDATE bronze.consumer_offsets SET next_offset = %s, updated_at = now() AT TIME ZONE 'utc' "
                'WHERE consumer_group = %s AND topic = %s AND "partition" = %s AND next_offset = %s',
                [batch.end[key], self.settings.consumer_group, key[0], key[1], batch.start[key]])
            if cur.rowcount != 1:  # cannot happen while we hold the row lock; never write past it
                raise RuntimeError(f"offsets compare-and-set failed for {key} (expected {batch.start[key]})")

    def _after_commit(self, batch: _Batch) -> None:
        self._stats["batches"] += 1
        for key, end in batch.end.items():
            self._parts[key].db_offset = end
        inserted = batch.inserted_by_topic if batch.inserted_by_topic is not None else batch.rows_by_topic
        for topic, n in batch.rows_by_topic.items():
            c = self._counts[topic]
            c.read += n
            c.inserted += inserted.get(topic, 0)
            c.already_present += n - inserted.get(topic, 0)
        for (topic, reason), n in batch.q_by_topic.items():
            c = self._counts[topic]
            c.read += n
            c.quarantined += n
            c.quarantined_by_reason[reason] = c.quarantined_by_reason.get(reason, 0) + n
        if batch.staged:
            present = sum(batch.rows_by_topic.values()) - sum(inserted.values())
            if present == 0 and batch.rows:
                if self._staging_mode:
                    log.info("batch met no stored rows: back to the direct COPY path")
                self._staging_mode = False
        moved = [TopicPartition(k[0], k[1], e) for k, e in batch.end.items() if e != batch.start[k]]
        if moved and self.settings.commit_to_kafka:
            try:
                self._consumer.commit(offsets=moved, asynchronous=True)
            except KafkaException as exc:  # informational copy only; PostgreSQL holds the truth
                log.debug("Kafka offset commit failed: %s", exc)

    # ------------------------------------------------------------------------------------------ redo paths

    def _replay(self, batch: _Batch, validate: bool) -> bool:
        """Redo a rolled-back batch via staging + ON CONFLICT DO NOTHING. False if another loader took over."""
        try:
            self._replay_once(batch, validate)
            return True
        except _LostRace:
            self._rollback_quietly()
            self._resync_from_db()
            return False
        except psycopg.Error as exc:
            kind = self._error_kind(exc)
            self._rollback_quietly()
            if kind == "data" and not validate:
                return self._replay(batch, validate=True)
            if kind == "connection":
                self._recover_connection(batch, exc)
                return False
            if kind == "retry":
                self._resync_from_db()
                return False
            raise

    def _replay_once(self, batch: _Batch, validate: bool) -> None:
        conn = self._conn
        cur = conn.cursor()
        cur.execute("SELECT pg_advisory_xact_lock_shared(%s)", [LOAD_BARRIER_KEY])
        stored = self._read_offsets(cur, batch.start, lock=True)
        for key, expected in batch.start.items():
            if stored.get(key) != expected:
                self._stats["offset_conflicts"] += 1
                log.warning("%s:%s: stored offset moved during the redo (%s -> %s); dropping the batch",
                            key[0], key[1], expected, stored.get(key))
                raise _LostRace()
        cur.execute(_STAGE_DDL)
        if validate:
            rejected = self._isolate_rejected(cur, batch.rows)
            if rejected:
                keep = []
                for i, row in enumerate(batch.rows):
                    if i in rejected:
                        topic, key, value, partition, offset, ts, ts_type = row
                        batch.quarantine.append(_quarantine_row(
                            topic, partition, offset, key, value, ts_type, ts,
                            (poison.JSONB_REJECTED, rejected[i])))
                        batch.q_by_topic[(topic, poison.JSONB_REJECTED)] += 1
                        batch.rows_by_topic[topic] -= 1
                    else:
                        keep.append(row)
                batch.rows = keep
                self._stats["rejected_by_postgres"] += len(rejected)
        self._copy_rows(cur, _STAGE, batch.rows)
        cur.execute(_INSERT_FROM_STAGE)
        batch.inserted_by_topic = Counter({t: n for t, n in cur.fetchall()})
        batch.staged = True
        self._finish_batch(cur, batch)
        conn.commit()
        self._stats["safety_net_batches"] += 1

    def _copy_rows(self, cur: psycopg.Cursor, target: str, rows: Sequence[tuple]) -> None:
        with cur.copy(f"COPY {target} {COPY_COLUMNS} FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(SIGNATURE)
            chunk: list[bytes] = []
            size = 0
            for topic, key, value, partition, offset, ts, _ in rows:
                row = self._encoders[topic].encode(key, value, partition, offset, ts)
                chunk.append(row)
                size += len(row)
                if size >= _COPY_CHUNK_BYTES:
                    copy.write(b"".join(chunk))
                    chunk, size = [], 0
            chunk.append(TRAILER)
            copy.write(b"".join(chunk))

    def _isolate_rejected(self, cur: psycopg.Cursor, rows: Sequence[tuple]) -> dict[int, str]:
        """Indexes of the rows PostgreSQL refuses, with its message (bisection over savepoints)."""
        bad: dict[int, str] = {}

        def probe(lo: int, hi: int) -> None:
            cur.execute("SAVEPOINT bronze_probe")
            error = None
            try:
                self._copy_rows(cur, _STAGE, rows[lo:hi])
            except psycopg.Error as exc:
                if self._error_kind(exc) != "data":
                    raise
                error = exc
            cur.execute("ROLLBACK TO SAVEPOINT bronze_probe")
            if error is None:
                return
            if hi - lo == 1:
                d = error.diag
                bad[lo] = "; ".join(x for x in (d.message_primary, d.message_detail) if x)
                return
            mid = (lo + hi) // 2
            probe(lo, mid)
            probe(mid, hi)

        if rows:
            probe(0, len(rows))
        return bad

    # ------------------------------------------------------------------------------------------ failures

    def _error_kind(self, exc: psycopg.Error) -> str:
        state = exc.sqlstate or ""
        if state == "23505":
            return "unique"
        if state[:2] in ("22", "54"):  # data exception; program limit (jsonb nesting/size)
            return "data"
        if state in ("40P01", "40001"):  # deadlock / serialization: drop the batch, re-read the offsets
            return "retry"
        if self._conn is None or self._conn.closed or self._conn.broken:
            return "connection"
        if isinstance(exc, psycopg.OperationalError) and (not state or state[:2] in ("08", "57")):
            return "connection"
        return "other"

    def _rollback_quietly(self) -> None:
        try:
            if self._conn is not None and not self._conn.closed:
                self._conn.rollback()
        except psycopg.Error:
            pass

    def _recover_connection(self, batch: _Batch, exc: BaseException) -> None:
        """Reconnect, learn from the stored offsets whether the batch committed, seek there."""
        s = self.settings
        log.warning("database connection lost (%s); reconnecting for up to %.0f s", exc, s.db_retry_seconds)
        try:
            if self._conn is not None:
                self._conn.close()
        except Exception:  # noqa: BLE001
            pass
        self._conn = None

        def reconnect(attempt: int) -> dict[tuple[str, int], int]:
            try:
                self._conn = self._connect()
                with self._conn.transaction():
                    return self._read_offsets(self._conn.cursor(), self._parts)
            except psycopg.OperationalError:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                raise

        try:
            stored = retry.call(reconnect, retry_if=psycopg.OperationalError,
                                wait=lambda attempt, _: retry.exponential_delay(attempt, 0.5, 5.0),
                                deadline=time.monotonic() + s.db_retry_seconds)
        except psycopg.OperationalError as again:
            raise again from exc
        self._stats["db_reconnects"] += 1
        moved = {k: e for k, e in batch.end.items() if e != batch.start[k]}
        if moved and all(stored.get(k) == e for k, e in moved.items()):
            log.warning("the batch in flight had committed (%d rows); counting it", len(batch.rows))
            self._after_commit(batch)
        self._adopt(stored)
        self._last_progress = time.monotonic()

    def _resync_from_db(self) -> None:
        with self._conn.transaction():
            stored = self._read_offsets(self._conn.cursor(), self._parts)
        self._adopt(stored)

    def _adopt(self, stored: dict[tuple[str, int], int]) -> None:
        for key, p in self._parts.items():
            db = stored.get(key, p.db_offset)
            p.db_offset = db
            p.position = max(db, p.plan.start)
            p.done = p.position >= p.target
        self._assign()

    # ------------------------------------------------------------------------------------------ end

    def _result(self, stopped_by: str, seconds: float) -> LoadResult:
        parts_out = []
        for p in sorted(self._parts.values(), key=lambda p: p.key):
            high = p.target
            try:
                high = watermarks(self._consumer, p.topic, p.partition, 5.0)[1]
            except KafkaException:
                pass
            lag = max(0, high - p.db_offset)
            self._counts[p.topic].remaining_lag += lag
            parts_out.append({"topic": p.topic, "partition": p.partition, "start": p.plan.start,
                              "target": p.target, "next_offset": p.db_offset, "remaining_lag": lag,
                              "note": p.plan.note})
        return LoadResult(
            topics=self._counts, partitions=parts_out, consumer_group=self.settings.consumer_group,
            stopped_by=stopped_by, seconds=round(seconds, 3), batches=self._stats["batches"],
            safety_net_batches=self._stats["safety_net_batches"],
            rejected_by_postgres=self._stats["rejected_by_postgres"],
            offset_conflicts=self._stats["offset_conflicts"], db_reconnects=self._stats["db_reconnects"])

    def _close(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close()
            except Exception:  # noqa: BLE001
                pass
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001
                pass

    @staticmethod
    def _log_result(result: LoadResult) -> None:
        log.info("bronze load %s in %.1f s: %d batches, %d via safety net, %d offset conflicts",
                 result.stopped_by, result.seconds, result.batches, result.safety_net_batches,
                 result.offset_conflicts)
        for topic, c in sorted(result.topics.items()):
            log.info("  %-24s read %9d  inserted %9d  already present %8d  quarantined %6d  remaining lag %8d%s",
                     topic, c.read, c.inserted, c.already_present, c.quarantined, c.remaining_lag,
                     f"  {c.quarantined_by_reason}" if c.quarantined_by_reason else "")


class _LostRace(Exception):
    pass


def _quarantine_row(topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                    ts_type: int, ts: int, reject: tuple[str, str]) -> tuple:
    valid_ts = poison.classify_timestamp(ts_type, ts) is None
    return (topic, partition, offset, ms_to_utc_naive(ts) if valid_ts else None,
            ts if ts_type != 0 else None, ts_type, key, value, None if value is None else len(value),
            reject[0], reject[1])


def load(conninfo: str, consumer_config: dict[str, Any], *, topics: Sequence[str] | None = None,
         partitions: Sequence[tuple[str, int]] | None = None, **settings: Any) -> LoadResult:
    """One bounded load; keyword settings as in LoaderSettings."""
    return BronzeLoader(conninfo, consumer_config, topics=topics, partitions=partitions,
                        settings=LoaderSettings(**settings)).run()


# ---------------------------------------------------------------------------------------------- orchestration
# Used by the DAG (through airflow_entry) and the tests: plain functions, no Airflow.


def list_partitions(consumer_config: dict[str, Any], topics: Sequence[str],
                    timeout: float = 15.0) -> dict[tuple[str, int], tuple[int, int]]:
    """{(topic, partition): (low, high)} for every partition of the topics, straight from the broker."""
    consumer = Consumer(build_consumer_config(consumer_config, DEFAULT_GROUP + "-planner"))
    try:
        out = {}
        for topic in topics:
            tmd = consumer.list_topics(topic=topic, timeout=timeout).topics.get(topic)
            if tmd is None or tmd.error is not None:
                raise KafkaException(tmd.error if tmd is not None else KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
            for p in sorted(tmd.partitions):
                out[(topic, p)] = watermarks(consumer, topic, p, timeout)
        return out
    finally:
        consumer.close()


def plan_groups(conninfo: str, consumer_config: dict[str, Any], topics: Sequence[str], n_groups: int,
                consumer_group: str = DEFAULT_GROUP) -> list[list[str]]:
    """Split the topics' partitions into at most n_groups groups of similar pending work ("topic:p" lists).

    Pending = high watermark - stored next offset (bronze.consumer_offsets; the log start when absent). Only
    a plan: loaders re-read everything themselves and the offsets compare-and-set keeps overlapping or
    outdated plans safe.
    """
    from shopstream.bronze.planning import split_groups

    marks = list_partitions(consumer_config, topics)
    stored: dict[tuple[str, int], int] = {}
    with psycopg.connect(conninfo) as conn:
        exists = conn.execute("SELECT to_regclass('bronze.consumer_offsets') IS NOT NULL").fetchone()[0]
        if exists:
            rows = conn.execute(
                'SELECT topic, "partition", next_offset FROM bronze.consumer_offsets '
                "WHERE consumer_group = %s AND topic = ANY(%s)", [consumer_group, list(topics)]).fetchall()
            stored = {(t, p): o for t, p, o in rows}
    items = []
    for (topic, part), (low, high) in marks.items():
        items.append((topic, part, plan_partition(topic, part, stored.get((topic, part)), low, high).pending))
    groups = split_groups(items, n_groups)
    log.info("bronze plan: %d partitions, %d pending, %d groups: %s", len(items),
             sum(i[2] for i in items), len(groups), groups)
    return groups


def merge_results(results: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Totals per topic (and overall) over several LoadResult.as_dict() outputs (e.g. the mapped tasks)."""
    keys = ("read", "inserted", "already_present", "quarantined", "remaining_lag")
    topics: dict[str, dict[str, Any]] = {}
    extra = Counter()
    n = 0
    for r in results:
        n += 1
        for topic, c in r["topics"].items():
            t = topics.setdefault(topic, {k: 0 for k in keys} | {"quarantined_by_reason": {}})
            for k in keys:
                t[k] += c[k]
            for reason, m in c.get("quarantined_by_reason", {}).items():
                t["quarantined_by_reason"][reason] = t["quarantined_by_reason"].get(reason, 0) + m
        for k in ("batches", "safety_net_batches", "rejected_by_postgres", "offset_conflicts", "db_reconnects"):
            extra[k] += r.get(k, 0)
    totals = {k: sum(t[k] for t in topics.values()) for k in keys}
    return {"loads": n, "topics": dict(sorted(topics.items())), "totals": totals, **dict(extra)}
