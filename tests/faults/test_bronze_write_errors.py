"""Bronze writes refused by PostgreSQL: a full disk, a revoked privilege. The loader must stop with a clear
error, leave no partial commit (the rows in bronze are exactly the offsets it stored, batch by batch), and a
rerun after the fix must give the clean run's bronze.

How each error is produced (really, not mocked):
- disk full: bronze.raw_events (and its indexes) moved to a tablespace on a 4 MB tmpfs mounted for the test
  in the private cluster's folder. PostgreSQL's own write fails with ENOSPC -> SQLSTATE 53100 disk_full
  ("could not extend file ...: No space left on device"). Mounting needs root with CAP_SYS_ADMIN (this box;
  a CI runner as root in a VM too). Where mounting is refused the test falls back to a BEFORE INSERT trigger
  raising SQLSTATE 53100 at a random offset - the same error code through the same code path in the loader,
  but not a real full disk - and says so in the summary's note.
- permission denied: REVOKE INSERT ON bronze.raw_events from the loader's role while it loads (SQLSTATE
  42501), on the shared cluster (no restart needed), GRANTed back before the rerun.
"""

from __future__ import annotations

import os
import pwd
import random
import subprocess
import uuid

import psycopg
import pytest
from shopstream.bronze.schema import apply_ddl

from tests.faults.harness import (
    GROUP,
    SMALL_PREFETCH,
    Pipeline,
    assert_equal_to_clean,
    compare,
    snapshot,
    wait_for_progress,
    wait_until,
)
from tests.support.project_env import admin_dsn

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def assert_no_partial_commit(p: Pipeline) -> int:
    """Per partition, bronze holds exactly the offsets [0, stored next offset): every committed batch is
    complete (rows and offsets in one transaction), nothing of the failed batch is there. Returns the
    messages covered."""
    with psycopg.connect(p.dsn) as conn:
        stored = {(t, part): o for t, part, o in conn.execute(
            'SELECT topic, "partition", next_offset FROM bronze.consumer_offsets WHERE consumer_group = %s '
            "AND topic = ANY(%s)", [GROUP, p.topic_list])}
        rows = {(t, part): (n, lo, hi) for t, part, n, lo, hi in conn.execute(
            'SELECT topic, "partition", count(*), min("offset"), max("offset") FROM bronze.raw_events '
            "WHERE topic = ANY(%s) GROUP BY 1, 2", [p.topic_list])}
        q = conn.execute("SELECT count(*) FROM bronze.raw_events_quarantine WHERE topic = ANY(%s)",
                         [p.topic_list]).fetchone()[0]
    assert q == 0
    for tp, next_offset in stored.items():
        n, lo, hi = rows.get(tp, (0, None, None))
        assert n == next_offset, (tp, n, next_offset)
        if n:
            assert lo == 0 and hi == next_offset - 1, (tp, lo, hi, next_offset)
    assert set(rows) <= set(stored)
    return sum(stored.values())


def loader_failure(p: Pipeline, proc: subprocess.Popen) -> str:
    proc.communicate(timeout=300)
    assert proc.returncode == 1, f"expected the loader to fail (exit 1), got {proc.returncode}:\n{p.log_tail()}"
    return p.log_tail(6000)


def assert_rerun_completes_bronze(p: Pipeline, clean_run, fault_report, covered: int, total: int, *, after: str,
                                  case: str, failure: str) -> None:
    """Once the fault is removed (`after`: what removed it), a loader rerun drains the topics, inserts exactly the
    messages the failed run had not committed (`total - covered`), and bronze equals the clean run's; the case is
    recorded in the fault summary with `failure`, how the first run ended."""
    rerun = p.run(p.loader_cmd(), 300, f"loader rerun after {after}")
    assert rerun["stopped_by"] == "drained"
    assert rerun["totals"]["inserted"] == total - covered
    state = snapshot(p, layers=False)
    fig = compare(clean_run.state, state, layers=False)
    fig.record(fault_report, case,
               note=(f"{failure} with {covered}/{total} committed, no partial batch; rerun after {after} inserted "
                     f"{rerun['totals']['inserted']}; bronze equals the clean run's"))
    assert_equal_to_clean(clean_run.state, state, fig, layers=False)


def test_permission_revoked_mid_load(clean_run, make_pipeline, fault_report):
    p = make_pipeline("revoke", topics=clean_run.pipeline.topics)
    total = p.kafka_total()
    role = p.params["user"]
    proc = p.start(p.loader_cmd("--batch-size", "500", "--kafka-config", SMALL_PREFETCH))
    with psycopg.connect(p.dsn, autocommit=True) as mon:
        wait_until(lambda: p.progress_or_none(mon) is not None, 60, "bronze DDL", proc)
        wait_for_progress(p, mon, proc, total // 4)
    with psycopg.connect(admin_dsn(p.params["dbname"]), autocommit=True) as su:
        su.execute(f'REVOKE INSERT ON bronze.raw_events FROM "{role}"')
    log = loader_failure(p, proc)
    assert "permission denied for table raw_events" in log, log
    assert "InsufficientPrivilege" in log, log
    covered = assert_no_partial_commit(p)
    assert 0 < covered < total

    with psycopg.connect(admin_dsn(p.params["dbname"]), autocommit=True) as su:
        su.execute(f'GRANT INSERT ON bronze.raw_events TO "{role}"')
    assert_rerun_completes_bronze(p, clean_run, fault_report, covered, total, after="GRANT",
                                  case="bronze write: REVOKE INSERT mid-load",
                                  failure="loader exit 1 'permission denied for table raw_events' (42501)")


def _mount_tmpfs(path, size: str) -> str | None:
    """Mount a tmpfs of `size` owned by the postgres OS user at `path`; None if not allowed."""
    if os.geteuid() != 0:
        return "not root"
    pg = pwd.getpwnam("postgres")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700,uid={pg.pw_uid},gid={pg.pw_gid}",
                        "tmpfs", str(path)], capture_output=True, text=True)
    return None if r.returncode == 0 else (r.stderr.strip() or f"mount exit {r.returncode}")


def test_disk_full_writing_bronze(clean_run, make_pipeline, private_pg, fault_report):
    p = make_pipeline("diskfull", pg=private_pg, topics=clean_run.pipeline.topics)
    total = p.kafka_total()
    db = p.params["dbname"]
    space = f"tiny_{uuid.uuid4().hex[:8]}"
    tiny = private_pg.base / space
    tiny.mkdir()
    why_not = _mount_tmpfs(tiny, "4m")
    mounted = why_not is None
    apply_ddl(p.dsn)
    try:
        if mounted:
            private_pg.superuser_sql(f"CREATE TABLESPACE {space} LOCATION '{tiny}'")
            private_pg.superuser_sql(
                f"ALTER TABLE bronze.raw_events SET TABLESPACE {space}; "
                f"ALTER INDEX bronze.raw_events_pkey SET TABLESPACE {space}; "
                f"ALTER INDEX bronze.raw_events_topic_partition_offset_key SET TABLESPACE {space}", db)
            how = "tablespace on a 4 MB tmpfs (real ENOSPC)"
        else:
            threshold = random.Random(53100).randrange(total // 12, total // 4)
            private_pg.superuser_sql(f"""
                CREATE FUNCTION bronze.fault_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW."offset" >= {threshold} THEN
                        RAISE EXCEPTION 'could not extend file: No space left on device (injected)'
                            USING ERRCODE = 'disk_full';
                    END IF;
                    RETURN NEW;
                END $$;
                CREATE TRIGGER fault_disk_full BEFORE INSERT ON bronze.raw_events
                    FOR EACH ROW EXECUTE FUNCTION bronze.fault_disk_full()""", db)
            how = f"trigger raising 53100 (tmpfs mount refused: {why_not})"

        proc = p.start(p.loader_cmd("--batch-size", "1000"))
        log = loader_failure(p, proc)
        assert "No space left on device" in log and "DiskFull" in log, log
        covered = assert_no_partial_commit(p)
        assert 0 < covered < total

        # Free space (grow the filesystem) / remove the fault, then rerun.
        if mounted:
            r = subprocess.run(["mount", "-o", "remount,size=256m", str(tiny)], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
        else:
            private_pg.superuser_sql("DROP TRIGGER fault_disk_full ON bronze.raw_events", db)
        assert_rerun_completes_bronze(p, clean_run, fault_report, covered, total, after="freeing space",
                                      case="bronze write: disk full (53100)",
                                      failure=f"{how}: loader exit 1 'No space left on device' (DiskFull)")
    finally:
        private_pg.superuser_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        if mounted:
            private_pg.superuser_sql(f"DROP TABLESPACE IF EXISTS {space}")
            subprocess.run(["umount", str(tiny)], capture_output=True)
