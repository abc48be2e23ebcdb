"""Bronze loader against the real broker and the real PostgreSQL: exact sets, redelivery, poison, concurrency.

Every test uses its own topics (unique_topics) and its own database (fresh_database). Sets are compared as
multisets of (topic, partition, offset, key, value): a duplicate or a missing message fails the comparison.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime, timedelta

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from shopstream.bronze import poison
from shopstream.bronze.consumer import list_partitions
from shopstream.bronze.loader import BronzeLoader, LoaderSettings, plan_groups
from shopstream.bronze.planning import parse_tps
from shopstream.bronze.schema import apply_ddl
from shopstream.topics import TOPICS

from tests.support.bronze_messages import (
    BASE_TS_MS,
    bronze_set,
    canonical,
    event_messages,
    produce,
    produced_set,
)

pytestmark = pytest.mark.integration

BASES = TOPICS


def conninfo(params: dict) -> str:
    return psycopg.conninfo.make_conninfo(**params)


def run_loader(dsn, bootstrap, topics=None, partitions=None, **settings):
    return BronzeLoader(dsn, {"bootstrap.servers": bootstrap}, topics=topics, partitions=partitions,
                        settings=LoaderSettings(**settings)).run()


def per_topic(produced):
    return Counter(m.topic for m in produced)


def stored_offsets(dsn, group="shopstream-bronze"):
    with psycopg.connect(dsn) as conn:
        rows = conn.execute('SELECT topic, "partition", next_offset FROM bronze.consumer_offsets '
                            "WHERE consumer_group = %s", [group]).fetchall()
    return {(t, p): o for t, p, o in rows}


# ------------------------------------------------------------------------------------------- exact set


def test_load_stores_exactly_the_produced_set_and_a_rerun_inserts_nothing(fresh_database, kafka_bootstrap,
                                                                          unique_topics):
    topics = list(unique_topics(*BASES).values())
    produced = produce(kafka_bootstrap, event_messages(topics, 20_000))
    dsn = conninfo(fresh_database)
    with psycopg.connect(dsn) as conn:
        db_before = conn.execute("SELECT now() AT TIME ZONE 'utc'").fetchone()[0]

    result = run_loader(dsn, kafka_bootstrap, topics=topics, batch_max_messages=3_000)

    assert Counter(bronze_set(dsn)) == Counter(produced_set(produced))
    assert result.stopped_by == "drained"
    expected = per_topic(produced)
    for topic in topics:
        c = result.topics[topic]
        assert (c.read, c.inserted, c.already_present, c.quarantined, c.remaining_lag) == (
            expected[topic], expected[topic], 0, 0, 0), topic
    assert result.totals()["inserted"] == 20_000
    assert result.safety_net_batches == 0 and result.offset_conflicts == 0
    assert result.batches >= 20_000 // 3_000

    # Offsets stored in PostgreSQL = the high watermarks; Kafka got the same copy (asynchronously).
    marks = list_partitions({"bootstrap.servers": kafka_bootstrap}, topics)
    assert stored_offsets(dsn) == {tp: high for tp, (_, high) in marks.items()}
    check = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "shopstream-bronze"})
    try:
        committed = {(tp.topic, tp.partition): tp.offset
                     for tp in check.committed([TopicPartition(t, p) for t, p in marks], timeout=15)}
    finally:
        check.close()
    assert committed == {tp: high for tp, (_, high) in marks.items()}

    with psycopg.connect(dsn) as conn:
        # event_ts = the message timestamp (UTC); ingested_at = the database clock during the load.
        ts = {(t, p, o): (e, i) for t, p, o, e, i in conn.execute(
            'SELECT topic, "partition", "offset", event_ts, ingested_at FROM bronze.raw_events')}
        db_after = conn.execute("SELECT now() AT TIME ZONE 'utc'").fetchone()[0]
        # Within a partition, bronze_id grows with the offset (dbt increments rely on the load order).
        disorder = conn.execute(
            'SELECT count(*) FROM (SELECT bronze_id, lag(bronze_id) OVER (PARTITION BY topic, "partition" '
            'ORDER BY "offset") AS prev FROM bronze.raw_events) s WHERE bronze_id < prev').fetchone()[0]
    assert disorder == 0
    for m in produced[:500]:
        event_ts, ingested_at = ts[(m.topic, m.partition, m.offset)]
        assert event_ts == datetime(1970, 1, 1) + timedelta(milliseconds=m.ts_ms)
        assert db_before <= ingested_at <= db_after

    again = run_loader(dsn, kafka_bootstrap, topics=topics)
    assert again.totals() == {"read": 0, "inserted": 0, "already_present": 0, "quarantined": 0,
                              "remaining_lag": 0}
    assert len(bronze_set(dsn)) == 20_000


def test_message_budget_and_partial_partition_lists(fresh_database, kafka_bootstrap, unique_topics):
    topics = list(unique_topics("orders", "events").values())
    produced = produce(kafka_bootstrap, event_messages(topics, 6_000))
    dsn = conninfo(fresh_database)

    first = run_loader(dsn, kafka_bootstrap, topics=topics, max_messages=2_500, batch_max_messages=1_000)
    assert first.stopped_by == "max_messages"
    assert first.totals()["inserted"] == 2_500
    assert first.totals()["remaining_lag"] == 3_500
    assert len(bronze_set(dsn)) == 2_500

    only = [(topics[0], 0), (topics[0], 2)]
    second = run_loader(dsn, kafka_bootstrap, partitions=only)
    assert {p["partition"] for p in second.partitions} == {0, 2}
    rest = run_loader(dsn, kafka_bootstrap, topics=topics)
    assert first.totals()["inserted"] + second.totals()["inserted"] + rest.totals()["inserted"] == 6_000
    assert Counter(bronze_set(dsn)) == Counter(produced_set(produced))


# ------------------------------------------------------------------------------------------- redelivery


def test_redelivered_messages_are_stored_once(fresh_database, kafka_bootstrap, unique_topics):
    """Offsets reset (rows deleted, rewound midway, another consumer group): the UNIQUE safety net path."""
    topics = list(unique_topics("orders", "events").values())  # 2 topics x 3 partitions
    dsn = conninfo(fresh_database)
    produced = produce(kafka_bootstrap, event_messages(topics, 6_000))
    first = run_loader(dsn, kafka_bootstrap, topics=topics)
    assert first.totals()["inserted"] == 6_000 and first.safety_net_batches == 0

    # 1. All offsets forgotten: everything is delivered again, plus 3,000 new messages.
    with psycopg.connect(dsn) as conn:
        conn.execute("DELETE FROM bronze.consumer_offsets")
    produced += produce(kafka_bootstrap, event_messages(topics, 3_000, start=6_000))
    second = run_loader(dsn, kafka_bootstrap, topics=topics, batch_max_messages=2_000)
    assert second.totals()["read"] == 9_000
    assert second.totals()["already_present"] == 6_000
    assert second.totals()["inserted"] == 3_000
    assert second.safety_net_batches >= 1
    assert Counter(bronze_set(dsn)) == Counter(produced_set(produced))

    # 2. Each partition rewound by 100 inside a batch that also holds 200 new messages per partition:
    #    the batch meets the constraint midway and must still end with each message stored once.
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE bronze.consumer_offsets SET next_offset = next_offset - 100")
    produced += produce(kafka_bootstrap, ((t, p, f"n{t}{p}{i}".encode(), canonical({"i": i, "p": p}),
                                           BASE_TS_MS + i) for t in topics for p in range(3) for i in range(200)))
    third = run_loader(dsn, kafka_bootstrap, topics=topics, batch_max_messages=50_000)
    assert third.totals()["already_present"] == 6 * 100
    assert third.totals()["inserted"] == 6 * 200
    assert Counter(bronze_set(dsn)) == Counter(produced_set(produced))

    # 3. Another consumer group reads the same topics: all already present, nothing twice.
    other = run_loader(dsn, kafka_bootstrap, topics=topics, consumer_group="another-group")
    assert other.totals()["already_present"] == len(produced) and other.totals()["inserted"] == 0
    # Back on the direct COPY path once the batches stop meeting stored rows.
    produced += produce(kafka_bootstrap, event_messages(topics, 3_000, start=20_000))
    fourth = run_loader(dsn, kafka_bootstrap, topics=topics, batch_max_messages=1_000)
    assert fourth.totals()["inserted"] == 3_000 and fourth.safety_net_batches == 0
    assert Counter(bronze_set(dsn)) == Counter(produced_set(produced))


# ------------------------------------------------------------------------------------------- poison


def test_poison_messages_are_quarantined_and_the_good_ones_stored(fresh_database, kafka_bootstrap,
                                                                  unique_topics):
    topic = unique_topics("orders", partitions=2)["orders"]
    big = canonical({"blob": "x" * 5_000})
    poisons = [  # (key, value, expected reason)
        (b"k", None, poison.TOMBSTONE),
        (b"k", b'{"a":"\xff\xfe"}', poison.INVALID_UTF8),
        (b"k", b'{"a":', poison.INVALID_JSON),
        (b"k", b'{"a":NaN}', poison.INVALID_JSON),
        (b"k", b"[1,2,3]", poison.NOT_OBJECT),
        (b"k", b'"just a string"', poison.NOT_OBJECT),
        (b"k", big, poison.OVERSIZE),
        (None, b'{"a":1}', poison.MISSING_KEY),
        (b"\xff\x00", b'{"a":1}', poison.INVALID_KEY),
        (b"k", b'{"a":"nul \\u0000 inside"}', poison.JSONB_REJECTED),
        (b"k", b'{"a":"\\ud800"}', poison.JSONB_REJECTED),
        (b"k", b'{"tiny":1e-20000}', poison.JSONB_REJECTED),  # only PostgreSQL refuses this one
        # jsonb would keep only the last value of a repeated key: bronze keeps the bytes instead
        (b"1", b'{"id":1,"email":"a@x","email":"b@x"}', f"{poison.DUPLICATE_JSON_KEY}:email"),
        (b"o-1", b'{"order_id":"o-1","items":[{"sku":"s-1","\\u0073ku":"s-2"}]}',
         f"{poison.DUPLICATE_JSON_KEY}:items[0].sku"),
    ]
    messages, expected_q = [], {}
    i = 0
    for partition in (0, 1):
        for key, value, reason in poisons:
            messages.append((topic, partition, f"good-{i}".encode(), canonical({"i": i}), BASE_TS_MS + i))
            i += 1
            messages.append((topic, partition, key, value, BASE_TS_MS + i))
            expected_q[(partition, len([m for m in messages if m[1] == partition]) - 1)] = (key, value, reason)
            i += 1
        messages.append((topic, partition, f"good-{i}".encode(), canonical({"i": i}), BASE_TS_MS + i))
        i += 1
    produced = produce(kafka_bootstrap, messages)
    dsn = conninfo(fresh_database)

    result = run_loader(dsn, kafka_bootstrap, topics=[topic], max_value_bytes=4_096)

    good = [m for m in produced if m.key and m.key.startswith(b"good-")]
    assert Counter(bronze_set(dsn)) == Counter(produced_set(good))
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            'SELECT "partition", "offset", record_key, record_value, reason, detail, event_ts, value_bytes '
            "FROM bronze.raw_events_quarantine WHERE topic = %s", [topic]).fetchall()
    got = {(p, o): (None if k is None else bytes(k), None if v is None else bytes(v), r)
           for p, o, k, v, r, _, _, _ in rows}
    assert got == expected_q
    for p, o, _k, v, r, detail, event_ts, value_bytes in rows:
        assert detail, (p, o, r)
        assert event_ts == datetime(1970, 1, 1) + timedelta(milliseconds=next(
            m.ts_ms for m in produced if (m.partition, m.offset) == (p, o)))
        assert value_bytes == (None if v is None else len(bytes(v)))
    pg_detail = next(d for p, o, k, v, r, d, *_ in rows if v is not None and b"1e-20000" in bytes(v))
    assert "numeric" in pg_detail  # PostgreSQL's own message

    c = result.topics[topic]
    assert c.quarantined == len(expected_q) == 2 * len(poisons)
    assert c.inserted == len(good) and c.read == len(produced)
    assert c.quarantined_by_reason == dict(Counter(r for *_, r in expected_q.values()))
    assert result.rejected_by_postgres == 2
    assert stored_offsets(dsn) == {(topic, 0): len(poisons) * 2 + 1, (topic, 1): len(poisons) * 2 + 1}

    rerun = run_loader(dsn, kafka_bootstrap, topics=[topic], max_value_bytes=4_096)
    assert rerun.totals()["read"] == 0
    # Redelivered poison stays quarantined once (its own UNIQUE (topic, partition, offset)).
    with psycopg.connect(dsn) as conn:
        conn.execute("DELETE FROM bronze.consumer_offsets")
    again = run_loader(dsn, kafka_bootstrap, topics=[topic], max_value_bytes=4_096)
    assert again.totals()["inserted"] == 0 and again.totals()["already_present"] == len(good)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM bronze.raw_events_quarantine").fetchone()[0] == len(expected_q)


# ------------------------------------------------------------------------------------------- concurrency


def _run_concurrently(jobs):
    results, errors = [None] * len(jobs), []

    def worker(i, fn):
        try:
            results[i] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i, fn)) for i, fn in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    return results


def test_concurrent_loaders_on_overlapping_partitions(fresh_database, kafka_bootstrap, unique_topics):
    topics = list(unique_topics(*BASES).values())
    produced = produce(kafka_bootstrap, event_messages(topics, 30_000))
    dsn = conninfo(fresh_database)
    apply_ddl(dsn)
    all_tps = sorted((t, p) for t in topics for p in range(3))
    sets = [all_tps[:8], all_tps[4:], all_tps, all_tps[::2]]

    results = _run_concurrently([
        (lambda tps=tps: run_loader(dsn, kafka_bootstrap, partitions=tps, batch_max_messages=700)) for tps in sets
    ])

    assert Counter(bronze_set(dsn)) == Counter(produced_set(produced))
    assert sum(r.totals()["inserted"] for r in results) == 30_000
    # The offsets compare-and-set kept them apart: no loader even tried to write another's rows.
    assert sum(r.totals()["already_present"] for r in results) == 0
    assert sum(r.safety_net_batches for r in results) == 0
    marks = list_partitions({"bootstrap.servers": kafka_bootstrap}, topics)
    assert stored_offsets(dsn) == {tp: high for tp, (_, high) in marks.items()}


def test_mapped_task_split_loads_in_parallel_without_overlap(fresh_database, kafka_bootstrap, unique_topics):
    topics = list(unique_topics(*BASES).values())
    produced = produce(kafka_bootstrap, event_messages(topics, 24_000))
    dsn = conninfo(fresh_database)
    apply_ddl(dsn)
    groups = plan_groups(dsn, {"bootstrap.servers": kafka_bootstrap}, topics, 3)
    assert len(groups) == 3
    flat = [tp for g in groups for tp in g]
    assert len(flat) == len(set(flat)) == 12

    results = _run_concurrently([
        (lambda g=g: run_loader(dsn, kafka_bootstrap, partitions=parse_tps(g), batch_max_messages=2_000))
        for g in groups
    ])

    assert Counter(bronze_set(dsn)) == Counter(produced_set(produced))
    assert [r.offset_conflicts for r in results] == [0, 0, 0]
    assert sum(r.totals()["inserted"] for r in results) == 24_000
    # A plan made now has nothing pending; running the groups again (a cleared mapped task) changes nothing.
    again = _run_concurrently([(lambda g=g: run_loader(dsn, kafka_bootstrap, partitions=parse_tps(g)))
                               for g in groups])
    assert sum(r.totals()["read"] for r in again) == 0


def test_stable_high_watermark_waits_for_loads_in_flight(fresh_database):
    dsn = conninfo(fresh_database)
    apply_ddl(dsn)
    from shopstream.bronze.loader import LOAD_BARRIER_KEY

    with psycopg.connect(dsn) as writer, psycopg.connect(dsn, autocommit=True) as reader:
        assert reader.execute("SELECT bronze.stable_high_watermark()").fetchone()[0] == 0
        writer.execute("SELECT pg_advisory_xact_lock_shared(%s)", [LOAD_BARRIER_KEY])
        writer.execute("INSERT INTO bronze.raw_events (topic, record_key, record_value, \"partition\", "
                       "\"offset\", event_ts) VALUES ('t', 'k', '{}', 0, 0, now())")
        seen = []
        t = threading.Thread(target=lambda: seen.append(
            reader.execute("SELECT bronze.stable_high_watermark()").fetchone()[0]))
        t.start()
        time.sleep(0.5)
        assert seen == []  # blocked while the loader transaction is open
        writer.commit()
        t.join(10)
        assert seen == [1]
