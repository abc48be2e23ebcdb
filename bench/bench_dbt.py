"""dbt increment cost vs history size: the same hourly increment of 100,000 bronze rows on top of a history of
100,000 rows and of 10,000,000 rows (quick: 1,000,000), plus a full refresh of the big history.

Target: the increment on the big history takes at most 1.5x the increment on the small one (every staging,
silver and gold step reads only what is new: watermarks on indexes, see include/dbt/shopstream/README.md).

Bronze history is generated in the warehouse with generate_series, hour by hour, shaped like the contract's
messages (per hour: 1,000 customers and 500 products - full snapshots -, 15,000 orders with 1-3 items,
83,500 clickstream events; ingested an hour after the hour). The history is built once with `dbt build`
(from empty) and VACUUM ANALYZEd (the steady state autovacuum keeps); then the increment - the next hour,
ingested now - is loaded and `dbt build` (models + unit and data tests) is timed. The machine is shared, so
three successive hours are timed on each history, alternating between the two, and the fastest counts.
Each history lives in its own throwaway database, dropped at the end.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

ROWS_PER_HOUR = 100_000
MIX = {"customers": 1_000, "products": 500, "orders": 15_000, "events": 83_500}
assert sum(MIX.values()) == ROWS_PER_HOUR
EVENT_TYPES = "{page_view,product_view,add_to_cart,checkout_start,checkout_complete}"
STATUSES = "{placed,paid,shipped,delivered,cancelled}"
TARGET_RATIO = 1.5
INCREMENTS = int(os.environ.get("BENCH_DBT_INCREMENTS", "3"))


def _env_params() -> dict:
    if "PGPORT" not in os.environ:  # not run through make: derive PG* from .env like scripts/common.sh
        import subprocess

        out = subprocess.run(["bash", "-c", f"source {ROOT / 'scripts' / 'common.sh'} >/dev/null && env -0"],
                             check=True, capture_output=True).stdout
        for item in out.split(b"\0"):
            if b"=" in item:
                k, _, v = item.partition(b"=")
                os.environ.setdefault(k.decode(), v.decode())
    return {"host": os.environ["PGHOST"], "port": int(os.environ["PGPORT"]), "user": os.environ["PGUSER"],
            "password": os.environ["PGPASSWORD"]}


def _admin_dsn() -> str:
    return f"host={ROOT / '.local' / 'pg' / 'run'} port={os.environ['PGPORT']} user=postgres dbname=postgres"


def _hour_sql(h: int) -> list[tuple[str, dict]]:
    """INSERT ... SELECT statements for hour index `h` (event hour = %(base)s + h hours)."""
    cols = 'insert into bronze.raw_events (topic, record_key, record_value, "partition", "offset", event_ts, ingested_at)'
    hour = "(%(base)s::timestamp + make_interval(hours => %(h)s))"
    ingested = f"coalesce(%(ingested)s::timestamp, {hour} + interval '65 minutes')"
    per_part = {t: -(-n // 3) for t, n in MIX.items()}  # offsets per partition per hour
    stmts = [
        (f"""{cols}
        select 'customers', i::text,
               jsonb_build_object('id', i, 'firstName', 'First' || i, 'lastName', 'Last' || i,
                                  'email', 'user' || i || '@x.dummyjson.com', 'age', 20 + i %% 50,
                                  'username', 'user' || i, 'address', jsonb_build_object('city', 'Phoenix')),
               i %% 3, %(h)s::bigint * {per_part['customers']} + i / 3, {hour}, {ingested}
        from generate_series(1, {MIX['customers']}) as i""", {}),
        (f"""{cols}
        select 'products', i::text,
               jsonb_build_object('id', i, 'title', 'Product ' || i, 'description', 'A fine product number ' || i,
                                  'price', 5 + i * 0.5, 'category', 'cat' || (i %% 20),
                                  'meta', jsonb_build_object('createdAt', '2025-04-30T09:41:02.053Z',
                                                             'updatedAt', '2025-04-30T09:41:02.053Z')),
               i %% 3, %(h)s::bigint * {per_part['products']} + i / 3, {hour}, {ingested}
        from generate_series(1, {MIX['products']}) as i""", {}),
        (f"""{cols}
        select 'orders', o.order_id,
               jsonb_build_object('order_id', o.order_id, 'customer_id', (1 + n %% {MIX['customers']})::text,
                                  'order_ts', to_char(o.ts, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                  'status', ('{STATUSES}'::text[])[1 + n %% 5], 'currency', 'USD',
                                  'total_amount', it.total::text, 'items', it.items, 'schema_version', 1),
               n %% 3, %(h)s::bigint * {per_part['orders']} + n / 3, o.ts, {ingested}
        from generate_series(0, {MIX['orders'] - 1}) as n
        cross join lateral (
            select 'o-' || to_char({hour}, 'YYYYMMDDHH24') || '-' || lpad(n::text, 5, '0') as order_id,
                   {hour} + make_interval(secs => (n * 7) %% 3600) as ts
        ) as o
        cross join lateral (
            select jsonb_agg(jsonb_build_object(
                       'order_item_id', o.order_id || '-' || lpad(l::text, 2, '0'), 'line', l,
                       'product_id', (1 + (n + l) %% {MIX['products']})::text, 'quantity', 1 + (n + l) %% 3,
                       'unit_price', to_char(5 + (1 + (n + l) %% {MIX['products']}) * 0.5, 'FM999990.00'))) as items,
                   sum((1 + (n + l) %% 3) * (5 + (1 + (n + l) %% {MIX['products']}) * 0.5)) as total
            from generate_series(0, n %% 3) as l
        ) as it""", {}),
        (f"""{cols}
        select 'events', e.event_id,
               jsonb_build_object('event_id', e.event_id, 'event_type', ('{EVENT_TYPES}'::text[])[1 + n %% 5],
                                  'customer_id', (1 + n %% {MIX['customers']})::text,
                                  'event_ts', to_char(e.ts, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                  'session_id', 's-' || (n / 7), 'product_id', (1 + n %% {MIX['products']})::text,
                                  'order_id', null, 'page', '/products/' || (1 + n %% {MIX['products']}),
                                  'schema_version', 1),
               n %% 3, %(h)s::bigint * {per_part['events']} + n / 3, e.ts, {ingested}
        from generate_series(0, {MIX['events'] - 1}) as n
        cross join lateral (
            select 'e-' || to_char({hour}, 'YYYYMMDDHH24') || '-' || lpad(n::text, 6, '0') as event_id,
                   {hour} + make_interval(secs => (n * 13) %% 3600) as ts
        ) as e""", {}),
    ]
    return stmts


def _load_hours(conn, base: datetime, hours: range, ingested: datetime | None = None) -> float:
    started = time.perf_counter()
    for h in hours:
        for sql, _ in _hour_sql(h):
            conn.execute(sql, {"base": base.replace(tzinfo=None), "h": h,
                               "ingested": ingested.replace(tzinfo=None) if ingested else None})
        conn.commit()
    return time.perf_counter() - started


def _vacuum_analyze(params: dict) -> None:
    import psycopg

    with psycopg.connect(**params, autocommit=True) as conn:
        for schema in ("bronze", "staging", "silver", "gold"):
            for (table,) in conn.execute(
                    "select tablename from pg_tables where schemaname = %s", [schema]).fetchall():
                conn.execute(f'vacuum (analyze) "{schema}"."{table}"')


class _History:
    """One throwaway database holding a bronze history built with dbt, ready for increments."""

    def __init__(self, rows: int, increment_hour: datetime):
        self.rows, self.hours = rows, rows // ROWS_PER_HOUR
        self.base = increment_hour - timedelta(hours=self.hours)
        self.name = f"bench_dbt_{uuid.uuid4().hex[:8]}"
        self.params = {**_env_params(), "dbname": self.name}
        self.target = Path(f"/tmp/{self.name}-target")
        self.out: dict = {"history_rows": rows}
        self.increments: list[tuple[float, object]] = []

    def build(self) -> None:
        import psycopg
        from shopstream.dbt.runner import run_dbt
        from shopstream.dbt.warehouse import bronze_support_sql

        with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
            admin.execute(f'create database "{self.name}" owner "{self.params["user"]}"')
        with psycopg.connect(**self.params) as conn:
            conn.execute((ROOT / "include" / "sql" / "bronze" / "001_raw_events.sql").read_text())
            for sql in bronze_support_sql():
                conn.execute(sql)
            conn.commit()
            self.out["generate_history_s"] = round(_load_hours(conn, self.base, range(self.hours)), 2)
        started = time.perf_counter()
        run_dbt(["build"], self.params, target_path=self.target)
        self.out["history_build_s"] = round(time.perf_counter() - started, 2)
        _vacuum_analyze(self.params)

    def increment(self) -> float:
        """Load the next hour (ingested now) and time `dbt build`."""
        import psycopg
        from shopstream.dbt.runner import run_dbt

        h = self.hours + len(self.increments)
        with psycopg.connect(**self.params) as conn:
            _load_hours(conn, self.base, range(h, h + 1), ingested=datetime.now(UTC))
        started = time.perf_counter()
        run = run_dbt(["build"], self.params, target_path=self.target)
        seconds = time.perf_counter() - started
        self.increments.append((seconds, run))
        print(f"bench_dbt: history {self.rows:,}: increment {len(self.increments)} {seconds:.2f} s",
              file=sys.stderr, flush=True)
        return seconds

    def full_refresh(self) -> None:
        from shopstream.dbt.runner import run_dbt

        started = time.perf_counter()
        run_dbt(["build", "--full-refresh"], self.params, target_path=self.target)
        self.out["full_refresh_build_s"] = round(time.perf_counter() - started, 2)

    def summary(self) -> dict:
        import psycopg

        best_s, best = min(self.increments, key=lambda r: r[0])
        self.out["increment_runs_s"] = [round(r[0], 2) for r in self.increments]
        self.out["increment_build_s"] = best_s
        self.out["increment_slowest"] = sorted(
            ((r["unique_id"].split(".")[-1], round(r["seconds"], 2)) for r in best.results), key=lambda x: -x[1])[:6]
        with psycopg.connect(**self.params) as conn:
            for table in ("bronze.raw_events", "silver.events", "silver.orders", "silver.quarantine"):
                self.out[table] = conn.execute(f"select count(*) from {table}").fetchone()[0]
        return self.out

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
            admin.execute(f'drop database if exists "{self.name}" with (force)')


def run(quick: bool) -> list[dict]:
    big_rows = int(os.environ.get("BENCH_DBT_BIG_ROWS") or (1_000_000 if quick else 10_000_000))
    # Same increment hours (from midday of yesterday) for both histories: both recompute the same kind of day.
    increment_hour = (datetime.now(UTC) - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    small, big = _History(100_000, increment_hour), _History(big_rows, increment_hour)
    try:
        small.build()
        big.build()
        # The machine is shared: the increments alternate between the two histories (so both see the same
        # background load), and the fastest of each history's INCREMENTS equivalent hours is its figure.
        for _ in range(INCREMENTS):
            small.increment()
            big.increment()
        big.full_refresh()
        small_res, big_res = small.summary(), big.summary()
    finally:
        small.drop()
        big.drop()
    ratio = big_res["increment_build_s"] / small_res["increment_build_s"]
    return [{
        "name": "dbt_increment_vs_history",
        "figures": {
            "increment_rows": ROWS_PER_HOUR,
            "small_history_rows": small.rows,
            "big_history_rows": big.rows,
            "increment_on_small_s": round(small_res["increment_build_s"], 2),
            "increment_on_big_s": round(big_res["increment_build_s"], 2),
            "history_build_small_s": small_res["history_build_s"],
            "history_build_big_s": big_res["history_build_s"],
            "full_refresh_big_s": big_res["full_refresh_build_s"],
        },
        "ratios": {"big_vs_small_increment": round(ratio, 3)},
        "targets": {"big_vs_small_increment": f"<= {TARGET_RATIO}", "met": ratio <= TARGET_RATIO},
        "notes": (f"dbt build (models + unit/data tests), in-process dbtRunner, 2 threads; fastest of "
                  f"{INCREMENTS} alternating increments. small: {small_res}; big: {big_res}"),
    }]


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=os.environ.get("BENCH_QUICK", "0") == "1"), indent=2, default=str))
