"""Bronze loader under faults: kill -9 of the loader process, a PostgreSQL restart, a broker restart.

The loader runs as a separate process (python -m shopstream.bronze.cli), so a kill -9 is a real one: no
finally blocks, no rollback from the client. After every fault the end state must be exactly the produced
set. The restarts touch services other tests share: each is one short outage in one test.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from shopstream.bronze.loader import apply_ddl, list_partitions
from shopstream.bronze.testing import bronze_set, event_messages, produce, produced_set

pytestmark = [pytest.mark.integration, pytest.mark.faults]

ROOT = Path(__file__).resolve().parents[2]
BASES = ("customers", "products", "orders", "events")
GROUP = "shopstream-bronze"
# Keep the client's prefetch small so the loader really fetches from the broker throughout the load.
SMALL_PREFETCH = json.dumps({"queued.max.messages.kbytes": 2048, "max.partition.fetch.bytes": 262144,
                             "fetch.max.bytes": 1048576})


def conninfo(params: dict) -> str:
    return psycopg.conninfo.make_conninfo(**params)


def cli(dsn: str, bootstrap: str, topics: list[str], *extra: str) -> list[str]:
    return [sys.executable, "-m", "shopstream.bronze.cli", "--dsn", dsn, "--bootstrap", bootstrap,
            "--topics", ",".join(topics), "--group", GROUP, *extra]


def env() -> dict:
    e = os.environ.copy()
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT / "plugins"), e.get("PYTHONPATH", "")])
    return e


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log.open("ab"), env=env(), cwd=ROOT)


def finish(proc: subprocess.Popen, log: Path, timeout: float) -> dict:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"loader exited {proc.returncode}:\n{log.read_text()[-4000:]}"
    return json.loads(out)


def progress(conn: psycopg.Connection) -> int:
    """Messages covered by the stored offsets (sum of next_offset: topics start at offset 0)."""
    return conn.execute("SELECT coalesce(sum(next_offset), 0) FROM bronze.consumer_offsets "
                        "WHERE consumer_group = %s", [GROUP]).fetchone()[0]


def wait_for_progress(conn, proc, at_least: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = progress(conn)
        if done >= at_least:
            return done
        assert proc.poll() is None, "the loader ended before the fault could be injected"
        time.sleep(0.005)
    raise AssertionError(f"no progress to {at_least} within {timeout} s")


def assert_exact(dsn, produced, bootstrap, topics):
    assert Counter(bronze_set(dsn)) == Counter(produced_set(produced))
    marks = list_partitions({"bootstrap.servers": bootstrap}, topics)
    with psycopg.connect(dsn) as conn:
        stored = {(t, p): o for t, p, o in conn.execute(
            'SELECT topic, "partition", next_offset FROM bronze.consumer_offsets WHERE consumer_group = %s',
            [GROUP])}
    assert stored == {tp: high for tp, (_, high) in marks.items()}


@pytest.mark.slow
def test_kill9_at_20_random_points_then_restart(fresh_database, kafka_bootstrap, unique_topics, tmp_path):
    n = 200_000
    topics = list(unique_topics(*BASES).values())
    produced = produce(kafka_bootstrap, event_messages(topics, n))
    dsn = conninfo(fresh_database)
    apply_ddl(dsn)
    log = tmp_path / "loader.log"
    rnd = random.Random(20261127)
    # 20 kill points: 16 when the stored progress passes random thresholds (then 0-150 ms later, so the kill
    # lands anywhere in a batch: consuming, streaming the COPY, committing), and 4 at random times within the
    # first 0.8 s of a process (start-up: DDL, offsets, assignment, first fetch).
    points = [("progress", th) for th in sorted(rnd.sample(range(n // 40, n - n // 20), 16))]
    for _ in range(4):
        points.insert(rnd.randrange(len(points) + 1), ("time", rnd.uniform(0.05, 0.8)))
    cmd = cli(dsn, kafka_bootstrap, topics, "--batch-size", "4000", "--kafka-config", SMALL_PREFETCH)

    kills = []
    with psycopg.connect(dsn, autocommit=True) as mon:
        for kind, arg in points:
            proc = start(cmd, log)
            t0 = time.monotonic()
            if kind == "time":
                while time.monotonic() - t0 < arg and proc.poll() is None:
                    time.sleep(0.005)
            else:
                wait_for_progress(mon, proc, arg)
                time.sleep(rnd.uniform(0, 0.15))
            proc.kill()  # SIGKILL
            proc.wait()
            kills.append((kind, proc.returncode, progress(mon)))
        assert all(rc == -9 for _, rc, _ in kills), kills  # every one was killed, none had finished
        assert 0 < kills[-1][2] < n  # work was left for the final run

    final = finish(start(cmd, log), log, timeout=180)
    assert final["stopped_by"] == "drained"
    assert final["totals"]["inserted"] == n - kills[-1][2]
    assert final["safety_net_batches"] == 0  # rows and offsets were always consistent: never a redo
    assert_exact(dsn, produced, kafka_bootstrap, topics)


def test_postgres_restart_during_load(fresh_database, kafka_bootstrap, unique_topics, tmp_path):
    n = 60_000
    topics = list(unique_topics(*BASES).values())
    produced = produce(kafka_bootstrap, event_messages(topics, n))
    dsn = conninfo(fresh_database)
    apply_ddl(dsn)
    log = tmp_path / "loader.log"
    # Small batches: many transactions, so the restart hits the loader mid-load (likely mid-transaction).
    cmd = cli(dsn, kafka_bootstrap, topics, "--batch-size", "300", "--db-retry-seconds", "120")
    proc = start(cmd, log)
    with psycopg.connect(dsn, autocommit=True) as mon:
        before = wait_for_progress(mon, proc, n // 5)
    assert before < n
    restart = subprocess.run([str(ROOT / "scripts" / "postgres.sh"), "restart"], capture_output=True, text=True)
    assert restart.returncode == 0, restart.stderr
    result = finish(proc, log, timeout=300)

    # It rode out the outage: reconnected, re-read its offsets, finished; nothing lost, nothing twice.
    assert result["db_reconnects"] >= 1, log.read_text()[-3000:]
    assert result["stopped_by"] == "drained"
    assert_exact(dsn, produced, kafka_bootstrap, topics)
    rerun = finish(start(cmd, log), log, timeout=120)
    assert rerun["totals"]["read"] == 0


def test_broker_restart_during_load(fresh_database, kafka_bootstrap, unique_topics, tmp_path):
    n = 60_000
    topics = list(unique_topics(*BASES).values())
    produced = produce(kafka_bootstrap, event_messages(topics, n))
    dsn = conninfo(fresh_database)
    apply_ddl(dsn)
    log = tmp_path / "loader.log"
    cmd = cli(dsn, kafka_bootstrap, topics, "--batch-size", "300", "--stall-seconds", "180",
              "--kafka-config", SMALL_PREFETCH)
    proc = start(cmd, log)
    with psycopg.connect(dsn, autocommit=True) as mon:
        before = wait_for_progress(mon, proc, n // 5)
    assert before < n
    restart = subprocess.run([str(ROOT / "scripts" / "kafka.sh"), "restart"], capture_output=True, text=True)
    assert restart.returncode == 0, restart.stderr
    with psycopg.connect(dsn, autocommit=True) as mon:
        during = progress(mon)
    result = finish(proc, log, timeout=300)

    assert during < n, "the load ended before the broker went down: the test proved nothing"
    assert result["stopped_by"] == "drained"
    assert_exact(dsn, produced, kafka_bootstrap, topics)
    rerun = finish(start(cmd, log), log, timeout=120)
    assert rerun["totals"]["read"] == 0
