"""Process faults of every stage, on the realistic dataset (tests/faults/conftest.py: HOURS x EVENTS_PER_HOUR
of the DummyJSON snapshot), each compared with the clean run (session fixture clean_run):

- kill -9 of the extract publish, of the bronze load and of `dbt build` at random points, then a run to the
  end (what Airflow's retry does): bronze, silver and gold equal the clean run's;
- the Kafka broker stopped and restarted during the extract (SIGKILL: down at once) and during the load
  (SIGTERM: a clean shutdown), on a private broker;
- PostgreSQL stopped and restarted during the load and during dbt (a private cluster).

Every stage is a real process (shopstream.extract.cli, shopstream.bronze.cli, the dbt CLI), so a kill -9 or
an outage hits it the way it would hit an Airflow task. A task "fails or retries cleanly": it either rides
out the fault and finishes, or exits non-zero with the error; the rerun then gives the clean run's result.
Figures per case go to the fault summary (fault_report).
"""

from __future__ import annotations

import random
import select
import subprocess
import time

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.faults.conftest import EVENTS_PER_HOUR, HOURS
from tests.faults.harness import (
    SMALL_PREFETCH,
    Pipeline,
    assert_equal_to_clean,
    compare,
    count_dbt_starts,
    layer_note,
    snapshot,
    wait_for_progress,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]


class Watermarks:
    """Sum of the high watermarks of a pipeline's topics, polled cheaply (one consumer, kept open)."""

    def __init__(self, p: Pipeline):
        self.p = p
        self.consumer = Consumer({"bootstrap.servers": p.bootstrap, "group.id": "fault-watch", "log_level": 0})

    def total(self) -> int:
        n = 0
        for topic in self.p.topic_list:
            for part in range(3):
                try:
                    n += self.consumer.get_watermark_offsets(TopicPartition(topic, part), timeout=2, cached=False)[1]
                except Exception:  # noqa: BLE001 - broker down: unknown
                    return -1
        return n

    def close(self) -> None:
        self.consumer.close()


def kill_extract_at_random_points(p: Pipeline, clean, rnd: random.Random, kills: int) -> list[dict]:
    """Start the extract and kill -9 it at a random time within the clean extract's duration, until it was killed
    `kills` times. A run that finishes before its kill point (the clean run's duration is only an estimate on a
    busy machine) is recorded as a miss and does not count: the next attempt draws a new point."""
    watch = Watermarks(p)
    out = []
    try:
        span = clean.seconds["extract"]
        while sum(k["killed"] for k in out) < kills:
            assert len(out) < 6 * kills, f"the extract finished before its kill point in most attempts: {out}"
            at = rnd.uniform(0.1, 0.95) * span
            proc = p.start(p.extract_cmd(HOURS, EVENTS_PER_HOUR))
            t0 = time.monotonic()
            while time.monotonic() - t0 < at and proc.poll() is None:
                time.sleep(0.01)
            if proc.poll() is not None:  # finished before the kill point: a miss, draw again
                assert proc.returncode == 0, p.log_tail()
                out.append({"at": round(at, 2), "killed": False, "kafka": watch.total()})
                continue
            proc.kill()
            proc.wait()
            out.append({"at": round(at, 2), "killed": True, "kafka": watch.total()})
    finally:
        watch.close()
    return out


def kill_loader_at_random_points(p: Pipeline, rnd: random.Random, kills: int) -> list[int]:
    total = p.kafka_total()
    cmd = p.loader_cmd("--batch-size", "1000", "--kafka-config", SMALL_PREFETCH)
    thresholds = sorted(rnd.sample(range(total // 20, total - total // 10), kills))
    progress = []
    with psycopg.connect(p.dsn, autocommit=True) as mon:
        for th in thresholds:
            proc = p.start(cmd)
            if p.progress_or_none(mon) is None:
                wait_until(lambda: p.progress_or_none(mon) is not None, 60, "bronze DDL", proc)
            if p.progress(mon) < th:
                wait_for_progress(p, mon, proc, th)
            time.sleep(rnd.uniform(0, 0.1))
            proc.kill()
            proc.wait()
            assert proc.returncode == -9, "the loader finished before the kill"
            progress.append(p.progress(mon))
    return progress


def dbt_kill_at_random_node(p: Pipeline, rnd: random.Random, nodes: int, fault) -> dict:
    """Run `dbt build`, and when its n-th node (random) has started (+0-0.5 s), apply `fault` (kill -9 dbt,
    or restart the database). Returns what happened."""
    n = rnd.randint(1, nodes)
    delay = rnd.uniform(0, 0.5)
    proc = p.start(p.dbt_cmd(), stdout=subprocess.PIPE)
    buf = b""
    deadline = time.monotonic() + 300
    while count_dbt_starts(buf) < n and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            chunk = proc.stdout.read1(65536)
            if not chunk:
                break
            buf += chunk
    started = count_dbt_starts(buf)
    time.sleep(delay)
    fault(proc)
    rest, _ = proc.communicate(timeout=300)
    with p.log.open("ab") as fh:
        fh.write((buf + rest)[-3000:])
    return {"node": n, "started": started, "rc": proc.returncode}


@pytest.mark.slow
def test_kill9_of_each_stage_then_rerun_equals_clean_run(clean_run, make_pipeline, fault_report):
    """Extract killed 4x, bronze load killed 5x, dbt build killed 3x, each followed by what Airflow does on
    retry (the stage again, to the end); the end state equals the clean run's."""
    rnd = random.Random(6_2026_1127)
    p = make_pipeline("kill9-stages")

    # --- extract publish: 4 kills at random times, then a complete run
    kills_e = kill_extract_at_random_points(p, clean_run, rnd, 4)
    left_behind = p.kafka_total()
    p.run(p.extract_cmd(HOURS, EVENTS_PER_HOUR), 300, "extract rerun")
    in_kafka = p.kafka_total()
    expected = clean_run.state.kafka_total
    assert in_kafka == left_behind + expected  # the rerun published the whole hours again

    # --- bronze load: 5 kills at random progress points, then a run to the end
    progress = kill_loader_at_random_points(p, rnd, 5)
    final = p.run(p.loader_cmd(), 300, "bronze load rerun")
    assert final["stopped_by"] == "drained" and final["totals"]["remaining_lag"] == 0
    assert final["totals"]["inserted"] + final["totals"]["quarantined"] == in_kafka - progress[-1]

    # --- dbt build: 3 kills at random nodes, then a complete build
    p.apply_dbt_support_sql()
    dbt_kills = []
    while len(dbt_kills) < 3:
        r = dbt_kill_at_random_node(p, rnd, 70, lambda proc: proc.kill())
        if r["rc"] == 0:  # dbt finished before the kill point: not a kill, draw again
            continue
        assert r["rc"] == -9, (r, p.log_tail())
        dbt_kills.append(r)
    p.dbt_build()

    state = snapshot(p)
    fig = compare(clean_run.state, state, republished=True)
    killed_e = [k for k in kills_e if k["killed"]]
    fig.record(fault_report, f"extract publish: kill -9 x{len(killed_e)} + rerun",
               note=(f"kills at {[k['at'] for k in killed_e]} s left {left_behind} messages in Kafka "
                     f"(partial publishes; clean hours = {expected}); bronze stores every copy, "
                     f"{layer_note(state)}"))
    fig.record(fault_report, "bronze load: kill -9 x5 + rerun",
               note=f"killed at stored progress {progress} of {in_kafka}; rerun inserted "
                    f"{final['totals']['inserted']}; every Kafka message once in bronze")
    fig.record(fault_report, "dbt build: kill -9 x3 + rerun",
               note=f"killed after node {[r['started'] for r in dbt_kills]} of ~86 started; {layer_note(state)}")
    assert sum(k["killed"] for k in kills_e) == 4, kills_e
    assert_equal_to_clean(clean_run.state, state, fig, republished=True)


@pytest.mark.slow
def test_broker_restart_during_extract_and_during_load(clean_run, make_pipeline, private_kafka, fault_report):
    """The (private) broker is killed and restarted while the extract publishes, then stopped cleanly and
    restarted while the loader drains; each task either rides it out or fails and is rerun; the result
    equals the clean run's."""
    p = make_pipeline("broker-restart", kafka=private_kafka)
    watch = Watermarks(p)

    # --- during the extract: as soon as the first messages arrived, the broker dies (SIGKILL: down at once,
    # so the outage surely falls inside the extract, which has 7 of its 8 publishes still to do), stays down
    # 2 s, starts again (log recovery)
    proc = p.start(p.extract_cmd(HOURS, EVENTS_PER_HOUR))
    wait_until(lambda: watch.total() > 0, 120, "the first published messages", proc, interval=0.02)
    watch.close()
    private_kafka.kill()
    assert proc.poll() is None, "the extract ended before the broker went down: the test proved nothing"
    time.sleep(2)
    private_kafka.start()
    out, _ = proc.communicate(timeout=300)
    extract_rc = proc.returncode
    watch = Watermarks(p)
    after_fault = watch.total()
    watch.close()
    if extract_rc != 0:  # failed cleanly (PublishError): Airflow retries the task = the hours again
        assert b"PublishError" in p.log.read_bytes() or b"KafkaException" in p.log.read_bytes(), p.log_tail()
        p.run(p.extract_cmd(HOURS, EVENTS_PER_HOUR), 300, "extract rerun")
    in_kafka = p.kafka_total()
    republished = in_kafka != clean_run.state.kafka_total

    # --- during the load: small batches and prefetch, stop/start the broker at >= 20 % progress
    cmd = p.loader_cmd("--batch-size", "300", "--stall-seconds", "180", "--kafka-config", SMALL_PREFETCH)
    proc = p.start(cmd)
    with psycopg.connect(p.dsn, autocommit=True) as mon:
        wait_until(lambda: p.progress_or_none(mon) is not None, 60, "bronze DDL", proc)
        wait_for_progress(p, mon, proc, in_kafka // 5)
        private_kafka.stop()
        during = p.progress(mon)
        time.sleep(2)
        private_kafka.start()
    result = p.finish(proc, 300, "bronze load across the broker restart")
    assert during < in_kafka, "the load ended before the broker went down: the test proved nothing"
    assert result["stopped_by"] == "drained"
    rerun = p.run(cmd, 120, "loader rerun")
    assert rerun["totals"]["read"] == 0

    p.apply_dbt_support_sql()
    p.dbt_build()
    state = snapshot(p)
    fig = compare(clean_run.state, state, republished=republished)
    fig.record(fault_report, "Kafka broker kill -9/start during extract",
               note=(f"extract {'rode it out (librdkafka retried; idempotent producer)' if extract_rc == 0 else f'failed (rc {extract_rc}) and was rerun'}; "
                     f"{after_fault} messages in Kafka after the fault, {in_kafka} in the end; {layer_note(state)}"))
    fig.record(fault_report, "Kafka broker stop/start during bronze load",
               note=f"broker down at progress {during}/{in_kafka}; loader rode it out (drained, rerun read 0)")
    assert_equal_to_clean(clean_run.state, state, fig, republished=republished)


@pytest.mark.slow
def test_postgres_restart_during_load_and_during_dbt(clean_run, make_pipeline, private_pg, fault_report):
    """The (private) PostgreSQL cluster is stopped and restarted while the loader writes (clean shutdown,
    2 s down), then crashed (immediate stop) and restarted while `dbt build` runs; the loader rides out its
    outage, dbt fails and is rerun; the result equals the clean run's. The clean run's Kafka topics are
    reused: a loader into another database has its own stored offsets."""
    rnd = random.Random(53_2026)
    p = make_pipeline("pg-restart", pg=private_pg, topics=clean_run.pipeline.topics)
    total = p.kafka_total()

    cmd = p.loader_cmd("--batch-size", "300", "--db-retry-seconds", "120")
    proc = p.start(cmd)
    with psycopg.connect(p.dsn, autocommit=True) as mon:
        wait_until(lambda: p.progress_or_none(mon) is not None, 60, "bronze DDL", proc)
        before = wait_for_progress(p, mon, proc, total // 5)
    assert before < total
    private_pg.restart(mode="fast", down_seconds=2)
    result = p.finish(proc, 300, "bronze load across the PostgreSQL restart")
    assert result["db_reconnects"] >= 1, p.log_tail()
    assert result["stopped_by"] == "drained"
    rerun = p.run(cmd, 120, "loader rerun")
    assert rerun["totals"]["read"] == 0

    p.apply_dbt_support_sql()

    def crash_restart(proc):
        private_pg.restart(mode="immediate", down_seconds=2)

    r = dbt_kill_at_random_node(p, rnd, 60, crash_restart)
    p.dbt_build()  # the retry
    state = snapshot(p)
    fig = compare(clean_run.state, state)
    fig.record(fault_report, "PostgreSQL stop/start during bronze load",
               note=f"down 2 s at progress {before}/{total}; loader reconnected {result['db_reconnects']}x and drained")
    outcome = f"failed (rc {r['rc']})" if r["rc"] else "still succeeded"
    fig.record(fault_report, "PostgreSQL crash/restart during dbt build",
               note=(f"at node {r['started']}; dbt {outcome}; "
                     f"rerun: {layer_note(state)}"))
    assert_equal_to_clean(clean_run.state, state, fig)
