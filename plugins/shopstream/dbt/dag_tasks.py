"""The dbt tasks of shopstream_dbt: one shared `dbt build`, then Cosmos' task groups `silver` and `gold` with one task
per model, wired by the dbt graph (shopstream.dbt.build_once explains the design). Called inside a DAG context by
dags/shopstream_dbt.py and by bench/bench_cosmos_modes.py, so the benchmark measures exactly the DAG's tasks.
"""

from __future__ import annotations

from typing import Any

from cosmos import DbtTaskGroup

from shopstream.dbt.build_once import BUILD_TASK_ID, DbtBuildOnceOperator
from shopstream.dbt.cosmos_config import (
    cache_dir,
    execution_config,
    operator_args,
    profile_config,
    project_config,
    render_config,
)
from shopstream.dbt.docs_operator import DbtDocsToFolderOperator
from shopstream.dbt.paths import GOLD_SELECTOR, SILVER_SELECTOR


def _common_config() -> dict[str, Any]:
    return {
        "project_config": project_config(),
        "profile_config": profile_config(),
        "execution_config": execution_config(),
        "operator_args": operator_args(),
    }


def _standalone_task_args(dag_id: str, task_id: str, common: dict[str, Any]) -> dict[str, Any]:
    """The arguments a Cosmos local operator created outside a DbtTaskGroup needs to run like the group's tasks:
    the project, the profile, in-process dbt, and a cache folder of its own (dbt's partial parse)."""
    return {
        "project_dir": str(common["project_config"].dbt_project_path),
        "profile_config": common["profile_config"],
        "invocation_mode": common["execution_config"].invocation_mode,
        "env": common["project_config"].env_vars,
        "cache_dir": cache_dir(f"{dag_id}__{task_id}"),
        **common["operator_args"],
    }


def docs_task(dag_id: str, task_id: str = "generate_docs", **kwargs: Any) -> DbtDocsToFolderOperator:
    """`dbt docs generate` (catalog included) into the folder Cosmos' plugin serves (shopstream.dbt.docs_operator)."""
    return DbtDocsToFolderOperator(task_id=task_id, **_standalone_task_args(dag_id, task_id, _common_config()),
                                   **kwargs)


def build_once_task_groups(dag_id: str) -> list[Any]:
    """dbt_build >> silver model tasks >> gold model tasks; returns the tasks that end the dbt work (the gold
    leaves and the silver leaves nothing in gold reads, e.g. the quarantine view) for what follows them."""
    common = {
        "project_config": project_config(),
        "profile_config": profile_config(),
        "execution_config": execution_config(),
        "operator_args": operator_args(),
    }
    # One dbt invocation for the whole run; no retries of its own (a failed model is retried by its own task,
    # alone, instead of the whole build again).
    dbt_build = DbtBuildOnceOperator(
        task_id=BUILD_TASK_ID,
        select=[SILVER_SELECTOR, GOLD_SELECTOR],
        indirect_selection=common["execution_config"].test_indirect_selection.value,
        retries=0,
        **_standalone_task_args(dag_id, BUILD_TASK_ID, common),
    )
    silver = DbtTaskGroup(group_id="silver", render_config=render_config(SILVER_SELECTOR), **common)
    gold = DbtTaskGroup(group_id="gold", render_config=render_config(GOLD_SELECTOR), **common)

    # The model tasks run even when dbt_build failed outright (each then builds its model itself).
    for root in silver.roots:
        root.trigger_rule = "all_done"
    dbt_build >> silver

    # Gold models wait for the silver models they read, not for the whole silver group: the chain of tasks is
    # the dbt graph's own depth (6 models), not silver's plus gold's.
    for model_id, node in gold.dbt_graph.filtered_nodes.items():
        if model_id in gold.tasks_map:
            for parent_id in node.depends_on:
                if parent_id in silver.tasks_map:
                    silver.tasks_map[parent_id] >> gold.tasks_map[model_id]
    return [*gold.leaves, *(t for t in silver.leaves if not t.downstream_task_ids)]


def gold_run_summary(context: Any) -> dict[str, Any]:
    """The body of shopstream_dbt's `publish_gold` task: each model task's run metrics (its XCom: rows affected,
    seconds, which build built it), returned and put in the GOLD asset event's extra, so the run's rows per model
    show on the asset's page and in the task's XCom without opening a log."""
    from shopstream.assets import GOLD
    from shopstream.dbt.build_once import DbtModelBuildOperator

    ti = context["ti"]
    models: dict[str, Any] = {}
    for task in sorted(context["dag"].tasks, key=lambda t: t.task_id):
        if isinstance(task, DbtModelBuildOperator):
            result = ti.xcom_pull(task_ids=task.task_id) or {}
            name = (result.get("model") or task.task_id).rsplit(".", 1)[-1]
            models[name] = {k: result.get(k) for k in ("rows_affected", "seconds", "built_by")}
    summary = {"models": models,
               "rows_affected": sum(m["rows_affected"] or 0 for m in models.values()),
               "built_alone": sorted(n for n, m in models.items() if m["built_by"] not in (None, BUILD_TASK_ID))}
    outlet_events = context.get("outlet_events")
    if outlet_events is not None:
        outlet_events[GOLD].extra = {"rows_affected": {n: m["rows_affected"] for n, m in models.items()},
                                     "built_alone": summary["built_alone"]}
    return summary
