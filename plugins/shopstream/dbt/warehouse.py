"""Warehouse-side helpers for the dbt layers: table checksums and the SQL the dbt models need on bronze."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from shopstream.dbt.paths import BRONZE_SUPPORT_SQL_DIR

# The spec's columns of every silver and gold table (audit columns, which start with "_", are excluded).
SPEC_COLUMNS: dict[str, tuple[str, ...]] = {
    "silver.customers": ("customer_id", "first_name", "last_name", "email", "created_at", "updated_at"),
    "silver.products": ("product_id", "name", "description", "price", "category", "created_at", "updated_at"),
    "silver.orders": ("order_id", "customer_id", "order_date", "total_amount", "status", "created_at", "updated_at"),
    "silver.order_items": ("order_item_id", "order_id", "product_id", "quantity", "unit_price", "created_at"),
    "silver.events": ("event_id", "customer_id", "event_type", "event_data", "created_at"),
    "gold.dim_customers": ("customer_id", "first_name", "last_name", "email", "created_at", "updated_at"),
    "gold.dim_products": ("product_id", "name", "description", "price", "category", "created_at", "updated_at"),
    "gold.fct_orders": ("order_id", "customer_id", "order_date", "total_amount", "status", "customer_email"),
    "gold.fct_order_items": ("order_item_id", "order_id", "product_id", "quantity", "unit_price", "line_total",
                             "order_date", "customer_id"),
    "gold.agg_orders_daily": ("order_date", "orders", "revenue"),
    "gold.agg_events_daily": ("event_date", "event_type", "events"),
}


def bronze_support_sql() -> list[str]:
    """include/sql/dbt/*.sql in order (indexes on bronze.raw_events the dbt increments rely on)."""
    return [p.read_text() for p in sorted(BRONZE_SUPPORT_SQL_DIR.glob("*.sql"))]


def checksum_sql(table: str, columns: Sequence[str] | None = None) -> str:
    """One row (row count, md5 of all rows in a canonical order) for `table` restricted to `columns` (all
    columns when None)."""
    cols = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    return (f"select count(*), coalesce(md5(string_agg(r::text, E'\\n' order by r::text)), '') "
            f"from (select {cols} from {table}) as r")


def table_checksums(conn, tables: Mapping[str, Sequence[str] | None] | Iterable[str]) -> dict[str, tuple[int, str]]:
    """{table: (rows, md5)}; `tables` maps a table to its columns (None = all) or is a list of tables."""
    items = tables.items() if isinstance(tables, Mapping) else ((t, None) for t in tables)
    out = {}
    for table, columns in items:
        out[table] = tuple(conn.execute(checksum_sql(table, columns)).fetchone())
    return out
