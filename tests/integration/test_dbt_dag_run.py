"""shopstream_dbt through Airflow itself (`dag.test()`, Cosmos, one shared `dbt build` + one task per model).

A silver test fails on purpose (a mostly-garbage batch of orders trips the reject-rate circuit breaker on
staging.stg_orders): the stg_orders task fails (the shared build recorded the failed test, the task built the
model alone and the test failed again), the models downstream of it - silver orders/order_items and the gold
models that read them - must end upstream_failed and the GOLD asset must not be emitted, while the models of the
independent branches succeed from the shared build's result. Then the data is fixed (the producer re-sends the
orders with a valid status), the run is cleared and run again, and it completes with the right gold.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.contract_messages import base_hour, hour_messages, item, message, order, product_value
from tests.support.warehouse import Warehouse

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = ROOT / "dags" / "shopstream_dbt.py"


def _load_dag():
    import airflow.sdk  # noqa: F401  (import airflow before cosmos)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE), safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["shopstream_dbt"]
    for task in dag.tasks:  # a failing test would otherwise wait minutes for its retries
        task.retries = 0
    return dag


def _states(dag_run) -> dict[str, str]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        dr = session.scalar(select(DagRun).where(DagRun.dag_id == dag_run.dag_id, DagRun.run_id == dag_run.run_id))
        return {"__run__": str(dr.state), **{ti.task_id: str(ti.state) for ti in dr.get_task_instances(session=session)}}


def _gold_asset_events(dag_run) -> int:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        return session.scalar(
            select(func.count()).select_from(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetEvent.source_run_id == dag_run.run_id, AssetModel.name == "shopstream.gold"))


def _gold_asset_extra(dag_run) -> dict:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return session.scalar(
            select(AssetEvent.extra).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetEvent.source_run_id == dag_run.run_id, AssetModel.name == "shopstream.gold"))


def test_failing_silver_test_blocks_gold_until_the_data_is_fixed(airflow_db, fresh_database, tmp_path):
    wh = Warehouse.open(fresh_database, tmp_path / "dbt")
    try:
        h1 = base_hour()
        wh.insert(hour_messages(h1, n_orders=5))
        h2 = h1 + timedelta(hours=1)
        garbage = [
            message("orders", order(f"o-{h2:%Y%m%d%H}-{n:04d}", "1", h2 + timedelta(minutes=n),
                                    [item(f"o-{h2:%Y%m%d%H}-{n:04d}", 0, "1", 1, product_value(1)["price"])],
                                    status="lost-in-space"), h2 + timedelta(minutes=n))
            for n in range(30)
        ]
        wh.insert(garbage)
        wh.conn.rollback()

        dag = _load_dag()
        logical_date = (h2 + timedelta(hours=1)).replace(minute=10)
        # `reconcile` (shopstream.reconcile) compares with the extract's derivation: not this test's subject
        failed = dag.test(logical_date=logical_date, mark_success_pattern=r"^reconcile$")
        states = _states(failed)
        assert states["__run__"] == "failed", states
        # the shared build ran and recorded which models passed; a failed model does not fail it
        assert states["dbt_build"] == "success"
        assert states["silver.stg_orders_model_build"] == "failed"  # the reject-rate gate
        # downstream of the failing test: nothing ran
        for task_id in ("silver.orders_model_build", "silver.order_items_model_build", "gold.fct_orders_model_build",
                        "gold.fct_order_items_model_build", "gold.agg_orders_daily_model_build", "publish_gold"):
            assert states[task_id] == "upstream_failed", (task_id, states[task_id])
        # the independent branches did run (gold models that read no orders too)
        for task_id in ("silver.customers_model_build", "silver.events_model_build", "gold.dim_customers_model_build",
                        "gold.agg_events_daily_model_build"):
            assert states[task_id] == "success", (task_id, states[task_id])
        # the quarantine view is refreshed even so (trigger_rule all_done), to show what was rejected
        assert states["silver.quarantine_model_build"] == "success"
        assert _gold_asset_events(failed) == 0
        assert wh.scalar("select count(*) from information_schema.tables where table_schema = 'gold' "
                         "and table_name in ('fct_orders', 'fct_order_items', 'agg_orders_daily')") == 0
        assert wh.scalar("select count(*) from silver.quarantine where reason = 'invalid_status'") == 30
        # the reject-rate gate lets no row of the flagged batch through: the 5 valid orders staged with the
        # garbage are rejected with it (docs/runbook.md, "Reject-rate gate")
        valid_orders = [m for m in hour_messages(h1, n_orders=5) if m.topic == "orders"]
        assert wh.scalar("select count(*) from silver.quarantine where reason = 'rejected_batch'") == len(valid_orders)

        # Fix the data as the runbook says: the producer re-sends the batch's orders, the 30 with a valid status
        # (re-running the extract hour re-publishes all of them). Clear and re-run the run.
        wh.insert([message("orders", {**m.value, "status": "paid"}, m.event_ts) for m in garbage] + valid_orders)
        wh.conn.rollback()
        # dag.test with the same logical date clears the run's task instances and runs them again
        rerun = dag.test(logical_date=logical_date, mark_success_pattern=r"^reconcile$")
        states = _states(rerun)
        assert states["__run__"] == "success", {k: v for k, v in states.items() if v != "success"}
        assert all(v == "success" for v in states.values()), states
        assert _gold_asset_events(rerun) == 1
        # run metrics without a log: the rows each model's build affected, in the GOLD event's extra
        rows = _gold_asset_extra(rerun)["rows_affected"]
        assert rows["fct_orders"] == 5 + 30 and rows["fct_order_items"] > 30, rows
        assert wh.scalar("select count(*) from gold.fct_orders") == 5 + 30
        assert wh.rows("select sum(orders)::int, sum(revenue) from gold.agg_orders_daily") == wh.rows(
            "select count(*)::int, sum(total_amount) from silver.orders")
        assert wh.scalar("select count(*) from gold.fct_order_items") == wh.scalar(
            "select count(*) from silver.order_items") > 30
    finally:
        wh.close()
