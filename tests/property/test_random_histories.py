"""Property: on any history, after EVERY batch, incremental = full refresh = oracle.

Hypothesis draws histories (tests/property/histories.py: versions out of order and tied in time, conflicting
duplicates on any partition, late parents, parents that never come, re-sends, e-mail swaps and chains, items
that change between order versions, timestamps far in the past and the future) and cuts them into 1-4 loads. Two databases receive the
same bronze rows, load by load: one is built incrementally (`dbt build`, keeping its state as production
does), the other with `dbt build --full-refresh` every time. After each load the test checks that
1. every silver and gold table and the quarantine of the incremental database equal what the plain-Python
   oracle (tests/e2e/oracle.py, which shares no SQL with dbt) derives from the messages loaded so far, and
2. the full-refresh database holds the same rows in every silver and gold table and the quarantine (spec
   columns, and the bronze coordinates of the quarantined rows).
The builds skip dbt's unit tests (fixed inputs, the same on every build: tests/integration runs them) and
run every data test.

CI runs 3 generated histories plus the regressions (measured: 87 s on this 2-core machine at load ~4; a
fixed set, `derandomize`: the same histories every time, a red run is reproducible, no
shrinking; the regressions are tests/property/regressions.py); `make property` runs many more with
shrinking (SHOPSTREAM_PROPERTY_EXAMPLES, SHOPSTREAM_PROPERTY_SEED). A failing history found that way is
kept in regressions.py.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC

import pytest
from hypothesis import HealthCheck, Phase, example, given, seed, settings
from shopstream.dbt.warehouse import SPEC_COLUMNS, table_checksums

from tests.e2e.oracle import WAREHOUSE_KEYS, Received, actual_tables, diff, warehouse_from_messages
from tests.property.histories import History, histories
from tests.property.regressions import REGRESSIONS
from tests.support.project_env import admin_dsn
from tests.support.warehouse import BronzeWriter, Warehouse

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES = int(os.environ.get("SHOPSTREAM_PROPERTY_EXAMPLES", "3"))
SEED = os.environ.get("SHOPSTREAM_PROPERTY_SEED")
QUARANTINE_COLUMNS = ["source_table", "record_key", "reason", "status", "bronze_id", "topic", "partition", "offset"]
COMPARED = {**{table: list(cols) for table, cols in SPEC_COLUMNS.items()}, "silver.quarantine": QUARANTINE_COLUMNS}
BUILD_ARGS = ("--exclude-resource-type", "unit_test")


@pytest.fixture
def warehouses(fresh_database, tmp_path):
    """(incremental, full refresh): two throwaway databases, each with its own dbt target folder."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{fresh_database["user"]}"')
    incremental = Warehouse.open(fresh_database, tmp_path / "dbt-incremental")
    full = Warehouse.open({**fresh_database, "dbname": name}, tmp_path / "dbt-full-refresh")
    try:
        yield incremental, full
    finally:
        incremental.close()
        full.close()
        with psycopg.connect(admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reset(wh: Warehouse) -> None:
    """An empty warehouse for the next example: no bronze rows, no dbt relations (cheaper than a new database)."""
    wh.conn.execute("truncate bronze.raw_events, bronze.raw_events_quarantine restart identity")
    wh.conn.execute("drop schema if exists staging, silver, gold cascade")
    wh.conn.commit()
    wh.writer = BronzeWriter(wh.conn)


def check(incremental: Warehouse, full: Warehouse, history: History) -> None:
    reset(incremental)
    reset(full)
    received: list[Received] = []
    for n, batch in enumerate(history.batches):
        ids = incremental.insert(batch)
        assert full.insert(batch) == ids, "both databases must give the rows the same bronze ids"
        coordinates = dict((r[0], r[1:]) for r in incremental.rows(
            'select bronze_id, "partition", "offset" from bronze.raw_events where bronze_id = any(%s)', ids))
        received += [Received(m.topic, m.event_ts.astimezone(UTC).replace(tzinfo=None), m.value,
                              *coordinates[bronze_id], bronze_id=bronze_id)
                     for m, bronze_id in zip(batch, ids, strict=True)]
        incremental.build(*BUILD_ARGS)
        full.build("--full-refresh", *BUILD_ARGS)
        context = f"\n--- after batch {n} of the history ---\n" + history.describe()

        actual = actual_tables(incremental.conn)
        incremental.conn.rollback()
        problems = diff(warehouse_from_messages(received), actual, keys=WAREHOUSE_KEYS)
        assert not problems, "the incremental warehouse differs from the oracle:\n" + "\n".join(problems) + context

        rebuilt = actual_tables(full.conn)
        sums = (table_checksums(incremental.conn, COMPARED), table_checksums(full.conn, COMPARED))
        incremental.conn.rollback()
        full.conn.rollback()
        problems = diff(rebuilt, actual, keys=WAREHOUSE_KEYS)
        differing = sorted(t for t in COMPARED if sums[0].get(t) != sums[1].get(t))
        assert not problems and not differing, (
            f"incremental and full refresh differ in {differing} (incremental = 'got'):\n" + "\n".join(problems)
            + context)


_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a dbt build takes seconds
    derandomize=SEED is None,
    database=None,  # no example database in the repository or CI workspace: regressions are @examples
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    # Shrinking replays dbt builds per attempt: allowed when exploring (a seed is given), skipped in CI where
    # the full failing history is printed instead.
    phases=[Phase.explicit, Phase.generate] + ([Phase.shrink] if SEED is not None else []),
)


def test_incremental_equals_full_refresh_equals_oracle(warehouses, capsys):
    checked: list[int] = []

    def property_(history: History) -> None:
        check(*warehouses, history)
        checked.append(len(history.batches))

    test = given(history=histories())(property_)
    for regression in REGRESSIONS:
        test = example(history=regression)(test)
    test = _settings(test)
    if SEED is not None:
        test = seed(int(SEED))(test)
    test()
    with capsys.disabled():  # the count a report quotes (shown with or without -s)
        print(f"\nproperty: {len(checked)} histories ({sum(checked)} batches) equal in all three, "
              f"seed {SEED or 'derandomized'}")
