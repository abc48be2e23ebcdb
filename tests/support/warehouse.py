"""A warehouse for dbt tests: a throwaway database with bronze created, messages written into bronze.raw_events
the way the loader writes them (one row per topic/partition/offset, canonical JSON, Kafka timestamp as
event_ts), and `dbt build` against it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from shopstream.dbt.warehouse import SPEC_COLUMNS, table_checksums

from tests.support.contract_messages import Message, canonical, partition_for

ROOT = Path(__file__).resolve().parents[2]
BRONZE_SQL = sorted((ROOT / "include" / "sql" / "bronze").glob("*.sql"))
DBT_SUPPORT_SQL = sorted((ROOT / "include" / "sql" / "dbt").glob("*.sql"))
OPS_SQL = sorted((ROOT / "include" / "sql" / "ops").glob("*.sql"))


def project_data_tests() -> set[str]:
    """The data tests of the dbt project (unique ids, from the committed manifest): a full `dbt build` runs them
    all."""
    from shopstream.dbt.paths import MANIFEST_PATH

    return {n for n in json.loads(MANIFEST_PATH.read_text())["nodes"] if n.startswith("test.")}


def assert_every_data_test_ran(run) -> None:
    ran = {r["unique_id"] for r in run.results if r["unique_id"].startswith("test.")}
    missing = project_data_tests() - ran
    assert ran and not missing, f"data tests did not run (or the committed manifest is stale: make dbt-manifest): " \
                                f"{sorted(missing)}"


def apply_bronze_ddl(conn) -> None:
    """Create bronze (the loader's DDL) plus the indexes the dbt models need (include/sql/dbt) and the tasks'
    run records (include/sql/ops)."""
    for path in [*BRONZE_SQL, *OPS_SQL, *DBT_SUPPORT_SQL]:
        conn.execute(path.read_text())
    conn.commit()


def published_results(messages: Iterable[Message], topic_names: dict[str, str] | None = None
                      ) -> dict[str, dict[str, dict[str, Any]]]:
    """{hour: {base topic: counts}} shaped like the extract task's results (what `shopstream.ops.record_extract`
    records as published) for fixture messages: messages, distinct keys, order items of each order's last
    version; the hour is each message's Kafka timestamp's."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    last: dict[tuple[str, str, str], Any] = {}
    for m in messages:
        hour = m.event_ts.astimezone(UTC).strftime("%Y-%m-%dT%H:00:00Z")
        name = (topic_names or {}).get(m.topic, m.topic)
        counts = out.setdefault(hour, {}).setdefault(m.topic, {"topic": name, "logical_hour": hour, "published": 0})
        counts["published"] += 1
        last[(hour, m.topic, m.key)] = m.value
    for (hour, topic, _), value in sorted(last.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2]))):
        counts = out[hour][topic]
        counts["keys"] = counts.get("keys", 0) + 1
        if topic == "orders":
            counts["order_items"] = counts.get("order_items", 0) + len(value.get("items") or ())
    return out


@dataclass
class BronzeWriter:
    """Inserts messages into bronze.raw_events, assigning Kafka offsets per (topic, partition)."""

    conn: Any
    topic_names: dict[str, str] = field(default_factory=dict)  # logical topic -> stored topic name
    _next_offset: dict[tuple[str, int], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for topic, part, last in self.conn.execute(
            'select topic, "partition", max("offset") from bronze.raw_events group by 1, 2'
        ).fetchall():
            self._next_offset[(topic, part)] = last + 1

    def insert(self, messages: Iterable[Message], commit: bool = True) -> list[int]:
        """Insert; returns the bronze_ids in message order."""
        ids = []
        with self.conn.cursor() as cur:
            for m in messages:
                topic = self.topic_names.get(m.topic, m.topic)
                part = m.partition if m.partition is not None else partition_for(m.key or "")
                offset = m.offset
                if offset is None:
                    offset = self._next_offset.get((topic, part), 0)
                self._next_offset[(topic, part)] = max(self._next_offset.get((topic, part), 0), offset + 1)
                value = m.value if isinstance(m.value, str) else canonical(m.value)
                event_ts = m.event_ts.astimezone(UTC).replace(tzinfo=None)
                if m.ingested_at is None:
                    cur.execute(
                        'insert into bronze.raw_events (topic, record_key, record_value, "partition", "offset", event_ts)'
                        " values (%s, %s, %s::jsonb, %s, %s, %s) returning bronze_id",
                        (topic, m.key, value, part, offset, event_ts))
                else:
                    cur.execute(
                        'insert into bronze.raw_events (topic, record_key, record_value, "partition", "offset",'
                        " event_ts, ingested_at) values (%s, %s, %s::jsonb, %s, %s, %s, %s) returning bronze_id",
                        (topic, m.key, value, part, offset, event_ts,
                         m.ingested_at.astimezone(UTC).replace(tzinfo=None)))
                ids.append(cur.fetchone()[0])
        if commit:
            self.conn.commit()
        return ids


@dataclass
class Warehouse:
    """A throwaway database with bronze created, a bronze writer and `dbt build` against it."""

    params: dict
    conn: Any
    target_path: Path
    writer: BronzeWriter = field(init=False)

    def __post_init__(self) -> None:
        apply_bronze_ddl(self.conn)
        self.writer = BronzeWriter(self.conn)

    @classmethod
    def open(cls, params: dict, target_path: Path) -> Warehouse:
        import psycopg

        conn = psycopg.connect(**{k: params[k] for k in ("host", "port", "user", "password", "dbname")})
        return cls(params=params, conn=conn, target_path=target_path)

    def insert(self, messages: Iterable[Message]) -> list[int]:
        return self.writer.insert(messages)

    def dbt(self, *args: str, check: bool = True):
        from shopstream.dbt.runner import run_dbt

        self.conn.rollback()  # never hold a snapshot / locks while dbt works
        return run_dbt(list(args), self.params, target_path=self.target_path, check=check)

    def build(self, *args: str, check: bool = True):
        return self.dbt("build", *args, check=check)

    def rows(self, sql: str, *params: Any) -> list[tuple]:
        try:
            return self.conn.execute(sql, params or None).fetchall()
        finally:
            self.conn.rollback()

    def scalar(self, sql: str, *params: Any) -> Any:
        return self.rows(sql, *params)[0][0]

    def close(self) -> None:
        self.conn.close()


def assert_success(run) -> None:
    """The dbt invocation succeeded and no node failed (warnings allowed)."""
    bad = [(r["unique_id"], r["status"], r["message"]) for r in run.results
           if r["status"] not in ("success", "pass", "warn")]
    assert run.success and not bad, bad


def assert_full_refresh_agrees(wh: Warehouse, *, quarantine: bool = True) -> None:
    """silver and gold (spec columns) and the quarantine after the incremental runs = after a full refresh."""
    tables = {table: list(cols) for table, cols in SPEC_COLUMNS.items()}
    if quarantine:
        tables["silver.quarantine"] = ["source_table", "record_key", "reason", "status", "bronze_id"]
    incremental = table_checksums(wh.conn, tables)
    wh.conn.rollback()
    assert_success(wh.build("--full-refresh"))
    full = table_checksums(wh.conn, tables)
    wh.conn.rollback()
    assert full == incremental, {t: (incremental[t], full[t]) for t in tables if incremental[t] != full[t]}
