"""Build once, account per model: how the dbt DAG keeps one task per model at the cost of one `dbt build`.

Why (bench/README.md, "dbt DAG"): with one `dbt build --select <model>` per Airflow task (Cosmos
ExecutionMode.LOCAL), every model pays a task start, a DAG parse, a dbt start-up and a project load, one after the
other along the longest dependency chain: ~85 s for work that a single `dbt build` does in ~8 s. Cosmos'
WATCHER mode runs one build too, but each of its consumer sensors still occupies a worker twice (poke, then resume
after the trigger), and its consumers mark a model `skipped` when they see dbt's own skip after an upstream
failure, so a model whose upstream was retried successfully would not be built in that run.

Here:

- `DbtBuildOnceOperator` (task `dbt_build`) runs ONE `dbt build` over the whole selection (models, unit tests,
  data tests in dbt's own order: a failing test skips what depends on its model) and records, per model, whether
  the model *and every test that gates it* passed. It fails only when dbt could not run at all: a failed model
  is that model's task's business, not this one's.
- `DbtModelBuildOperator` (one task per model, rendered by Cosmos with TestBehavior.BUILD) is Cosmos' own
  `DbtBuildLocalOperator` that first looks at that record. When the shared build passed the model and its tests
  *in the same clear of this run* (see `accepts`), the task succeeds at once, logging what dbt did; otherwise it
  runs `dbt build --select <model> --indirect-selection buildable` itself, exactly as ExecutionMode.LOCAL would.

So a failed model retries alone (its retries build it), its downstream tasks wait for it (Airflow dependencies
are the dbt graph, as before), a failing test fails its model's task and leaves everything downstream
upstream_failed, and clearing any model task - alone or with downstream - rebuilds exactly those models: a cleared
task starts a new clear generation of the run, in which the shared build's record is no longer accepted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cosmos.operators.local import DbtBuildLocalOperator

BUILD_TASK_ID = "dbt_build"
PASSED = "passed"
# dbt statuses: models success|error|skipped; tests pass|fail|warn|error|skipped; unit tests pass|fail|error|skipped
_GOOD = {"success", "pass", "warn"}


def gating_tests(manifest: Mapping[str, Any], model_id: str) -> list[str]:
    """The tests (data and unit tests) that `dbt build --select <model> --indirect-selection buildable` runs:
    those on the model whose other parents are all upstream of it (a relationships test gates the child, not
    the parent it points at)."""
    parent_map: Mapping[str, list[str]] = manifest.get("parent_map") or {}
    ancestors: set[str] = set()
    stack = list(parent_map.get(model_id, []))
    while stack:
        node = stack.pop()
        if node not in ancestors:
            ancestors.add(node)
            stack.extend(parent_map.get(node, []))
    tests = []
    for test_id, parents in parent_map.items():
        if not test_id.startswith(("test.", "unit_test.")) or model_id not in parents:
            continue
        if all(p == model_id or p in ancestors for p in parents):
            tests.append(test_id)
    # unit tests are in manifest["unit_tests"], and not always in parent_map: their model is depends_on
    for test_id, unit in (manifest.get("unit_tests") or {}).items():
        if test_id not in tests and model_id in (unit.get("depends_on") or {}).get("nodes", []):
            tests.append(test_id)
    return sorted(tests)


def model_outcomes(manifest: Mapping[str, Any], run_results: Mapping[str, Any]) -> dict[str, str]:
    """Per model of the run: `passed`, or why not (its own status, or the tests that did not pass)."""
    status = {r["unique_id"]: r["status"] for r in run_results.get("results", [])}
    outcomes = {}
    for model_id in status:
        if not model_id.startswith("model."):
            continue
        if status[model_id] not in _GOOD:
            outcomes[model_id] = f"model {status[model_id]}"
            continue
        bad = [f"{t} {status.get(t, 'not run')}" for t in gating_tests(manifest, model_id)
               if status.get(t, "not run") not in _GOOD]
        outcomes[model_id] = PASSED if not bad else "tests not passed: " + ", ".join(bad)
    return outcomes


def read_outcomes(project_dir: str | Path) -> dict[str, str]:
    """model_outcomes() from a dbt run's target/ folder (empty when dbt wrote no results)."""
    target = Path(project_dir) / "target"
    try:
        run_results = json.loads((target / "run_results.json").read_text())
        manifest = json.loads((target / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    return model_outcomes(manifest, run_results)


def accepts(record: Mapping[str, Any] | None, model_id: str, clear_number: int, try_number: int) -> tuple[bool, str]:
    """Whether a model task may take the shared build's result instead of building the model itself, and why.

    Only a result of the same clear generation of the run counts (clearing a model task, alone or with its
    downstream, bumps the run's clear_number, so a cleared task always rebuilds), and only for a try that is
    not ahead of the shared build's own (an automatic retry of a model task means the shared result did not do).
    """
    if not record:
        return False, "the shared dbt build left no record (it did not run or failed before dbt started)"
    if record.get("clear_number") != clear_number:
        return False, (f"this task was cleared after the shared dbt build ran (clear {clear_number}, "
                       f"build of clear {record.get('clear_number')})")
    if try_number > int(record.get("try_number") or 1):
        return False, f"try {try_number} of this task (the shared build ran as try {record.get('try_number')})"
    outcome = (record.get("models") or {}).get(model_id)
    if outcome is None:
        return False, "the shared dbt build did not run this model"
    if outcome != PASSED:
        return False, f"in the shared dbt build: {outcome}"
    return True, "built and tested by the shared dbt build of this run"


class DbtBuildOnceOperator(DbtBuildLocalOperator):
    """One `dbt build` for the run; pushes {clear_number, try_number, models: {model_id: outcome}} as its XCom.

    Node failures do not fail this task (each model's own task reports and retries them); a dbt that could not
    run at all (profile, connection, project errors: no results written) does.
    """

    def execute(self, context: Any, **kwargs: Any) -> dict[str, Any]:
        outcomes: dict[str, str] = {}

        def collect(project_dir: str, **_: Any) -> None:
            outcomes.update(read_outcomes(project_dir))

        self.callback = collect
        self.callback_args = {}
        error: Exception | None = None
        try:
            super().execute(context, **kwargs)
        except Exception as exc:  # noqa: BLE001 - dbt's node failures arrive as an exception; see below
            error = exc
        if error is not None and not outcomes:
            raise error
        failed = sorted(m for m, o in outcomes.items() if o != PASSED)
        if failed:
            self.log.warning("dbt build: %d of %d models did not pass; their own tasks will build them alone: %s",
                             len(failed), len(outcomes), "; ".join(f"{m}: {outcomes[m]}" for m in failed))
        else:
            self.log.info("dbt build: all %d models and their tests passed", len(outcomes))
        return {"clear_number": int(getattr(context["dag_run"], "clear_number", 0) or 0),
                "try_number": int(context["ti"].try_number), "models": outcomes}


class DbtModelBuildOperator(DbtBuildLocalOperator):
    """One model (with the tests that gate it): takes the shared build's result, else builds the model itself."""

    def __init__(self, *args: Any, build_task_id: str = BUILD_TASK_ID, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.build_task_id = build_task_id

    @property
    def model_unique_id(self) -> str | None:
        return (self.extra_context.get("dbt_node_config") or {}).get("unique_id")

    def execute(self, context: Any, **kwargs: Any) -> Any:
        ti = context["ti"]
        record = ti.xcom_pull(task_ids=self.build_task_id)
        ok, why = accepts(record, self.model_unique_id or "", int(getattr(context["dag_run"], "clear_number", 0) or 0),
                          int(ti.try_number))
        if ok:
            self.log.info("%s: %s (task %s); nothing to do", self.model_unique_id, why, self.build_task_id)
            return None
        self.log.info("%s: building it here (%s)", self.model_unique_id, why)
        return super().execute(context, **kwargs)


def model_tasks(task_ids: Iterable[str]) -> list[str]:
    """The model tasks among task ids (for tests and the benchmark)."""
    return [t for t in task_ids if t.endswith(".build") or t.endswith("_build")]
