"""The dbt docs against a real warehouse (shopstream.dbt.docs): `dbt docs generate` with the catalog, published
into a docs folder with every model's columns, then left alone while the project has not changed. The Airflow
task (Cosmos' DbtDocsLocalOperator) publishes the same way; tests/e2e/test_browser_ui.py runs it under Airflow."""

from __future__ import annotations

import json

import pytest
from shopstream.dbt import docs
from shopstream.dbt.paths import MANIFEST_PATH

from tests.support.contract_messages import base_hour, hour_messages
from tests.support.warehouse import Warehouse

pytestmark = [pytest.mark.integration]


def test_docs_have_every_models_columns_and_are_not_regenerated_while_current(fresh_database, tmp_path):
    wh = Warehouse.open(fresh_database, tmp_path / "dbt")
    try:
        wh.insert(hour_messages(base_hour(), n_orders=3))
        wh.build()
    finally:
        wh.close()

    out = tmp_path / "docs"
    first = docs.generate_here(out, params=fresh_database)
    assert first["generated"], first
    committed = json.loads(MANIFEST_PATH.read_text())["nodes"]
    assert first["models"] == sum(1 for n in committed if n.startswith("model.")), first
    assert first["sources"] == 1 and first["models_without_columns"] == [], first
    catalog = json.loads((out / "catalog.json").read_text())
    assert "order_id" in catalog["nodes"]["model.shopstream.fct_orders"]["columns"]
    assert "source.shopstream.bronze.raw_events" in catalog["sources"]
    assert "<html" in (out / "index.html").read_text()[:2000].lower()
    # The docs show the YAML's descriptions (the spec's words for the spec's tables, tests/unit/test_dbt_descriptions.py)
    fct_orders = json.loads((out / "manifest.json").read_text())["nodes"]["model.shopstream.fct_orders"]
    assert fct_orders["description"].startswith("Orders fact table for analytics.")
    assert fct_orders["columns"]["customer_email"]["description"].startswith("Customer email (denormalized)")

    again = docs.generate_here(out, params=fresh_database)
    assert not again["generated"] and "current" in again["why"]
    assert docs.generate_here(out, force=True, params=fresh_database)["generated"]
