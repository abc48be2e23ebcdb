"""The dbt project and its committed manifest (what Cosmos renders the DAG from) - no warehouse needed."""

from __future__ import annotations

import json

import pytest
from shopstream.dbt.manifest import normalized, parse_manifest, stale_entries
from shopstream.dbt.paths import MANIFEST_PATH, PROJECT_DIR

SILVER_TABLES = {"customers", "products", "orders", "order_items", "events"}
GOLD_TABLES = {"dim_customers", "dim_products", "fct_orders", "fct_order_items", "agg_orders_daily", "agg_events_daily"}
STAGING = {"stg_customers", "stg_products", "stg_orders", "stg_events"}


@pytest.fixture(scope="module")
def committed() -> dict:
    assert MANIFEST_PATH.exists(), "commit include/dbt/shopstream/target/manifest.json (make dbt-manifest)"
    return json.loads(MANIFEST_PATH.read_text())


@pytest.fixture(scope="module")
def models(committed) -> dict[str, dict]:
    return {n["name"]: n for n in committed["nodes"].values() if n["resource_type"] == "model"}


def test_committed_manifest_is_fresh(committed, tmp_path_factory):
    """A fresh `dbt parse` of the model files gives the committed manifest (timestamps/ids aside)."""
    fresh = parse_manifest(tmp_path_factory.mktemp("parse"))
    problems = stale_entries(committed, fresh)
    assert not problems, ("include/dbt/shopstream/target/manifest.json is stale - run `make dbt-manifest` "
                          "(PYTHONPATH=plugins .venv/bin/python -m shopstream.dbt.manifest):\n" + "\n".join(problems[:20]))


def test_staleness_check_notices_a_changed_model(committed):
    changed = json.loads(json.dumps(committed))
    node = next(n for n in changed["nodes"].values() if n["name"] == "orders")
    node["raw_code"] += "\n-- edited"
    assert stale_entries(committed, changed) == [f"nodes: {node['unique_id']}"]
    assert normalized(committed) == normalized(json.loads(json.dumps(committed)))


def test_layers_schemas_and_materialisations(models):
    assert set(models) == SILVER_TABLES | GOLD_TABLES | STAGING | {"quarantine"}
    for name in SILVER_TABLES | {"quarantine"}:
        assert models[name]["schema"] == "silver" and "silver" in models[name]["tags"]
    for name in GOLD_TABLES:
        assert models[name]["schema"] == "gold" and "gold" in models[name]["tags"]
    for name in STAGING:
        assert models[name]["schema"] == "staging" and "silver" in models[name]["tags"]
    for name in SILVER_TABLES | GOLD_TABLES | STAGING:
        assert models[name]["config"]["materialized"] == "incremental", name
    assert models["quarantine"]["config"]["materialized"] == "view"


def test_spec_tables_have_enforced_contracts_with_constraints(models):
    for name in SILVER_TABLES | GOLD_TABLES:
        node = models[name]
        assert node["config"]["contract"]["enforced"] is True, name
        constraints = [c["type"] for col in node["columns"].values() for c in col.get("constraints", [])]
        constraints += [c["type"] for c in node.get("constraints", [])]
        assert "primary_key" in constraints, name
    fks = {(m, col["name"]) for m, node in models.items() for col in node["columns"].values()
           for c in col.get("constraints", []) if c["type"] == "foreign_key"}
    assert fks == {("orders", "customer_id"), ("order_items", "order_id"), ("order_items", "product_id"),
                   ("events", "customer_id"), ("fct_orders", "customer_id"), ("fct_order_items", "order_id"),
                   ("fct_order_items", "product_id")}


# Data tests that restate what the warehouse or the model already guarantees (issue #13, "Tests that cannot
# fail"): keys, NOT NULL and foreign keys are contract constraints (test_spec_tables_have_enforced_contracts_...),
# statuses and event types are decided in staging.
CANNOT_FAIL = {"unique", "not_null", "relationships", "accepted_values"}
# The checks that can fail (tests/integration/test_dbt_gold_checks.py corrupts a row for each): (test, model, column)
GOLD_CHECKS = {
    ("line_totals_add_up_to_order_total", "fct_order_items", None),
    ("denormalised_from", "fct_order_items", "order_date"),
    ("denormalised_from", "fct_order_items", "customer_id"),
    ("customer_email_is_current", "fct_orders", None),
    ("orders_per_day_match", "agg_orders_daily", None),
    ("events_per_day_match", "agg_events_daily", None),
}


def test_data_tests_are_checks_that_can_fail(committed):
    tests = [n for n in committed["nodes"].values() if n["resource_type"] == "test" and n.get("test_metadata")]
    have = {(n["test_metadata"]["name"], n["attached_node"].split(".")[-1], n.get("column_name")) for n in tests}
    restating = {t for t in have if t[0] in CANNOT_FAIL and t[1] in SILVER_TABLES | GOLD_TABLES | STAGING}
    assert not restating, restating
    assert GOLD_CHECKS <= have, GOLD_CHECKS - have
    assert {n["attached_node"].split(".")[-1] for n in tests if n["test_metadata"]["name"] == "reject_rate_below"} \
        == STAGING


def test_unit_tests_cover_the_tricky_transforms(committed):
    unit = {u["name"]: u["model"] for u in committed["unit_tests"].values()}
    assert unit["stg_customers_quarantine_rules_and_latest_wins"] == "stg_customers"
    assert unit["stg_orders_item_rules_and_late_parents"] == "stg_orders"
    assert unit["customers_latest_wins_and_late_versions_only_lower_created_at"] == "customers"
    assert unit["fct_order_items_line_totals_and_denormalised_order_fields"] == "fct_order_items"
    assert {"agg_orders_daily_full_computation", "agg_orders_daily_recomputes_only_touched_days",
            "agg_events_daily_counts_per_day_and_type"} <= set(unit)


def test_bronze_source_freshness(committed):
    source = next(s for s in committed["sources"].values() if s["name"] == "raw_events")
    assert (source["schema"], source["loaded_at_field"]) == ("bronze", "ingested_at")
    assert source["freshness"]["warn_after"]["count"] and source["freshness"]["error_after"]["count"]


def test_no_dbt_packages_needed():
    for name in ("packages.yml", "dependencies.yml"):
        assert not (PROJECT_DIR / name).exists()
    assert not (PROJECT_DIR / "dbt_packages").exists()


def test_profile_reads_only_the_environment():
    text = (PROJECT_DIR / "profiles.yml").read_text()
    for var in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"):
        assert f"env_var('{var}'" in text
    assert "password: \"{{ env_var('PGPASSWORD'" in text
