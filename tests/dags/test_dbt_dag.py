"""The shopstream_dbt DAG's structure, from the session's DagBag (tests/dags/conftest.py: parsed the way Airflow
does, with no connection, no network and no dbt invocation)."""

from __future__ import annotations

import json

DAG_ID = "shopstream_dbt"


def test_identity_schedule_and_defaults(dag):
    from shopstream.assets import BRONZE_RAW_EVENTS
    from shopstream.dbt.build_once import BUILD_TASK_ID

    assert dag.dag_id == "shopstream_dbt"
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert {"shopstream", "dbt"} <= set(dag.tags)
    assert [a.name for a in dag.timetable.asset_condition.objects] == [BRONZE_RAW_EVENTS.name]
    for t in dag.tasks:
        assert t.owner == "shopstream", t.task_id
        if t.task_id == BUILD_TASK_ID:  # a failed model is retried by its own task, not by the whole build
            assert t.retries == 0
            continue
        assert t.retries >= 2 and t.retry_delay.total_seconds() > 0, t.task_id
        assert t.retry_exponential_backoff > 1, t.task_id  # a multiplier in Airflow 3.3


def _models():
    from shopstream.dbt.paths import MANIFEST_PATH

    manifest = json.loads(MANIFEST_PATH.read_text())
    return manifest, {n["unique_id"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}


def _task_id(node) -> str:
    return f"{'gold' if 'gold' in node['tags'] else 'silver'}.{node['name']}_model_build"


def test_one_shared_build_then_one_task_per_model(dag):
    from shopstream.dbt.build_once import BUILD_TASK_ID

    groups = dag.task_group.children
    assert {"silver", "gold", "publish_gold", BUILD_TASK_ID} <= set(groups)
    _, models = _models()
    model_tasks = {t for t in dag.task_ids if t.startswith(("silver.", "gold."))}
    assert model_tasks == {_task_id(n) for n in models.values()}  # TestBehavior.BUILD: no test tasks
    build = dag.get_task(BUILD_TASK_ID)
    assert build.select == ["tag:silver", "tag:gold"] and not build.upstream_task_ids
    # every model task runs after the shared build, even when the build failed outright
    roots = [t for t in model_tasks if not dag.get_task(t).upstream_task_ids - {BUILD_TASK_ID}]
    assert roots and all(dag.get_task(t).upstream_task_ids == {BUILD_TASK_ID} for t in roots)
    assert all(dag.get_task(t).trigger_rule == "all_done" for t in roots)


def test_model_tasks_follow_the_dbt_graph_across_groups(dag):
    _, models = _models()
    for node in models.values():
        parents = {_task_id(models[p]) for p in node["depends_on"]["nodes"] if p in models}
        assert parents <= dag.get_task(_task_id(node)).upstream_task_ids, node["name"]
    # gold waits for the silver models it reads, not for the whole silver group
    assert "silver.orders_model_build" not in dag.get_task("gold.dim_customers_model_build").upstream_task_ids
    assert "silver.customers_model_build" in dag.get_task("gold.dim_customers_model_build").upstream_task_ids


def test_a_test_across_two_models_gates_the_child_model(dag):
    from shopstream.dbt.build_once import gating_tests

    manifest, models = _models()
    orders = next(m for m, n in models.items() if n["name"] == "fct_orders")
    items = next(m for m, n in models.items() if n["name"] == "fct_order_items")
    # fct_order_items' line totals against fct_orders.total_amount: gates fct_order_items ...
    totals = [t for t in gating_tests(manifest, items) if "line_totals_add_up_to_order_total" in t]
    assert totals and all(set(manifest["parent_map"][t]) == {orders, items} for t in totals)
    assert not any(t in gating_tests(manifest, orders) for t in totals)  # ... not fct_orders
    assert dag.get_task("gold.fct_order_items_model_build").indirect_selection == "buildable"
    assert dag.get_task("silver.orders_model_build").indirect_selection == "buildable"


def test_model_tasks_are_cosmos_build_operators_with_dbt_runner(dag):
    from cosmos.constants import InvocationMode
    from cosmos.operators.local import DbtBuildLocalOperator
    from shopstream.dbt.build_once import DbtBuildOnceOperator, DbtModelBuildOperator

    task = dag.get_task("silver.orders_model_build")
    assert isinstance(task, DbtModelBuildOperator) and isinstance(task, DbtBuildLocalOperator)
    assert task.model_unique_id == "model.shopstream.orders"
    assert task.select == "fqn:shopstream.silver.orders"
    assert isinstance(dag.get_task("dbt_build"), DbtBuildOnceOperator)
    for t in (task, dag.get_task("dbt_build")):
        assert t.invocation_mode == InvocationMode.DBT_RUNNER
        assert t.profile_config.profile_mapping.conn_id == "warehouse_db"
        assert t.install_deps is False


def test_gold_asset_is_emitted_last(dag):
    from shopstream.assets import GOLD

    publish = dag.get_task("publish_gold")
    assert [a.name for a in publish.outlets] == [GOLD.name]
    gold = {t for t in dag.task_ids if t.startswith("gold.")}
    assert gold <= publish.get_flat_relative_ids(upstream=True)
    assert not publish.downstream_task_ids
    # the quarantine view is refreshed even when a staging test failed
    assert dag.get_task("silver.quarantine_model_build").trigger_rule == "all_done"


def test_publish_gold_reports_rows_per_model_in_its_xcom_and_the_gold_asset_extra(dag):
    from shopstream.assets import GOLD
    from shopstream.dbt.build_once import BUILD_TASK_ID, DbtModelBuildOperator
    from shopstream.dbt.dag_tasks import gold_run_summary

    model_tasks = sorted(t.task_id for t in dag.tasks if isinstance(t, DbtModelBuildOperator))
    xcoms = {task_id: {"model": "model.shopstream." + task_id.split(".")[1].removesuffix("_model_build"),
                       "built_by": BUILD_TASK_ID, "status": "success", "rows_affected": 10, "seconds": 0.5}
             for task_id in model_tasks}
    alone = "gold.fct_orders_model_build"
    xcoms[alone] = {**xcoms[alone], "built_by": alone, "rows_affected": 3}

    class TI:
        def xcom_pull(self, task_ids):
            return xcoms.get(task_ids)

    class Outlet:
        extra = None

    outlets = {GOLD: Outlet()}
    summary = gold_run_summary({"ti": TI(), "dag": dag, "outlet_events": outlets})
    assert len(summary["models"]) == len(model_tasks)
    assert summary["models"]["fct_orders"] == {"rows_affected": 3, "seconds": 0.5, "built_by": alone}
    assert summary["rows_affected"] == 10 * (len(model_tasks) - 1) + 3
    assert summary["built_alone"] == ["fct_orders"]
    assert outlets[GOLD].extra["rows_affected"]["fct_orders"] == 3
    assert outlets[GOLD].extra["built_alone"] == ["fct_orders"]
