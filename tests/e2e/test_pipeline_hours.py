"""The whole pipeline for three hours through the real DAGs (in-process `dag.test()`), on the real services,
compared table by table with the independent oracle (tests/e2e/oracle.py); then the reconciliation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from shopstream.reconcile import published, warehouse
from shopstream.reconcile.checks import ReconciliationError

from tests.e2e import oracle
from tests.e2e.harness import run_dag

pytestmark = [pytest.mark.e2e, pytest.mark.airflow]

# Across midnight, so the daily aggregates get two days; in the past, so nothing is "in the future".
H1 = datetime(2026, 11, 20, 22, tzinfo=UTC)
HOURS = [H1, H1 + timedelta(hours=1), H1 + timedelta(hours=2)]
HOUR = timedelta(hours=1)


def _ok(result) -> None:
    result.assert_ok()


def _extract(hour: datetime):
    # A manual run at T processes the hour that ended at T (its data interval), like the scheduled run at T.
    result = run_dag("shopstream_extract", hour + HOUR,
                     xcom_tasks=[f"publish_{t}" for t in ("customers", "products", "orders", "events")])
    _ok(result)
    return {t.removeprefix("publish_"): x for t, x in result.xcoms.items()}


def test_three_hours_end_to_end_match_the_oracle(airflow_db, pipeline):
    expected_published = oracle.published(pipeline.catalog, HOURS)
    for hour in HOURS:
        counts = _extract(hour)
        iso = hour.strftime("%Y-%m-%dT%H:00:00Z")
        for topic, c in counts.items():  # each extract task returns (and logs) its counts
            assert c["logical_hour"] == iso and c["topic"] == pipeline.topics[topic], c
            assert c["published"] == expected_published.counts[(iso, topic)], (topic, c)

    bronze = run_dag("shopstream_bronze", HOURS[-1] + HOUR + timedelta(minutes=5), xcom_tasks=["publish"])
    _ok(bronze)
    totals = bronze.xcoms["publish"]["totals"]  # the bronze publish task returns (and logs) the merged counts
    assert totals["inserted"] == sum(expected_published.counts.values()) and totals["remaining_lag"] == 0, totals

    hours_iso = [h.strftime("%Y-%m-%dT%H:00:00Z") for h in HOURS]
    dbt = run_dag("shopstream_dbt", HOURS[-1] + HOUR + timedelta(minutes=10), conf={"reconcile_hours": hours_iso},
                  xcom_tasks=["reconcile"])
    _ok(dbt)
    if "reconcile" in dbt.xcoms:  # the dbt DAG's final task reconciled the three hours
        assert dbt.xcoms["reconcile"]["ok"] and dbt.xcoms["reconcile"]["hours"] == hours_iso, dbt.xcoms

    with psycopg.connect(pipeline.dsn, autocommit=True) as conn:
        problems = oracle.diff(oracle.expected_gold(pipeline.catalog, HOURS), oracle.actual_gold(conn))
    assert not problems, "\n".join(problems)

    # The reconciliation over all three hours adds up against the derivation...
    expected = published.expected_from_derivation(pipeline.catalog, HOURS)
    with psycopg.connect(pipeline.dsn, autocommit=True) as conn:
        summary = warehouse.reconcile(conn, HOURS, expected)
        assert summary["ok"] and len(summary["counts"]) == 15
        by = {(r["hour"], r["entity"]): r for r in summary["counts"]}
        first = H1.strftime("%Y-%m-%dT%H:00:00Z")
        assert by[(first, "orders")]["bronze"] == expected[first]["orders"] > 0
        assert by[(first, "order_items")]["gold"] == expected[first]["order_items"] > 0

        # ... and says where data went missing when gold loses a fact row.
        order_item = conn.execute("select order_item_id, order_date from gold.fct_order_items "
                                  "order by order_item_id limit 1").fetchone()
        conn.execute("delete from gold.fct_order_items where order_item_id = %s", [order_item[0]])
        broken = warehouse.reconcile(conn, HOURS, expected, raise_on_mismatch=False)
        hour = order_item[1].replace(minute=0, second=0).strftime("%Y-%m-%dT%H:00:00Z")
        assert broken["mismatches"] == [
            f"{hour} order_items silver->gold: expected {by[(hour, 'order_items')]['silver']}, "
            f"found {by[(hour, 'order_items')]['silver'] - 1}"]
        with pytest.raises(ReconciliationError, match="MISMATCH"):
            warehouse.reconcile(conn, HOURS, expected)
    print(f"\nin-process runs: bronze {bronze.seconds:.0f} s, dbt {dbt.seconds:.0f} s")
