"""Helpers of the process-fault suite: run each stage as a real process (so kill -9 is a real one), take a
snapshot of a pipeline's end state, compare it with a clean run's, and turn the difference into the
summary's figures.

A pipeline = its Kafka topics (base name -> topic), the broker they live on, the warehouse database.
Stages:
- extract: `python -m shopstream.extract.cli` (fetches from the test's DummyJSON server, publishes hours);
- bronze: `python -m shopstream.bronze.cli`;
- dbt: `dbt build` (the project's profile reads PG*; the topics' names reach the models through
  SHOPSTREAM_TOPIC_*, as in the DAGs), as a subprocess when it is to be killed, in-process otherwise.

"Equal a clean run": the same input through the same stages without faults (session fixture clean_run),
compared on
- bronze: every Kafka message exactly once (raw_events + quarantine cover each (topic, partition, offset)
  of the topics once; stored offsets = high watermarks), and the message contents (base topic, key, value,
  Kafka timestamp) equal the clean run's - as a multiset with the same (partition, offset) when Kafka holds
  the same messages, as a set when a killed extract left re-published copies in Kafka (bronze keeps both
  copies by design: it stores every message; silver keeps one per key);
- silver and gold: every row of every table of the spec (spec columns, audit columns excluded) as a
  multiset, plus silver.quarantine's decisions.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from shopstream.bronze.consumer import list_partitions
from shopstream.dbt.runner import QUIET_ENV, env_for, patched_env
from shopstream.dbt.warehouse import SPEC_COLUMNS
from shopstream.topics import TOPICS, env_var

from tests.support.warehouse import assert_every_data_test_ran

ROOT = Path(__file__).resolve().parents[2]
BASES = TOPICS
GROUP = "shopstream-bronze"
DBT_PROJECT = ROOT / "include" / "dbt" / "shopstream"
DBT_SUPPORT_SQL = sorted((ROOT / "include" / "sql" / "dbt").glob("*.sql"))
# Keep the client's prefetch small so the loader really fetches from the broker throughout the load.
SMALL_PREFETCH = json.dumps({"queued.max.messages.kbytes": 2048, "max.partition.fetch.bytes": 262144,
                             "fetch.max.bytes": 1048576})
QUARANTINE_COLUMNS = ("source_table", "record_key", "reason", "status", "topic", "partition", "offset")


def conninfo(params: Mapping[str, Any]) -> str:
    return psycopg.conninfo.make_conninfo(**{k: params[k] for k in ("host", "port", "user", "password", "dbname")})


def topic_vars(topics: Mapping[str, str]) -> dict[str, str]:
    """SHOPSTREAM_TOPIC_<BASE> = topic: how dbt's models (as in the DAGs) learn renamed topics' names."""
    return {env_var(base): name for base, name in topics.items()}


def topic_env(topics: Mapping[str, str]) -> AbstractContextManager[None]:
    """dbt reads the renamed topics through SHOPSTREAM_TOPIC_<NAME> (set only while it runs, as the dbt runner
    sets PG*)."""
    return patched_env(topic_vars(topics))


def assert_build_passed(run) -> None:
    """An in-process `dbt build` (shopstream.dbt.runner.DbtRun) passed every node, data tests included."""
    bad = [(r["unique_id"], r["status"], r["message"]) for r in run.results if r["status"] not in ("success", "pass")]
    assert run.success and not bad, bad
    assert_every_data_test_ran(run)


def base_env() -> dict[str, str]:
    e = os.environ.copy()
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT / "plugins"), e.get("PYTHONPATH", "")])
    e.pop("SHOPSTREAM_FAULTS_FILE", None)
    return e


@dataclass
class Pipeline:
    name: str
    topics: dict[str, str]  # base -> Kafka topic
    bootstrap: str
    params: dict  # warehouse connection parameters (host, port, user, password, dbname)
    workdir: Path
    dummyjson_url: str
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log = self.workdir / f"{self.name}.log"

    @property
    def dsn(self) -> str:
        return conninfo(self.params)

    @property
    def topic_list(self) -> list[str]:
        return [self.topics[b] for b in BASES]

    def env(self) -> dict[str, str]:
        e = base_env()
        e.update(topic_vars(self.topics))
        e.update(env_for(self.params))  # PG* for dbt's profile, as the in-process runner sets them
        e.update(QUIET_ENV)
        return e

    def base_of(self, topic: str) -> str:
        return {t: b for b, t in self.topics.items()}[topic]

    # ------------------------------------------------------------------------------------------- stages

    def start(self, cmd: list[str], stdout=subprocess.PIPE) -> subprocess.Popen:
        with self.log.open("a") as fh:
            fh.write(f"\n==> {time.strftime('%H:%M:%S')} {' '.join(cmd)}\n")
        return subprocess.Popen(cmd, stdout=stdout, stderr=self.log.open("ab"), env=self.env(), cwd=ROOT)

    def extract_cmd(self, hours: list[str], events_per_hour: int, *extra: str) -> list[str]:
        cmd = [sys.executable, "-m", "shopstream.extract.cli", "--bootstrap", self.bootstrap,
               "--dummyjson-url", self.dummyjson_url, "--events-per-hour", str(events_per_hour), *extra]
        for h in hours:
            cmd += ["--hour", h]
        return cmd

    def loader_cmd(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "shopstream.bronze.cli", "--dsn", self.dsn, "--bootstrap", self.bootstrap,
                "--topics", ",".join(self.topic_list), "--group", GROUP, "--apply-ddl", *extra]

    def dbt_cmd(self, *extra: str) -> list[str]:
        return [str(ROOT / ".venv" / "bin" / "dbt"), "build", "--project-dir", str(DBT_PROJECT), "--profiles-dir",
                str(DBT_PROJECT), "--target-path", str(self.workdir / "dbt-target"), "--log-path",
                str(self.workdir / "dbt-target" / "logs"), *extra]

    def finish(self, proc: subprocess.Popen, timeout: float, what: str) -> dict:
        out, _ = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, f"{what} exited {proc.returncode}:\n{self.log_tail()}"
        return json.loads(out) if out and out.strip().startswith(b"{") else {}

    def run(self, cmd: list[str], timeout: float, what: str) -> dict:
        return self.finish(self.start(cmd), timeout, what)

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def apply_dbt_support_sql(self) -> None:
        with psycopg.connect(self.dsn) as conn:
            for path in DBT_SUPPORT_SQL:
                conn.execute(path.read_text())

    def dbt_build(self) -> None:
        """`dbt build` to completion, as a subprocess (what a retried/cleared dbt task does)."""
        proc = self.start(self.dbt_cmd(), stdout=subprocess.PIPE)
        out, _ = proc.communicate(timeout=300)
        text = out.decode(errors="replace")
        with self.log.open("a") as fh:
            fh.write(text[-3000:])
        assert proc.returncode == 0, f"dbt build exited {proc.returncode}:\n{text[-4000:]}"

    # ------------------------------------------------------------------------------------------- state

    def progress(self, conn: psycopg.Connection) -> int:
        """Messages covered by the stored offsets (sum of next_offset: the topics start at offset 0)."""
        return int(conn.execute("SELECT coalesce(sum(next_offset), 0) FROM bronze.consumer_offsets "
                                "WHERE consumer_group = %s AND topic = ANY(%s)",
                                [GROUP, self.topic_list]).fetchone()[0])

    def progress_or_none(self, conn: psycopg.Connection) -> int | None:
        """progress(), or None while the bronze DDL is not applied yet (a loader just started)."""
        try:
            return self.progress(conn)
        except psycopg.errors.UndefinedTable:
            return None

    def kafka_marks(self) -> dict[tuple[str, int], tuple[int, int]]:
        return list_partitions({"bootstrap.servers": self.bootstrap}, self.topic_list)

    def kafka_total(self) -> int:
        return sum(high - low for low, high in self.kafka_marks().values())


def wait_until(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None,
               interval: float = 0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended (rc {proc.returncode}) before {what}")
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_for_progress(p: Pipeline, conn, proc, at_least: int, timeout: float = 120) -> int:
    return wait_until(lambda: (lambda d: d if d >= at_least else 0)(p.progress(conn)), timeout,
                      f"bronze progress {at_least}", proc)


# ----------------------------------------------------------------------------------------------- snapshots

@dataclass
class State:
    kafka_total: int  # messages in the topics (sum of high - low watermarks)
    marks: dict[tuple[str, int], tuple[int, int]]
    offsets: dict[tuple[str, int], int]  # stored next offsets (base topic, partition)
    bronze_rows: int
    bronze_coords: int  # distinct (topic, partition, offset) in raw_events
    quarantine_coords: int
    covered: int  # distinct coordinates in raw_events ∪ quarantine inside [low, high)
    with_coords: Counter  # (base, partition, offset, key, value, event_ts)
    contents: Counter  # (base, key, value, event_ts)
    bronze_quarantined: int
    tables: dict[str, Counter]  # silver/gold spec tables and silver.quarantine: row text -> count

    def table_rows(self) -> dict[str, int]:
        return {t: sum(c.values()) for t, c in self.tables.items()}


def snapshot(p: Pipeline, *, layers: bool = True, conn_params: Mapping | None = None) -> State:
    marks = p.kafka_marks()
    base = {t: b for b, t in p.topics.items()}
    with psycopg.connect(conninfo(conn_params or p.params)) as conn:
        rows = conn.execute(
            'SELECT topic, "partition", "offset", record_key, record_value::text, event_ts FROM bronze.raw_events '
            "WHERE topic = ANY(%s)", [p.topic_list]).fetchall()
        q = conn.execute('SELECT topic, "partition", "offset" FROM bronze.raw_events_quarantine WHERE topic = ANY(%s)',
                         [p.topic_list]).fetchall()
        offsets = {(base[t], part): o for t, part, o in conn.execute(
            'SELECT topic, "partition", next_offset FROM bronze.consumer_offsets WHERE consumer_group = %s '
            "AND topic = ANY(%s)", [GROUP, p.topic_list])}
        tables: dict[str, Counter] = {}
        if layers:
            spec = {**SPEC_COLUMNS, "silver.quarantine": QUARANTINE_COLUMNS}
            for table, cols in spec.items():
                select = ", ".join(f'"{c}"' for c in cols)
                if table == "silver.quarantine":  # its topic column holds this pipeline's topic names
                    select = select.replace('"topic"', "coalesce(" + _topic_case(p) + ", topic) as topic")
                tables[table] = Counter(r[0] for r in conn.execute(f"SELECT r::text FROM (SELECT {select} FROM {table}) r"))
    coords = {(t, part, o) for t, part, o, *_ in rows}
    qcoords = {tuple(r) for r in q}
    inside = {(t, part, o) for t, part, o in coords | qcoords if marks.get((t, part), (0, -1))[0] <= o < marks[(t, part)][1]}
    return State(
        kafka_total=sum(h - lo for lo, h in marks.values()),
        marks={(base[t], part): m for (t, part), m in marks.items()},
        offsets=offsets,
        bronze_rows=len(rows), bronze_coords=len(coords), quarantine_coords=len(qcoords), covered=len(inside),
        with_coords=Counter((base[t], part, o, k, v, ts) for t, part, o, k, v, ts in rows),
        contents=Counter((base[t], k, v, ts) for t, part, o, k, v, ts in rows),
        bronze_quarantined=len(q), tables=tables)


def _topic_case(p: Pipeline) -> str:
    whens = " ".join(f"when '{t}' then '{b}'" for b, t in p.topics.items())
    return f"(case topic {whens} end)"


def multiset_diff(clean: Counter, faulty: Counter) -> tuple[int, int]:
    """(lost, extra): elements of the clean multiset missing from the faulty one, and the other way round."""
    return sum((clean - faulty).values()), sum((faulty - clean).values())


@dataclass
class Figures:
    messages_in: int
    rows_out: int
    duplicates: int
    lost: int
    quarantined: int
    detail: dict[str, Any]

    def record(self, report, case: str, note: str = "") -> None:
        report.record(case, messages_in=self.messages_in, rows_out=self.rows_out, duplicates=self.duplicates,
                      lost=self.lost, quarantined=self.quarantined, note=note)


def compare(clean: State, faulty: State, *, republished: bool = False, layers: bool = True) -> Figures:
    """The faulty run's figures against the clean run (see the module doc for what is compared).

    duplicates = bronze rows beyond one per Kafka message + rows a silver/gold table holds more often than
    the clean run; lost = Kafka messages in neither raw_events nor quarantine + clean-run rows (bronze
    contents, silver/gold rows) missing from the faulty run."""
    detail: dict[str, Any] = {}
    dup = faulty.bronze_rows - faulty.bronze_coords  # impossible with the UNIQUE constraint; counted anyway
    lost = faulty.kafka_total - faulty.covered
    detail["bronze_vs_kafka"] = {"kafka": faulty.kafka_total, "covered": faulty.covered, "rows": faulty.bronze_rows}
    if republished:
        c_lost, c_extra = len(set(clean.contents) - set(faulty.contents)), len(set(faulty.contents) - set(clean.contents))
    else:
        c_lost, c_extra = multiset_diff(clean.with_coords, faulty.with_coords)
    detail["bronze_vs_clean"] = {"lost": c_lost, "extra": c_extra}
    lost += c_lost
    dup += c_extra
    offsets_ok = faulty.offsets == {k: high for k, (_, high) in faulty.marks.items()}
    detail["offsets_at_high_watermarks"] = offsets_ok
    if layers:
        for table, rows in clean.tables.items():
            t_lost, t_extra = multiset_diff(rows, faulty.tables.get(table, Counter()))
            if t_lost or t_extra:
                detail[table] = {"lost": t_lost, "extra": t_extra}
            lost += t_lost
            dup += t_extra
    silver_q = sum(faulty.tables.get("silver.quarantine", Counter()).values())
    return Figures(messages_in=faulty.kafka_total, rows_out=faulty.bronze_rows, duplicates=dup, lost=lost,
                   quarantined=faulty.bronze_quarantined + silver_q, detail=detail)


def assert_equal_to_clean(clean: State, faulty: State, fig: Figures, *, republished: bool = False,
                          layers: bool = True) -> None:
    assert fig.lost == 0 and fig.duplicates == 0, fig.detail
    assert fig.detail["offsets_at_high_watermarks"], (faulty.offsets, faulty.marks)
    assert faulty.covered == faulty.kafka_total == faulty.bronze_coords + faulty.quarantine_coords
    if republished:
        assert set(faulty.contents) == set(clean.contents)
    else:
        assert faulty.with_coords == clean.with_coords
    if layers:
        for table, rows in clean.tables.items():
            assert faulty.tables[table] == rows, table


def layer_note(state: State) -> str:
    rows = state.table_rows()
    silver = sum(n for t, n in rows.items() if t.startswith("silver.") and t != "silver.quarantine")
    gold = sum(n for t, n in rows.items() if t.startswith("gold."))
    return f"silver {silver} rows, gold {gold} rows equal the clean run's"


_START = re.compile(rb"\d+ of \d+ START ")


def count_dbt_starts(text: bytes) -> int:
    return len(_START.findall(text))
