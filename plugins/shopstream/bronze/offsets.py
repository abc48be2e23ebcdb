"""bronze.consumer_offsets: where each partition's load goes on. Every statement on that table is here.

PostgreSQL is the source of truth for the offsets (Kafka's committed offsets are only a copy for lag tools): a
loader writes a partition's next offset in the same transaction as its rows, and moves it only by
compare-and-set from the value it last read, so two loaders can never store the same messages twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import psycopg

TopicPartitionKey = tuple[str, int]

_CREATE = ('INSERT INTO bronze.consumer_offsets (consumer_group, topic, "partition", next_offset) '
           "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING")
_READ = ('SELECT topic, "partition", next_offset FROM bronze.consumer_offsets '
         'WHERE consumer_group = %s AND (topic, "partition") IN (SELECT * FROM unnest(%s::text[], %s::int[])) '
         'ORDER BY topic, "partition"')
_ADVANCE = ("UPDATE bronze.consumer_offsets SET next_offset = %s, updated_at = now() AT TIME ZONE 'utc' "
            'WHERE consumer_group = %s AND topic = %s AND "partition" = %s AND next_offset = %s')
_READ_TOPICS = ('SELECT topic, "partition", next_offset FROM bronze.consumer_offsets '
                "WHERE consumer_group = %s AND topic = ANY(%s)")


class OffsetStore:
    """The stored next offsets of one consumer group. Methods take the caller's cursor: they run in its
    transaction (the offsets move with the rows)."""

    def __init__(self, consumer_group: str) -> None:
        self.consumer_group = consumer_group

    def create_missing(self, cur: psycopg.Cursor, offsets: Iterable[tuple[str, int, int]]) -> None:
        """Rows for (topic, partition, next_offset) that have none yet; existing rows are left as they are."""
        cur.executemany(_CREATE, [(self.consumer_group, t, p, o) for t, p, o in offsets])

    def read(self, cur: psycopg.Cursor, tps: Iterable[TopicPartitionKey],
             lock: bool = False) -> dict[TopicPartitionKey, int]:
        """{(topic, partition): next_offset} of the partitions that have a row; ``lock`` takes the rows
        (FOR UPDATE, in sorted order: two loaders never deadlock on them)."""
        tps = sorted(tps)
        if not tps:
            return {}
        cur.execute(_READ + (" FOR UPDATE" if lock else ""),
                    [self.consumer_group, [t for t, _ in tps], [p for _, p in tps]])
        return {(t, p): o for t, p, o in cur.fetchall()}

    def advance(self, cur: psycopg.Cursor, tp: TopicPartitionKey, expected: int, next_offset: int) -> None:
        """Compare-and-set: move the partition from ``expected`` to ``next_offset``."""
        cur.execute(_ADVANCE, [next_offset, self.consumer_group, tp[0], tp[1], expected])
        if cur.rowcount != 1:  # cannot happen while we hold the row lock; never write past it
            raise RuntimeError(f"offsets compare-and-set failed for {tp} (expected {expected})")

    def read_topics(self, conn: psycopg.Connection, topics: Sequence[str]) -> dict[TopicPartitionKey, int]:
        """Every stored offset of the topics; empty when bronze.consumer_offsets does not exist yet (the plan
        of a first run, before any loader applied the DDL)."""
        if not conn.execute("SELECT to_regclass('bronze.consumer_offsets') IS NOT NULL").fetchone()[0]:
            return {}
        rows = conn.execute(_READ_TOPICS, [self.consumer_group, list(topics)]).fetchall()
        return {(t, p): o for t, p, o in rows}
