"""Every model, source and column of the dbt project is described (the dbt docs in the Airflow UI show these), and
the spec's tables and columns are described in the spec's words.

The spec's descriptions are copied below from /work/shared/seed/medallion-architecture.md ("Schema Definitions"):
they are the oracle, independent of the project's YAML (as tests/integration/test_dbt_schema.py does for types).
A description starts with the spec's text and may go on with what the project adds.
"""

from __future__ import annotations

import json

import pytest
from shopstream.dbt.paths import MANIFEST_PATH

CREATED, UPDATED = "Record creation time", "Last update time"
# silver.customers and gold.dim_customers share their columns and descriptions; so do the products tables.
CUSTOMER_COLUMNS = {"customer_id": "Primary key", "first_name": "Customer's first name",
                    "last_name": "Customer's last name", "email": "Customer's email address",
                    "created_at": CREATED, "updated_at": UPDATED}
PRODUCT_COLUMNS = {"product_id": "Primary key", "name": "Product name", "description": "Product description",
                   "price": "Product price", "category": "Product category", "created_at": CREATED,
                   "updated_at": UPDATED}
SPEC: dict[str, tuple[str, dict[str, str]]] = {
    "bronze.raw_events": ("Raw events from Kafka streams with metadata preservation.", {
        "topic": "Kafka topic name (customers, products, orders, events)", "record_key": "Kafka message key",
        "record_value": "Raw JSON payload from Kafka message", "partition": "Kafka partition number",
        "offset": "Kafka message offset", "event_ts": "Event timestamp from source",
        "ingested_at": "Ingestion timestamp"}),
    "silver.customers": ("Cleaned and normalized customer data.", CUSTOMER_COLUMNS),
    "silver.products": ("Cleaned and normalized product data.", PRODUCT_COLUMNS),
    "silver.orders": ("Cleaned and normalized order data.", {
        "order_id": "Primary key", "customer_id": "Foreign key to customers",
        "order_date": "Date when order was placed", "total_amount": "Total order amount", "status": "Order status",
        "created_at": CREATED, "updated_at": UPDATED}),
    "silver.order_items": ("Cleaned and normalized order items data.", {
        "order_item_id": "Primary key", "order_id": "Foreign key to orders", "product_id": "Foreign key to products",
        "quantity": "Quantity of product ordered", "unit_price": "Price per unit at time of order",
        "created_at": CREATED}),
    "silver.events": ("Cleaned and normalized event data.", {
        "event_id": "Primary key", "customer_id": "Foreign key to customers", "event_type": "Type of event",
        "event_data": "JSON data associated with the event", "created_at": "When the event occurred"}),
    "gold.dim_customers": ("Customer dimension table for analytics.", CUSTOMER_COLUMNS),
    "gold.dim_products": ("Product dimension table for analytics.", PRODUCT_COLUMNS),
    "gold.fct_orders": ("Orders fact table for analytics.", {
        "order_id": "Primary key", "customer_id": "Foreign key to dim_customers", "order_date": "Order date",
        "total_amount": "Total order amount", "status": "Order status",
        "customer_email": "Customer email (denormalized)"}),
    "gold.fct_order_items": ("Order items fact table for analytics.", {
        "order_item_id": "Primary key", "order_id": "Foreign key to fct_orders",
        "product_id": "Foreign key to dim_products", "quantity": "Quantity ordered", "unit_price": "Price per unit",
        "line_total": "Calculated: quantity * unit_price", "order_date": "Order date (denormalized)",
        "customer_id": "Customer ID (denormalized)"}),
    "gold.agg_orders_daily": ("Daily order aggregations for performance.", {
        "order_date": "Order date", "orders": "Number of orders", "revenue": "Total revenue"}),
    "gold.agg_events_daily": ("Daily event aggregations for performance.", {
        "event_date": "Event date", "event_type": "Event type", "events": "Number of events"}),
}


def _text(description: str | None) -> str:
    return " ".join((description or "").split())


@pytest.fixture(scope="module")
def described() -> dict[str, dict]:
    """'<schema>.<name>' -> manifest node of every model and source table."""
    manifest = json.loads(MANIFEST_PATH.read_text())
    nodes = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    return {f"{n['schema']}.{n['name']}": n for n in [*nodes, *manifest["sources"].values()]}


def test_every_model_source_and_column_has_a_description(described):
    missing = [name for name, node in described.items() if not _text(node.get("description"))]
    missing += [f"{name}.{col}" for name, node in described.items()
                for col, spec in node["columns"].items() if not _text(spec.get("description"))]
    assert not missing, f"describe these in the models' YAML (include/dbt/shopstream/models): {missing}"


@pytest.mark.parametrize("table", sorted(SPEC))
def test_spec_tables_and_columns_are_described_in_the_spec_words(described, table):
    description, columns = SPEC[table]
    node = described[table]
    assert _text(node["description"]).startswith(description), (table, node["description"])
    wrong = {col: _text(node["columns"].get(col, {}).get("description")) for col, text in columns.items()
             if not _text(node["columns"].get(col, {}).get("description")).startswith(text)}
    assert not wrong, f"{table}: start these descriptions with the spec's: {wrong}"
