"""Bronze loader under process faults: 20 kill -9 over 1,000,000 messages, then a run to the end.

The loader runs as a separate process (python -m shopstream.bronze.cli), so a kill -9 is a real one: no
finally blocks, no rollback from the client. "Equal a clean run": the same topics loaded by one
uninterrupted loader into another database; both databases are compared by an order-independent checksum of
every row's (topic, partition, offset, key, value, Kafka timestamp), and the stored offsets must be the high
watermarks. Messages are small (~260 bytes) so the million fits the suite's time budget.

(The broker and PostgreSQL restarts during the load moved to test_process_faults.py, on private instances,
with silver and gold compared too; the write errors - disk full, permission denied - are in
test_bronze_write_errors.py.)
"""

from __future__ import annotations

import random
import time

import psycopg
import pytest
from confluent_kafka import Producer
from shopstream.bronze.consumer import list_partitions
from shopstream.bronze.schema import apply_ddl

from tests.faults.harness import GROUP, Pipeline
from tests.support.bronze_messages import BASE_TS_MS

pytestmark = [pytest.mark.integration, pytest.mark.faults]

N = 1_000_000
KILLS = 20
# One number per bronze table: rows, distinct coordinates, and the sum of a 60-bit hash of each row's content
# (order-independent, so no sort of a million rows).
CHECKSUM = """
SELECT count(*), count(DISTINCT (topic, "partition", "offset")),
       coalesce(sum(('x' || substr(md5(topic || '/' || "partition" || '/' || "offset" || '/' || coalesce(record_key, '')
                     || '/' || record_value::text || '/' || event_ts::text), 1, 15))::bit(60)::bigint::numeric), 0)
FROM bronze.raw_events WHERE topic = ANY(%s)
"""


# A clickstream-like event of ~260 bytes, built from a template (json.dumps per message would cost more than
# the whole load); canonical JSON (sorted keys, compact), as the extractor writes it.
VALUE = ('{"customer_id":"%d","event_id":"e-2025060113-%08d","event_ts":"2025-06-01T13:05:31Z",'
         '"event_type":"%s","logical_hour":"2025-06-01T13:00:00Z","order_id":null,"page":"/products/%d",'
         '"product_id":"%d","schema_version":1,"session_id":"s-2025060113-%03d"}')
TYPES = ("page_view", "product_view", "add_to_cart")


def produce_fast(bootstrap: str, topics: list[str], n: int, partitions: int = 3) -> None:
    """n small messages spread over the topics and partitions; fails unless every one was acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.size": 1_000_000,
                         "batch.num.messages": 100_000, "queue.buffering.max.messages": 1_000_000,
                         "queue.buffering.max.kbytes": 1024 * 1024, "enable.idempotence": True,
                         "compression.type": "none", "delivery.report.only.error": True})
    errors: list[str] = []

    def on_error(err, msg):  # called for failed deliveries only (delivery.report.only.error)
        if err is not None:
            errors.append(str(err))

    rnd = random.Random(7)
    t = len(topics)
    for i in range(n):
        value = (VALUE % (i % 208 + 1, i, TYPES[i % 3], i % 194 + 1, i % 194 + 1, i % 997)).encode()
        while True:
            try:
                producer.produce(topics[i % t], value, str(i).encode(), partition=rnd.randrange(partitions),
                                 timestamp=BASE_TS_MS + (i % 3_600_000),
                                 on_delivery=on_error)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10_000 == 0:
            producer.poll(0)
    remaining = producer.flush(120)
    assert not remaining and not errors, (remaining, errors[:5])


def checksum(dsn: str, topics: list[str]) -> tuple[int, int, int]:
    with psycopg.connect(dsn) as conn:
        return tuple(conn.execute(CHECKSUM, [topics]).fetchone())


def stored_offsets(dsn: str) -> dict[tuple[str, int], int]:
    with psycopg.connect(dsn) as conn:
        return {(t, p): o for t, p, o in conn.execute(
            'SELECT topic, "partition", next_offset FROM bronze.consumer_offsets WHERE consumer_group = %s', [GROUP])}


@pytest.mark.slow
def test_kill9_at_20_random_points_over_a_million_messages(make_pipeline, fault_report):
    faulty: Pipeline = make_pipeline("kill9-1m")
    topics = faulty.topic_list
    t0 = time.monotonic()
    produce_fast(faulty.bootstrap, topics, N)
    produce_s = time.monotonic() - t0
    marks = list_partitions({"bootstrap.servers": faulty.bootstrap}, topics)
    assert sum(h - lo for lo, h in marks.values()) == N
    apply_ddl(faulty.dsn)

    rnd = random.Random(20261127)
    # 20 kill points: 16 when the stored progress passes random thresholds (then 0-150 ms later, so the kill
    # lands anywhere in a batch: consuming, streaming the COPY, committing), and 4 at random times within the
    # first 0.8 s of a process (start-up: DDL, offsets, assignment, first fetch).
    points = [("progress", th) for th in sorted(rnd.sample(range(N // 40, N - N // 20), KILLS - 4))]
    for _ in range(4):
        points.insert(rnd.randrange(len(points) + 1), ("time", rnd.uniform(0.05, 0.8)))
    cmd = faulty.loader_cmd("--batch-size", "10000")

    kills = []
    t0 = time.monotonic()
    with psycopg.connect(faulty.dsn, autocommit=True) as mon:
        for kind, arg in points:
            proc = faulty.start(cmd)
            started = time.monotonic()
            if kind == "time":
                while time.monotonic() - started < arg and proc.poll() is None:
                    time.sleep(0.005)
            else:
                while faulty.progress(mon) < arg:
                    assert proc.poll() is None, f"the loader ended before the kill:\n{faulty.log_tail()}"
                    time.sleep(0.005)
                time.sleep(rnd.uniform(0, 0.15))
            proc.kill()  # SIGKILL
            proc.wait()
            kills.append((kind, proc.returncode, faulty.progress(mon)))
        assert all(rc == -9 for _, rc, _ in kills), kills  # every one was killed, none had finished
        before_final = kills[-1][2]
        assert 0 < before_final < N  # work was left for the final run

    final = faulty.run(cmd, 300, "final load")
    faulty_s = time.monotonic() - t0
    assert final["stopped_by"] == "drained"
    assert final["totals"]["inserted"] == N - before_final
    assert final["safety_net_batches"] == 0  # rows and offsets were always consistent: never a redo

    # The clean run: the same topics, one uninterrupted loader, another database.
    clean: Pipeline = make_pipeline("clean-1m", topics=faulty.topics)
    t0 = time.monotonic()
    clean_result = clean.run(clean.loader_cmd("--batch-size", "10000"), 300, "clean load")
    clean_s = time.monotonic() - t0
    assert clean_result["totals"]["inserted"] == N

    rows, distinct, digest = checksum(faulty.dsn, topics)
    c_rows, c_distinct, c_digest = checksum(clean.dsn, topics)
    high = {tp: h for tp, (_, h) in marks.items()}
    assert stored_offsets(faulty.dsn) == high == stored_offsets(clean.dsn)
    duplicates, lost = rows - distinct, N - distinct
    fault_report.record(
        f"bronze load: kill -9 x{KILLS} over {N:,} messages", messages_in=N, rows_out=rows,
        duplicates=duplicates + max(0, rows - c_rows), lost=lost + max(0, c_rows - rows), quarantined=0,
        note=(f"{len([k for k in kills if k[0] == 'progress'])} kills mid-load, {len([k for k in kills if k[0] == 'time'])} "
              f"at start-up; final run inserted {final['totals']['inserted']:,}; checksum "
              f"{'==' if digest == c_digest else '!='} clean load; produce {produce_s:.0f} s, faulty loads "
              f"{faulty_s:.0f} s, clean load {clean_s:.0f} s"))
    assert (rows, distinct) == (c_rows, c_distinct) == (N, N)
    assert digest == c_digest
