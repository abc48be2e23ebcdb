"""The gold data tests can fail: each check of models/gold/_gold.yml (tests/generic/) is run on a warehouse where
a gold row was corrupted by its owner (the warehouse role: no constraint stops an UPDATE that keeps keys and
foreign keys), and must fail; on the intact warehouse every data test passes.

One warehouse is built (two days: customer 1 changes email on the second), kept as a template database, and each
case runs on a copy of it (CREATE DATABASE ... TEMPLATE: a copy costs a fraction of a build).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import psycopg
import pytest

from tests.support.contract_messages import base_hour, customer_value, hour_compact, hour_messages, message
from tests.support.project_env import admin_dsn
from tests.support.warehouse import Warehouse

pytestmark = pytest.mark.integration

DAY1 = base_hour()
DAY2 = DAY1 + timedelta(days=1)
NEW_EMAIL = customer_value(1, ".new")["email"]
OLD_EMAIL = customer_value(1)["email"]
# Order 1 of the second day: customer 2, two items (-00, -01); written by the latest run.
ORDER = f"o-{hour_compact(DAY2)}-0001"
# Order 0 of the first day: customer 1, whose email changed on the second day.
OLD_ORDER = f"o-{hour_compact(DAY1)}-0000"


@pytest.fixture(scope="module")
def template(postgres_service, tmp_path_factory) -> Iterator[dict]:
    """A database built from two days of bronze, incrementally (one `dbt build` per day): its connection
    parameters. Customer 1's email changes on day 2, so fct_orders re-wrote their day-1 orders."""
    name = f"t_gold_checks_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{postgres_service["user"]}"')
    params = {**postgres_service, "dbname": name}
    wh = Warehouse.open(params, tmp_path_factory.mktemp("dbt-template"))
    try:
        wh.insert(hour_messages(DAY1))
        assert wh.build(check=False).success
        day2 = [m for m in hour_messages(DAY2) if not (m.topic == "customers" and m.value["id"] == 1)]
        wh.insert([message("customers", customer_value(1, ".new"), DAY2), *day2])
        assert wh.build(check=False).success
        assert wh.scalar("select count(*) from gold.fct_orders where customer_email = %s", NEW_EMAIL) > 1
    finally:
        wh.close()
    yield params
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def copy_of(template: dict, target_path) -> Iterator[Warehouse]:
    name = f"t_gold_check_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template["dbname"]}" OWNER "{template["user"]}"')
    wh = Warehouse.open({**template, "dbname": name}, target_path)
    try:
        yield wh
    finally:
        wh.close()
        with psycopg.connect(admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def data_test_statuses(run) -> dict[str, str]:
    return {r["unique_id"]: r["status"] for r in run.results if r["unique_id"].startswith("test.")}


# (check: the generic test's name, plus the column for a column-level test; corruption: SQL run as the owner;
#  test_scope: the var the check runs with)
CASES = {
    "order total changed": (
        "line_totals_add_up_to_order_total", f"update gold.fct_orders set total_amount = total_amount + 0.01"
                                             f" where order_id = '{ORDER}'", "batch"),
    "an item lost": (
        "line_totals_add_up_to_order_total", f"delete from gold.fct_order_items where order_item_id = '{ORDER}-01'",
        "batch"),
    "an item's order_date differs from its order's": (
        "denormalised_from:order_date", f"update gold.fct_order_items set order_date = order_date - interval '1 day'"
                                        f" where order_item_id = '{ORDER}-00'", "batch"),
    "an item's customer_id differs from its order's": (
        "denormalised_from:customer_id", f"update gold.fct_order_items set customer_id = '6'"
                                         f" where order_item_id = '{ORDER}-00'", "batch"),
    "customer_email differs from dim_customers.email": (
        "customer_email_is_current", f"update gold.fct_orders set customer_email = 'someone.else@x.dummyjson.com'"
                                     f" where order_id = '{ORDER}'", "batch"),
    # What a missed email change leaves: an older order with the previous email, not re-written by the latest run.
    "an old order kept the customer's previous email": (
        "customer_email_is_current", f"update gold.fct_orders set customer_email = '{OLD_EMAIL}',"
                                     " _src_loaded_at = (select min(_src_loaded_at) from gold.fct_orders)"
                                     f" where order_id = '{OLD_ORDER}'", "batch"),
    "a day's revenue differs from its orders'": (
        "orders_per_day_match", f"update gold.agg_orders_daily set revenue = revenue + 1"
                                f" where order_date = '{DAY2.date()}'", "batch"),
    "a day with orders has no row": (
        "orders_per_day_match", f"delete from gold.agg_orders_daily where order_date = '{DAY2.date()}'", "batch"),
    "a day's events of one type differ from silver's": (
        "events_per_day_match", f"update gold.agg_events_daily set events = events + 1"
                                f" where event_date = '{DAY2.date()}' and event_type = 'page_view'", "batch"),
    # Day 1's rows were written by the first run: only test_scope 'all' checks them.
    "an older day's count, every row checked": (
        "events_per_day_match", f"update gold.agg_events_daily set events = events + 1"
                                f" where event_date = '{DAY1.date()}' and event_type = 'page_view'", "all"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_corrupted_gold_row_fails_its_check(template, tmp_path, case):
    check, corruption, scope = CASES[case]
    test_name, _, column = check.partition(":")
    with copy_of(template, tmp_path / "dbt-target") as wh:
        assert wh.conn.execute(corruption).rowcount == 1, corruption
        wh.conn.commit()
        run = wh.dbt("test", "--select", f"test_name:{test_name}", "--vars", f"{{test_scope: {scope}}}", check=False)
    results = data_test_statuses(run)
    failed = {t for t, status in results.items() if status == "fail"}
    expected = {t for t in results if not column or f"__{column}__" in t}
    assert results and failed == expected, (case, results)


@pytest.mark.parametrize("scope", ["batch", "all"])
def test_every_data_test_passes_on_the_intact_warehouse(template, tmp_path, scope):
    with copy_of(template, tmp_path / "dbt-target") as wh:
        run = wh.dbt("test", "--exclude", "test_type:unit", "--vars", f"{{test_scope: {scope}}}", check=False)
    results = data_test_statuses(run)
    assert run.success and results and set(results.values()) == {"pass"}, results
