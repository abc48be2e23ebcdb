"""Property: on any history, incremental = full refresh = oracle.

Hypothesis draws histories (tests/property/histories.py: versions out of order, late parents, parents that
never come, re-sends, items that change between order versions) and spreads them over 1-4 loads. For each
one the test runs the real dbt project on the real PostgreSQL, one incremental `dbt build` per load, and then
checks that
1. gold equals what the plain-Python oracle (tests/e2e/oracle.py, which shares no SQL with dbt) derives from
   the same messages, and
2. a `dbt build --full-refresh` over the same bronze rows ends in the same silver, gold and quarantine, column
   for column.

The examples are derived from a fixed seed (`derandomize`), so CI runs the same histories every time and a
red run is reproducible; `SHOPSTREAM_PROPERTY_EXAMPLES` raises the count and `SHOPSTREAM_PROPERTY_SEED`
explores other histories (e.g. in a nightly job). Each example costs 2-5 dbt builds (~5 s each here).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from shopstream.dbt.warehouse import SPEC_COLUMNS, table_checksums

from tests.e2e.oracle import actual_gold, diff, gold_from_messages
from tests.property.histories import History, histories
from tests.support.warehouse import BronzeWriter, Warehouse

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES = int(os.environ.get("SHOPSTREAM_PROPERTY_EXAMPLES", "12"))
SEED = os.environ.get("SHOPSTREAM_PROPERTY_SEED")
QUARANTINE_COLUMNS = ["source_table", "record_key", "reason", "status", "bronze_id", "topic", "partition", "offset"]
COMPARED = {**{table: list(cols) for table, cols in SPEC_COLUMNS.items()}, "silver.quarantine": QUARANTINE_COLUMNS}


@pytest.fixture
def warehouse(fresh_database, tmp_path):
    wh = Warehouse.open(fresh_database, tmp_path / "dbt-target")
    yield wh
    wh.close()


def reset(wh: Warehouse) -> None:
    """An empty warehouse for the next example: no bronze rows, no dbt relations (cheaper than a new database)."""
    wh.conn.execute("truncate bronze.raw_events, bronze.raw_events_quarantine restart identity")
    wh.conn.execute("drop schema if exists staging, silver, gold cascade")
    wh.conn.commit()
    wh.writer = BronzeWriter(wh.conn)


def check(wh: Warehouse, history: History) -> None:
    reset(wh)
    for batch in history.batches:
        wh.insert(batch)
        wh.build()
    problems = diff(gold_from_messages(history.by_topic()), actual_gold(wh.conn))
    wh.conn.rollback()
    assert not problems, "incremental gold differs from the oracle:\n" + "\n".join(problems) + \
        "\n--- history ---\n" + history.describe()
    incremental = table_checksums(wh.conn, COMPARED)
    wh.conn.rollback()
    wh.build("--full-refresh")
    full = table_checksums(wh.conn, COMPARED)
    wh.conn.rollback()
    differing = sorted(t for t in COMPARED if incremental.get(t) != full.get(t))
    assert not differing, f"incremental and full refresh differ in {differing}\n--- history ---\n" + history.describe()


_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a dbt build takes seconds
    derandomize=SEED is None,
    database=None,  # no example database in the repository or CI workspace
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    # Shrinking replays dbt builds per attempt: allowed when exploring (a seed is given), skipped in CI where
    # the full failing history is printed instead.
    phases=[Phase.explicit, Phase.generate] + ([Phase.shrink] if SEED is not None else []),
)


def test_incremental_equals_full_refresh_equals_oracle(warehouse):
    test = _settings(given(history=histories())(lambda history: check(warehouse, history)))
    if SEED is not None:
        test = seed(int(SEED))(test)
    test()
