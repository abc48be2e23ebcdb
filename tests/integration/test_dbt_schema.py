"""The silver and gold tables dbt builds match the spec (/work/shared/seed/medallion-architecture.md) exactly.

The spec's tables are hard-coded below, copied from the spec document: they are the oracle, independent of
the dbt project's own YAML. Columns starting with "_" are audit columns (allowed beyond the spec).
"""

from __future__ import annotations

import pytest

from tests.support.contract_messages import base_hour, hour_messages
from tests.support.warehouse import Warehouse

pytestmark = pytest.mark.integration

# information_schema.columns.data_type of each spec type.
VARCHAR, TEXT, DECIMAL = "character varying", "text", "numeric"
TIMESTAMP, INTEGER, JSONB, DATE = "timestamp without time zone", "integer", "jsonb", "date"

SPEC: dict[str, list[tuple[str, str]]] = {
    "silver.customers": [("customer_id", VARCHAR), ("first_name", VARCHAR), ("last_name", VARCHAR),
                         ("email", VARCHAR), ("created_at", TIMESTAMP), ("updated_at", TIMESTAMP)],
    "silver.products": [("product_id", VARCHAR), ("name", VARCHAR), ("description", TEXT), ("price", DECIMAL),
                        ("category", VARCHAR), ("created_at", TIMESTAMP), ("updated_at", TIMESTAMP)],
    "silver.orders": [("order_id", VARCHAR), ("customer_id", VARCHAR), ("order_date", TIMESTAMP),
                      ("total_amount", DECIMAL), ("status", VARCHAR), ("created_at", TIMESTAMP),
                      ("updated_at", TIMESTAMP)],
    "silver.order_items": [("order_item_id", VARCHAR), ("order_id", VARCHAR), ("product_id", VARCHAR),
                           ("quantity", INTEGER), ("unit_price", DECIMAL), ("created_at", TIMESTAMP)],
    "silver.events": [("event_id", VARCHAR), ("customer_id", VARCHAR), ("event_type", VARCHAR),
                      ("event_data", JSONB), ("created_at", TIMESTAMP)],
    "gold.dim_customers": [("customer_id", VARCHAR), ("first_name", VARCHAR), ("last_name", VARCHAR),
                           ("email", VARCHAR), ("created_at", TIMESTAMP), ("updated_at", TIMESTAMP)],
    "gold.dim_products": [("product_id", VARCHAR), ("name", VARCHAR), ("description", TEXT), ("price", DECIMAL),
                          ("category", VARCHAR), ("created_at", TIMESTAMP), ("updated_at", TIMESTAMP)],
    "gold.fct_orders": [("order_id", VARCHAR), ("customer_id", VARCHAR), ("order_date", TIMESTAMP),
                        ("total_amount", DECIMAL), ("status", VARCHAR), ("customer_email", VARCHAR)],
    "gold.fct_order_items": [("order_item_id", VARCHAR), ("order_id", VARCHAR), ("product_id", VARCHAR),
                             ("quantity", INTEGER), ("unit_price", DECIMAL), ("line_total", DECIMAL),
                             ("order_date", TIMESTAMP), ("customer_id", VARCHAR)],
    "gold.agg_orders_daily": [("order_date", DATE), ("orders", INTEGER), ("revenue", DECIMAL)],
    "gold.agg_events_daily": [("event_date", DATE), ("event_type", VARCHAR), ("events", INTEGER)],
}

PRIMARY_KEYS = {
    "silver.customers": ["customer_id"], "silver.products": ["product_id"], "silver.orders": ["order_id"],
    "silver.order_items": ["order_item_id"], "silver.events": ["event_id"],
    "gold.dim_customers": ["customer_id"], "gold.dim_products": ["product_id"], "gold.fct_orders": ["order_id"],
    "gold.fct_order_items": ["order_item_id"], "gold.agg_orders_daily": ["order_date"],
    "gold.agg_events_daily": ["event_date", "event_type"],
}
NOT_NULL = {  # besides the primary keys
    "silver.customers": ["email"], "silver.products": ["price"],
    "silver.orders": ["customer_id", "order_date", "total_amount"],
    "silver.order_items": ["order_id", "product_id", "quantity", "unit_price"],
    "silver.events": ["customer_id", "event_type", "created_at"],
}
UNIQUE = {"silver.customers": [["email"]]}
FOREIGN_KEYS = {  # (table, column) -> referenced (table, column)
    ("silver.orders", "customer_id"): ("silver.customers", "customer_id"),
    ("silver.order_items", "order_id"): ("silver.orders", "order_id"),
    ("silver.order_items", "product_id"): ("silver.products", "product_id"),
    ("silver.events", "customer_id"): ("silver.customers", "customer_id"),
    ("gold.fct_orders", "customer_id"): ("gold.dim_customers", "customer_id"),
    ("gold.fct_order_items", "order_id"): ("gold.fct_orders", "order_id"),
    ("gold.fct_order_items", "product_id"): ("gold.dim_products", "product_id"),
}
# Relations the project adds to the spec's schemas, on purpose (documented in the models' YAML).
EXTRA_RELATIONS = {"silver.quarantine"}


@pytest.fixture(scope="module")
def built(postgres_service, tmp_path_factory):
    """One warehouse built from an empty database with fixture bronze data (module-scoped: read-only tests)."""
    import uuid

    import psycopg

    from tests.support.project_env import admin_dsn

    name = f"t_schema_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{postgres_service["user"]}"')
    wh = Warehouse.open({**postgres_service, "dbname": name}, tmp_path_factory.mktemp("dbt-schema"))
    try:
        wh.insert(hour_messages(base_hour()))
        wh.build()
        yield wh
    finally:
        wh.close()
        with psycopg.connect(admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _columns(wh: Warehouse, table: str) -> list[tuple[str, str]]:
    schema, name = table.split(".")
    return wh.rows(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = %s and table_name = %s order by ordinal_position", schema, name)


@pytest.mark.parametrize("table", sorted(SPEC))
def test_columns_and_types_match_the_spec(built, table):
    columns = _columns(built, table)
    assert columns, f"{table} does not exist"
    spec_part = [c for c in columns if not c[0].startswith("_")]
    assert spec_part == SPEC[table], f"{table}: columns/types differ from the spec"
    # The spec's columns come first, in the spec's order; everything after them is an "_" audit column.
    assert columns[: len(SPEC[table])] == SPEC[table]
    assert all(name.startswith("_") for name, _ in columns[len(SPEC[table]):])


def test_schemas_hold_exactly_the_spec_tables(built):
    relations = {f"{s}.{n}" for s, n in built.rows(
        "select table_schema, table_name from information_schema.tables where table_schema in ('silver', 'gold')")}
    assert relations == set(SPEC) | EXTRA_RELATIONS


def test_tables_are_not_empty(built):
    for table in SPEC:
        assert built.scalar(f"select count(*) from {table}") > 0, f"{table} is empty after the fixture build"


def _constraint_columns(wh: Warehouse, table: str, contype: str) -> list[list[str]]:
    rows = wh.rows(
        """
        select array_agg(a.attname::text order by k.ord)
        from pg_constraint c
        cross join lateral unnest(c.conkey) with ordinality as k(attnum, ord)
        join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum
        where c.conrelid = %s::regclass and c.contype = %s
        group by c.oid
        """, table, contype)
    return sorted(r[0] for r in rows)


@pytest.mark.parametrize("table", sorted(PRIMARY_KEYS))
def test_primary_keys(built, table):
    assert _constraint_columns(built, table, "p") == [PRIMARY_KEYS[table]]


@pytest.mark.parametrize("table", sorted(SPEC))
def test_not_null_columns(built, table):
    schema, name = table.split(".")
    nullable = dict(built.rows(
        "select column_name, is_nullable from information_schema.columns where table_schema = %s and table_name = %s",
        schema, name))
    for column in PRIMARY_KEYS[table] + NOT_NULL.get(table, []):
        assert nullable[column] == "NO", f"{table}.{column} must be NOT NULL"


def test_unique_email(built):
    for table, uniques in UNIQUE.items():
        assert _constraint_columns(built, table, "u") == uniques


def test_foreign_keys(built):
    rows = built.rows(
        """
        select c.conrelid::regclass::text, a.attname::text, c.confrelid::regclass::text, fa.attname::text
        from pg_constraint c
        join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
        join pg_attribute fa on fa.attrelid = c.confrelid and fa.attnum = c.confkey[1]
        where c.contype = 'f' and c.connamespace in ('silver'::regnamespace, 'gold'::regnamespace)
        """)
    assert {(r[0], r[1]): (r[2], r[3]) for r in rows} == FOREIGN_KEYS
