"""The reconciliation against what extract recorded, with versions checked, and the ops schema's records, on real
PostgreSQL (issue #13's operational defect "Reconciliation sees only counts", issue #14's Pipeline health).

- an hour the generator never produced (hand-made contract messages) reconciles against what was recorded as
  published: no false alarm, and the kafka->bronze check still runs;
- a key whose silver or gold row is not the latest version staging admitted fails the reconciliation, naming it;
- every record is an upsert: writing again overwrites, never duplicates; the roles can do exactly what
  include/sql/security grants (loader and dbt write, analysts read only).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import psycopg
import pytest
from shopstream import ops
from shopstream.reconcile import published
from shopstream.reconcile.checks import ReconciliationError
from shopstream.reconcile.warehouse import reconcile

from tests.support.contract_messages import base_hour, customer_value, hour_messages, message
from tests.support.warehouse import published_results

pytestmark = pytest.mark.integration

TOPICS = {t: t for t in ("customers", "products", "orders", "events")}


def _record_published(conn, hour, msgs) -> None:
    """What the extract task records for an hour it published (ops.record_extract), from the messages."""
    ops.record_extract(conn, published_results(msgs)[hour.strftime("%Y-%m-%dT%H:00:00Z")], "test")


def test_an_hour_the_generator_never_made_reconciles_against_what_extract_recorded(wh):
    hour = base_hour(days_ago=2)
    msgs = hour_messages(hour)
    wh.insert(msgs)
    assert wh.build().success
    with psycopg.connect(**{k: wh.params[k] for k in ("host", "port", "user", "password", "dbname")},
                         autocommit=True) as conn:
        # nothing recorded: published unknown, the other layers still add up (no alarm from a re-derivation)
        assert published.expected_counts(conn, [hour], TOPICS) == {}
        assert reconcile(conn, [hour], {}, TOPICS)["ok"]
        _record_published(conn, hour, msgs)
        expected = published.expected_counts(conn, [hour], TOPICS)
        keys = Counter(m.topic for m in {(m.topic, m.key): m for m in msgs}.values())
        assert {k: v for k, v in expected[hour.strftime("%Y-%m-%dT%H:00:00Z")].items() if k != "order_items"} == keys
        summary = reconcile(conn, [hour], expected, TOPICS)
        assert summary["ok"] and all(r["published"] is not None for r in summary["counts"]), summary["table"]
        # a message extract recorded but bronze never got is a kafka->bronze mismatch
        conn.execute("update ops.extract_published set keys = keys + 1 where topic = 'events'")
        broken = reconcile(conn, [hour], published.expected_counts(conn, [hour], TOPICS), TOPICS,
                           raise_on_mismatch=False)
        assert [m for m in broken["mismatches"] if "kafka->bronze" in m] and not broken["ok"]


def test_a_key_held_in_an_older_version_fails_the_reconciliation(wh):
    hour = base_hour(days_ago=2)
    msgs = hour_messages(hour, customers=range(1, 4), products=range(1, 3), n_orders=2, n_events=3)
    newer = message("customers", customer_value(1, email_suffix=".new"), hour + timedelta(minutes=30))
    wh.insert([*msgs, newer])
    assert wh.build().success
    with psycopg.connect(**{k: wh.params[k] for k in ("host", "port", "user", "password", "dbname")},
                         autocommit=True) as conn:
        assert reconcile(conn, [hour], {}, TOPICS)["ok"]
        # silver keeps the older version of customer 1 (what the email-swap defect did): the counts still add up
        right = conn.execute("select _bronze_id, email, updated_at, _event_ts from silver.customers "
                             "where customer_id = '1'").fetchone()
        old_id, old_email, old_ts = conn.execute(
            "select bronze_id, record_value->>'email', event_ts from bronze.raw_events "
            "where topic = 'customers' and record_key = '1' order by event_ts limit 1").fetchone()
        conn.execute("update silver.customers set _bronze_id = %s, email = %s, updated_at = %s, _event_ts = %s "
                     "where customer_id = '1'", [old_id, old_email, old_ts, old_ts])
        summary = reconcile(conn, [hour], {}, TOPICS, raise_on_mismatch=False)
        assert [c for c in summary["counts"] if c["entity"] == "customers"][0]["silver"] == 3
        # silver holds another version than the latest admitted; gold's rows (the customer, the email on its
        # orders) no longer show silver's
        assert summary["mismatches"][0] == (f"{hour:%Y-%m-%dT%H:00:00Z} customers version: expected 0, found 1 "
                                            "(keys not in the latest admitted version, e.g. 1)"), summary["table"]
        assert [m.split()[1:3] for m in summary["mismatches"]] == [["customers", "version:"], ["orders", "version:"]]
        with pytest.raises(ReconciliationError, match="customers version"):
            reconcile(conn, [hour], {}, TOPICS)
        # silver right again, but gold shows another email for the customer and its orders
        assert right[1] == newer.value["email"]
        conn.execute("update silver.customers set _bronze_id = %s, email = %s, updated_at = %s, _event_ts = %s "
                     "where customer_id = '1'", list(right))
        assert reconcile(conn, [hour], {}, TOPICS)["ok"]
        conn.execute("update gold.fct_orders set customer_email = 'stale@x.io' "
                     "where order_id = (select min(order_id) from gold.fct_orders)")
        summary = reconcile(conn, [hour], {}, TOPICS, raise_on_mismatch=False)
        assert [m for m in summary["mismatches"] if " orders version" in m], summary["table"]


def test_records_are_upserts_and_the_reconcile_results_keep_the_mismatches(wh):
    hour = base_hour(days_ago=2)
    wh.insert(hour_messages(hour, n_orders=2, n_events=3))
    assert wh.build().success
    with psycopg.connect(**{k: wh.params[k] for k in ("host", "port", "user", "password", "dbname")},
                         autocommit=True) as conn:
        summary = reconcile(conn, [hour], {}, TOPICS)
        assert ops.record_reconciliation(conn, summary, TOPICS, "run-1") == 5
        conn.execute("delete from gold.dim_products where product_id = '6'")
        broken = reconcile(conn, [hour], {}, TOPICS, raise_on_mismatch=False)
        ops.record_reconciliation(conn, broken, TOPICS, "run-1")  # a retry of the same task: overwrites
        rows = conn.execute("select entity, ok, mismatches, silver, gold from ops.reconcile_results "
                            "order by entity").fetchall()
        assert len(rows) == 5
        by = {r[0]: r for r in rows}
        assert by["products"][1] is False and "silver->gold" in by["products"][2][0]
        assert by["customers"][1] is True and by["customers"][2] == []
        merged = {"topics": {"orders": {"inserted": 2, "quarantined": 1, "remaining_lag": 0,
                                        "quarantined_by_reason": {"invalid_json": 1}}}}
        for _ in range(2):
            ops.record_bronze_loads(conn, merged, "run-1", ["2026-11-27T13:00:00Z"])
        assert conn.execute("select count(*), max(quarantined_by_reason->>'invalid_json') "
                            "from ops.bronze_loads").fetchone() == (1, "1")


@pytest.mark.parametrize("fresh_database", ["least_privilege"], indirect=True)
def test_loader_and_dbt_write_the_ops_records_and_analysts_only_read_them(fresh_database):
    roles = fresh_database.roles

    def connect(role):
        p = roles[role]
        return psycopg.connect(host=p["host"], port=p["port"], user=p["user"], password=p["password"],
                               dbname=fresh_database["dbname"], autocommit=True)

    merged = {"topics": {"orders": {"inserted": 2, "quarantined": 0, "remaining_lag": 3}}}
    with connect("loader") as conn:
        ops.record_bronze_loads(conn, merged, "run-1")
        ops.record_bronze_loads(conn, merged, "run-1")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("delete from ops.bronze_loads")
    with connect("dbt") as conn:
        ops.record_extract(conn, {"orders": {"topic": "orders", "logical_hour": "2026-11-27T13:00:00Z",
                                             "published": 3, "keys": 3}}, "run-1")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("truncate ops.extract_published")
    with connect("analyst") as conn:
        assert conn.execute("select count(*) from ops.bronze_loads").fetchone() == (1,)
        assert conn.execute("select keys from ops.extract_published").fetchall() == [(3,)]
        with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction)):
            conn.execute("insert into ops.bronze_loads (dag_run_id, topic, loaded_at, inserted, quarantined) "
                         "values ('x', 'y', now(), 0, 0)")


def test_a_database_without_the_ops_schema_loses_only_the_records(wh, caplog):
    """Set up before the ops schema existed (an old Docker volume): the tasks go on, the log says what to do."""
    with psycopg.connect(**{k: wh.params[k] for k in ("host", "port", "user", "password", "dbname")},
                         autocommit=True) as conn:
        conn.execute("drop schema ops cascade")
        results = {"orders": {"topic": "orders", "logical_hour": "2026-11-27T13:00:00Z", "published": 3, "keys": 3}}
        assert ops.record_extract(conn, results, "run") == 0
        assert published.expected_counts(conn, [base_hour()], TOPICS, {"2026-11-27T13:00:00Z": {"orders": 3}}) == {
            "2026-11-27T13:00:00Z": {"orders": 3}}
    assert "apply include/sql/ops" in caplog.text


def test_the_reconcile_task_records_its_results_also_when_it_fails(wh):
    """The dbt DAG's `reconcile` task (conf hours, so no asset events): expected = what extract recorded; the
    results land in ops.reconcile_results, and a mismatch fails the task after recording it."""
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowFailException
    from shopstream.reconcile.task import run_reconcile_task

    hour = base_hour(days_ago=2)
    msgs = hour_messages(hour, n_orders=2, n_events=3)
    wh.insert(msgs)
    assert wh.build().success
    iso = hour.strftime("%Y-%m-%dT%H:00:00Z")
    run = SimpleNamespace(conf={"reconcile_hours": [iso]}, run_id="manual__t", run_after=None, start_date=None)
    with psycopg.connect(**{k: wh.params[k] for k in ("host", "port", "user", "password", "dbname")},
                         autocommit=True) as conn:
        _record_published(conn, hour, msgs)
        summary = run_reconcile_task(run, None, None)
        assert summary["ok"] and summary["hours"] == [iso]
        assert conn.execute("select count(*), bool_and(ok), min(published) > 0 from ops.reconcile_results "
                            "where dag_run_id = 'manual__t'").fetchone() == (5, True, True)
        conn.execute("update ops.extract_published set keys = keys + 2 where topic = 'products'")
        with pytest.raises(AirflowFailException, match="products kafka->bronze"):
            run_reconcile_task(run, None, None)
        assert conn.execute("select ok, mismatches from ops.reconcile_results where entity = 'products'"
                            ).fetchone()[0] is False
        assert conn.execute("select count(*) from ops.reconcile_results").fetchone() == (5,)  # overwritten
