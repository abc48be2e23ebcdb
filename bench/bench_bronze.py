"""Bronze loader throughput vs a bare COPY and vs the naive per-message INSERT consumer.

1,000,000 messages of ~500 bytes (quick: 100,000) over 4 fresh topics x 3 partitions, loaded into throwaway
databases (dropped at the end):
  (a)  this loader, end to end from Kafka (one process, as `python -m shopstream.bronze.cli` runs it);
  (a3) the same with 3 loaders in parallel over disjoint partition groups (the DAG's mapped tasks);
  (b)  a bare COPY of the same payloads, already in memory, into an identical empty table, one transaction:
       psycopg's write_row (text COPY) and pre-encoded binary COPY; the faster is the reference;
  (c)  the naive path: a consume loop doing one INSERT + one COMMIT per message (what a
       ConsumeFromTopicOperator apply_function typically does), on a 50,000-message sample.
Ratios a/b and a/c; targets a/b >= 0.7, a/c >= 20.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (str(ROOT), str(ROOT / "plugins")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from tests.support.project_env import admin_dsn, load_project_env  # noqa: E402 - needs ROOT on sys.path


class _Databases:
    """Throwaway databases owned by the warehouse role, dropped on exit."""

    def __init__(self):
        self.names: list[str] = []

    def new(self) -> str:
        import psycopg

        name = f"bench_bronze_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin_dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" OWNER "{os.environ["PGUSER"]}"')
        self.names.append(name)
        return psycopg.conninfo.make_conninfo(host=os.environ["PGHOST"], port=os.environ["PGPORT"],
                                              user=os.environ["PGUSER"], password=os.environ["PGPASSWORD"],
                                              dbname=name)

    def checkpoint(self) -> None:
        import psycopg

        with psycopg.connect(admin_dsn(), autocommit=True) as conn:
            conn.execute("CHECKPOINT")

    def drop_all(self) -> None:
        import psycopg

        with psycopg.connect(admin_dsn(), autocommit=True) as conn:
            for name in self.names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _bare_copy_text(dsn: str, rows: list[tuple]) -> float:
    import psycopg
    from shopstream.bronze.copyrows import COPY_COLUMNS, ms_to_utc_naive
    from shopstream.bronze.schema import apply_ddl

    with psycopg.connect(dsn) as conn:
        apply_ddl(conn)
        started = time.perf_counter()
        with conn.cursor().copy(f"COPY bronze.raw_events {COPY_COLUMNS} FROM STDIN") as copy:
            for topic, key, value, partition, offset, ts in rows:
                copy.write_row((topic, key.decode(), value.decode(), partition, offset, ms_to_utc_naive(ts)))
        conn.commit()
        return time.perf_counter() - started


def _bare_copy_binary(dsn: str, rows: list[tuple]) -> float:
    import psycopg
    from shopstream.bronze.copyrows import COPY_COLUMNS, SIGNATURE, TRAILER, RowEncoder
    from shopstream.bronze.schema import apply_ddl

    encoders: dict[str, RowEncoder] = {}
    encoded = [encoders.setdefault(t, RowEncoder(t)).encode(k, v, p, o, ts) for t, k, v, p, o, ts in rows]
    chunks = [b"".join(encoded[i:i + 400]) for i in range(0, len(encoded), 400)]
    with psycopg.connect(dsn) as conn:
        apply_ddl(conn)
        started = time.perf_counter()
        with conn.cursor().copy(f"COPY bronze.raw_events {COPY_COLUMNS} FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(SIGNATURE)
            for chunk in chunks:
                copy.write(chunk)
            copy.write(TRAILER)
        conn.commit()
        return time.perf_counter() - started


def _naive(dsn: str, bootstrap: str, topics: list[str], sample: int) -> float:
    """subscribe + poll; per message: json.loads, INSERT, COMMIT (the ConsumeFromTopicOperator pattern)."""
    import json

    import psycopg
    from confluent_kafka import Consumer
    from psycopg.types.json import Jsonb
    from shopstream.bronze.schema import apply_ddl

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-naive-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.subscribe(topics)
    with psycopg.connect(dsn) as conn:
        apply_ddl(conn)
        done = 0
        started = None
        while done < sample:
            msgs = consumer.consume(500, 1.0)
            if started is None:
                if not msgs:
                    continue
                started = time.perf_counter()  # not counting the group join
            for m in msgs:
                if m.error() or done >= sample:
                    continue
                conn.execute(
                    'INSERT INTO bronze.raw_events (topic, record_key, record_value, "partition", "offset", '
                    "event_ts) VALUES (%s, %s, %s, %s, %s, to_timestamp(%s / 1000.0) AT TIME ZONE 'utc')",
                    (m.topic(), m.key().decode(), Jsonb(json.loads(m.value())), m.partition(), m.offset(),
                     m.timestamp()[1]))
                conn.commit()
                done += 1
            if msgs:
                consumer.commit(asynchronous=True)
        elapsed = time.perf_counter() - started
    consumer.close()
    return elapsed


def _cli_load(dsn: str, bootstrap: str, what: list[str]) -> dict:
    import json

    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "plugins"), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-m", "shopstream.bronze.cli", "--dsn", dsn, "--bootstrap", bootstrap,
                          "--log-level", "WARNING", "--apply-ddl", *what], capture_output=True, env=env, cwd=ROOT, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"loader failed ({out.returncode}): {out.stderr.decode()[-3000:]}")
    return json.loads(out.stdout)


def run(quick: bool) -> list[dict]:
    load_project_env()
    from confluent_kafka.admin import AdminClient
    from shopstream.bronze.loader import LoaderSettings, plan_groups

    from tests.support.bronze_messages import event_messages, produce
    from tests.support.throwaway import create_topics, delete_topics

    n = 100_000 if quick else 1_000_000
    naive_sample = 10_000 if quick else 50_000
    bootstrap = os.environ["KAFKA_BOOTSTRAP"]
    suffix = uuid.uuid4().hex[:8]
    topics = [f"bench-{b}-{suffix}" for b in ("customers", "products", "orders", "events")]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    create_topics(admin, topics)
    dbs = _Databases()
    try:
        t0 = time.perf_counter()
        rows = list(event_messages(topics, n, pad=240))
        produced = produce(bootstrap, rows, record=True)
        produce_s = time.perf_counter() - t0
        payload = [(m.topic, m.key, m.value, m.partition, m.offset, m.ts_ms) for m in produced]
        avg_bytes = sum(len(m.value) for m in produced) / n
        del rows, produced
        kafka = {"bootstrap.servers": bootstrap}

        # (a) the loader, end to end from Kafka, in its own process (as an Airflow task runs it). The rate uses
        # the loader's own run() time: connect, DDL, offsets, watermarks, all batches, close.
        dsn_a = dbs.new()
        dbs.checkpoint()
        result = _cli_load(dsn_a, bootstrap, ["--topics", ",".join(topics)])
        assert result["totals"]["inserted"] == n, result["totals"]
        a_rate = n / result["seconds"]

        # (a3) three loader processes in parallel over the DAG's partition groups (its mapped tasks).
        dsn_a3 = dbs.new()
        from shopstream.bronze.schema import apply_ddl

        apply_ddl(dsn_a3)
        groups = plan_groups(dsn_a3, kafka, topics, 3)
        dbs.checkpoint()
        results: list = [None] * len(groups)
        started = time.perf_counter()

        def work(i: int, group: list[str]) -> None:
            results[i] = _cli_load(dsn_a3, bootstrap, ["--partitions", ",".join(group)])

        threads = [threading.Thread(target=work, args=(i, g)) for i, g in enumerate(groups)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        a3_s = time.perf_counter() - started  # wall time, interpreter start-up of the processes included
        assert sum(r["totals"]["inserted"] for r in results) == n
        a3_rate = n / a3_s

        # (b) bare COPY of the same payloads into an identical empty table.
        dbs.checkpoint()
        b_text_rate = n / _bare_copy_text(dbs.new(), payload)
        dbs.checkpoint()
        b_bin_rate = n / _bare_copy_binary(dbs.new(), payload)
        b_rate = max(b_text_rate, b_bin_rate)

        # (c) naive: one INSERT + COMMIT per message.
        dbs.checkpoint()
        c_rate = naive_sample / _naive(dbs.new(), bootstrap, topics, naive_sample)
    finally:
        dbs.drop_all()
        delete_topics(admin, topics)

    a_over_b = a_rate / b_rate
    notes = (f"{n:,} messages of ~{avg_bytes:.0f} B over 4 topics x 3 partitions (produced in {produce_s:.1f} s); "
             f"loader: {result['batches']} batches of <= {LoaderSettings().batch_max_messages:,}, binary COPY "
             f"streamed while consuming, offsets in the same transaction; bare COPY reference = the faster of "
             f"write_row text ({b_text_rate:,.0f}/s) and pre-encoded binary ({b_bin_rate:,.0f}/s); naive on "
             f"{naive_sample:,} messages. 2 cores: PostgreSQL's backend (jsonb parse, heap + 2 btree inserts, "
             f"WAL) is the bottleneck of every COPY path here, so a/b is bounded by the CPU the broker fetch "
             f"and the client take from it.")
    if a_over_b < 0.7:
        notes += " a/b below target: see the loader's CPU share vs the backend's (both on 2 cores)."
    return [{
        "name": "bronze_load_1m" if not quick else "bronze_load_100k",
        "figures": {
            "messages": n,
            "a_loader_msgs_per_s": round(a_rate),
            "a3_loader_x3_parallel_msgs_per_s": round(a3_rate),
            "b_bare_copy_rows_per_s": round(b_rate),
            "b_bare_copy_text_rows_per_s": round(b_text_rate),
            "b_bare_copy_binary_rows_per_s": round(b_bin_rate),
            "c_naive_insert_commit_msgs_per_s": round(c_rate),
        },
        "ratios": {"a_over_b": round(a_over_b, 3), "a_over_c": round(a_rate / c_rate, 1),
                   "a3_over_b": round(a3_rate / b_rate, 3)},
        "targets": {"a_over_b": 0.7, "a_over_c": 20},
        "notes": notes,
    }]


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=os.environ.get("BENCH_QUICK", "0") == "1"), indent=2))
