"""Kafka -> bronze.raw_events loader: bounded drain, exactly-once rows, offsets stored with the data.

Plain Python (confluent-kafka + psycopg 3); Airflow only in ``airflow_entry`` and the DAG. This module is the loop
and its transactions; its parts live beside it: ``schema`` (the DDL), ``consumer`` (Kafka: config, watermarks,
partitions), ``offsets`` (every bronze.consumer_offsets statement), ``batches`` (messages -> a batch and its COPY
stream) and ``results`` (counts and their log lines).

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

A lost database connection (restart) is retried for ``db_retry_seconds`` (shopstream.retry): reconnect, re-read
the offsets (they say whether the last batch committed), seek there. Killing the process at any point is safe: an
open transaction rolls back and the next run starts at the stored offsets.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from confluent_kafka import Consumer, KafkaException, TopicPartition

from shopstream import faults, retry
from shopstream.bronze import poison
from shopstream.bronze.batches import COPY_CHUNK_BYTES, Batch, BatchAssembler, PartitionState
from shopstream.bronze.consumer import (
    DEFAULT_GROUP,
    build_consumer_config,
    list_partitions,
    topic_partitions,
    watermarks,
)
from shopstream.bronze.copyrows import COPY_COLUMNS, SIGNATURE, TRAILER
from shopstream.bronze.offsets import OffsetStore
from shopstream.bronze.planning import plan_partition, split_groups
from shopstream.bronze.results import LoadResult, TopicCounts, log_load
from shopstream.bronze.schema import apply_ddl

log = logging.getLogger("shopstream.bronze")

# Every loader transaction holds this advisory lock shared; bronze.stable_high_watermark() takes it
# exclusively for an instant (include/sql/bronze/004_stable_high_watermark.sql). b"cbronzee" as a bigint.
LOAD_BARRIER_KEY = 7161412180392961381

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
        self._offsets = OffsetStore(self.settings.consumer_group)
        self._conn: psycopg.Connection | None = None
        self._consumer: Any = None
        self._batches: BatchAssembler | None = None  # set by run(), with the consumer
        self._counts: dict[str, TopicCounts] = {}
        self._staging_mode = False
        self._stats = Counter()

    # ------------------------------------------------------------------------------------------ run

    def run(self) -> LoadResult:
        s = self.settings
        started = time.monotonic()
        deadline = started + s.max_seconds if s.max_seconds is not None else None
        self._conn = self._connect()
        self._consumer = self._consumer_factory(self.consumer_config)
        self._batches = BatchAssembler(self._consumer, s)
        stopped_by = "drained"
        try:
            if s.apply_ddl:
                apply_ddl(self._conn)
            self._start()
            budget = s.max_messages
            fault_checked = False
            self._batches.last_progress = time.monotonic()
            while self._batches.unfinished():
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
                if self._batches.stalled:
                    behind = [f"{p.topic}:{p.partition}@{p.position}/{p.target}" for p in self._batches.unfinished()]
                    raise LoaderStalled(f"no message from Kafka for {s.stall_seconds:.0f} s; still behind: "
                                        f"{', '.join(behind[:20])}")
            result = self._result(stopped_by, time.monotonic() - started)
        finally:
            self._close()
        log_load(result)
        return result

    # ------------------------------------------------------------------------------------------ start

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self.conninfo, autocommit=False, application_name="shopstream-bronze-loader")

    def _resolve_partitions(self) -> list[tuple[str, int]]:
        if self._explicit is not None:
            wanted = self._explicit
            topics = sorted({t for t, _ in wanted})
        else:
            wanted = None
            topics = list(self._topics)
        found = [(topic, p) for topic in topics
                 for p in topic_partitions(self._consumer, topic, self.settings.watermark_timeout)]
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
            self._offsets.create_missing(cur, [(t, p, marks[(t, p)][0]) for t, p in tps])
            stored = self._offsets.read(cur, tps)
        for topic, part in tps:
            low, high = marks[(topic, part)]
            plan = plan_partition(topic, part, stored.get((topic, part)), low, high)
            if plan.note:
                log.warning("%s:%s: %s", topic, part, plan.note)
            self._batches.add(PartitionState.at(plan, stored[(topic, part)]))
            self._counts.setdefault(topic, TopicCounts())
        pending = sum(max(0, p.target - p.position) for p in self._batches.parts.values())
        log.info("bronze load: group %s, %d partitions, %d messages to drain (high watermarks at start)",
                 s.consumer_group, len(tps), pending)
        self._batches.assign()

    # ------------------------------------------------------------------------------------------ batches

    def _process_batch(self, limit: int, deadline: float) -> Batch | None:
        batch = Batch()
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

    def _lock_offsets(self, cur: psycopg.Cursor, tps: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Begin a batch's transaction: the load barrier (shared), then the partitions' offsets rows (locked)."""
        cur.execute("SELECT pg_advisory_xact_lock_shared(%s)", [LOAD_BARRIER_KEY])
        return self._offsets.read(cur, tps, lock=True)

    def _write_streaming(self, batch: Batch, limit: int, deadline: float, staged: bool) -> None:
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
            self._batches.fill(batch, limit, deadline, copy.write)
            copy.write(TRAILER)
        if staged:
            batch.staged = True
            cur.execute(_INSERT_FROM_STAGE)
            batch.inserted_by_topic = Counter({t: n for t, n in cur.fetchall()})
        self._finish_batch(cur, batch)
        conn.commit()

    def _lock_and_reconcile(self, cur: psycopg.Cursor) -> None:
        """Lock the offsets rows of the active partitions; adopt any another loader has moved meanwhile."""
        active = [p.key for p in self._batches.unfinished()]
        stored = self._lock_offsets(cur, active)
        moved = False
        for key in active:
            p = self._batches.parts[key]
            db = stored.get(key)
            if db is None:  # the row was deleted (offsets reset): recreate it at our last known value
                self._offsets.create_missing(cur, [(p.topic, p.partition, p.db_offset)])
                db = self._offsets.read(cur, [key], lock=True)[key]
            if db != p.db_offset:
                self._stats["offset_conflicts"] += 1
                log.warning("%s:%s: stored offset moved %d -> %d under us (another loader); continuing at %d",
                            p.topic, p.partition, p.db_offset, db, db)
                p.reset_to(db)
                moved = True
        if moved:
            self._batches.assign()

    def _finish_batch(self, cur: psycopg.Cursor, batch: Batch) -> None:
        """Quarantine rows and offsets updates: the same transaction as the rows."""
        if batch.quarantine:
            cur.executemany(_INSERT_QUARANTINE, batch.quarantine)
        for key in sorted(batch.end):
            if batch.end[key] != batch.start[key]:
                self._offsets.advance(cur, key, batch.start[key], batch.end[key])

    def _after_commit(self, batch: Batch) -> None:
        self._stats["batches"] += 1
        for key, end in batch.end.items():
            self._batches.parts[key].db_offset = end
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

    def _replay(self, batch: Batch, validate: bool) -> bool:
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

    def _replay_once(self, batch: Batch, validate: bool) -> None:
        conn = self._conn
        cur = conn.cursor()
        stored = self._lock_offsets(cur, batch.start)
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
                        batch.add_quarantined(topic, partition, offset, key, value, ts_type, ts,
                                              (poison.JSONB_REJECTED, rejected[i]))
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
        encoders = self._batches.encoders
        with cur.copy(f"COPY {target} {COPY_COLUMNS} FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(SIGNATURE)
            chunk: list[bytes] = []
            size = 0
            for topic, key, value, partition, offset, ts, _ in rows:
                row = encoders[topic].encode(key, value, partition, offset, ts)
                chunk.append(row)
                size += len(row)
                if size >= COPY_CHUNK_BYTES:
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

    def _recover_connection(self, batch: Batch, exc: BaseException) -> None:
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
                    return self._offsets.read(self._conn.cursor(), self._batches.parts)
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
        self._batches.seek(stored)
        self._batches.last_progress = time.monotonic()

    def _resync_from_db(self) -> None:
        with self._conn.transaction():
            stored = self._offsets.read(self._conn.cursor(), self._batches.parts)
        self._batches.seek(stored)

    # ------------------------------------------------------------------------------------------ end

    def _result(self, stopped_by: str, seconds: float) -> LoadResult:
        parts_out = []
        for p in sorted(self._batches.parts.values(), key=lambda p: p.key):
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


class _LostRace(Exception):
    pass


def load(conninfo: str, consumer_config: dict[str, Any], *, topics: Sequence[str] | None = None,
         partitions: Sequence[tuple[str, int]] | None = None, **settings: Any) -> LoadResult:
    """One bounded load; keyword settings as in LoaderSettings."""
    return BronzeLoader(conninfo, consumer_config, topics=topics, partitions=partitions,
                        settings=LoaderSettings(**settings)).run()


def plan_groups(conninfo: str, consumer_config: dict[str, Any], topics: Sequence[str], n_groups: int,
                consumer_group: str = DEFAULT_GROUP) -> list[list[str]]:
    """Split the topics' partitions into at most n_groups groups of similar pending work ("topic:p" lists).

    Pending = high watermark - stored next offset (bronze.consumer_offsets; the log start when absent). Only
    a plan: loaders re-read everything themselves and the offsets compare-and-set keeps overlapping or
    outdated plans safe. Used by the DAG (through airflow_entry) and the tests: no Airflow.
    """
    marks = list_partitions(consumer_config, topics)
    with psycopg.connect(conninfo) as conn:
        stored = OffsetStore(consumer_group).read_topics(conn, topics)
    items = []
    for (topic, part), (low, high) in marks.items():
        items.append((topic, part, plan_partition(topic, part, stored.get((topic, part)), low, high).pending))
    groups = split_groups(items, n_groups)
    log.info("bronze plan: %d partitions, %d pending, %d groups: %s", len(items),
             sum(i[2] for i in items), len(groups), groups)
    return groups
