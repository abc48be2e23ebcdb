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
  is that model's task's business, not this one's. It builds only when no model task of the run has run since
  the run was created or cleared: cleared alone or with some model tasks only, it leaves the building to the
  cleared model tasks (a build of everything would rebuild models nobody cleared, alongside those tasks).
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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cosmos.operators.local import DbtBuildLocalOperator

BUILD_TASK_ID = "dbt_build"
PASSED = "passed"
# dbt statuses: models success|error|skipped; tests pass|fail|warn|error|skipped; unit tests pass|fail|error|skipped
_GOOD = {"success", "pass", "warn"}


def _ancestors(parent_map: Mapping[str, list[str]], node_id: str) -> set[str]:
    seen: set[str] = set()
    stack = list(parent_map.get(node_id, []))
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(parent_map.get(node, []))
    return seen


def _test_parents(manifest: Mapping[str, Any]) -> dict[str, list[str]]:
    """{test id: its parents} for data tests (parent_map) and unit tests (their depends_on)."""
    tests = {t: list(p) for t, p in (manifest.get("parent_map") or {}).items() if t.startswith(("test.", "unit_test."))}
    for test_id, unit in (manifest.get("unit_tests") or {}).items():
        tests.setdefault(test_id, list((unit.get("depends_on") or {}).get("nodes", [])))
    return tests


def gating_tests(manifest: Mapping[str, Any], model_id: str) -> list[str]:
    """The tests (data and unit tests) that `dbt build --select <model> --indirect-selection buildable` runs:
    those on the model whose other parents are all upstream of it (a relationships test gates the child, not
    the parent it points at)."""
    ancestors = _ancestors(manifest.get("parent_map") or {}, model_id)
    return sorted(t for t, parents in _test_parents(manifest).items()
                  if model_id in parents and all(p == model_id or p in ancestors for p in parents))


def model_outcomes(manifest: Mapping[str, Any], run_results: Mapping[str, Any]) -> dict[str, str]:
    """Per model of the run: `passed`, or why not (its own status, or the tests that did not pass).

    A test that gates no model (no parent is downstream of all its other parents, e.g. a singular test across
    two unrelated models) and did not pass withholds `passed` from every model downstream of all its parents,
    as dbt's own build skips them: their tasks then build them alone (and fail where the data is wrong)."""
    status = {r["unique_id"]: r["status"] for r in run_results.get("results", [])}
    parent_map = manifest.get("parent_map") or {}
    models = [m for m in status if m.startswith("model.")]
    gated = {t for m in models for t in gating_tests(manifest, m)}
    loose_failures = {t: parents for t, parents in _test_parents(manifest).items()
                      if t in status and t not in gated and status[t] not in _GOOD}
    outcomes = {}
    for model_id in models:
        if status[model_id] not in _GOOD:
            outcomes[model_id] = f"model {status[model_id]}"
            continue
        bad = [f"{t} {status.get(t, 'not run')}" for t in gating_tests(manifest, model_id)
               if status.get(t, "not run") not in _GOOD]
        lineage = _ancestors(parent_map, model_id) | {model_id}
        bad += [f"upstream {t} {status[t]}" for t, parents in loose_failures.items() if set(parents) <= lineage]
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


def model_results(run_results: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per model of a dbt run, its run metrics: dbt's status, the rows its last statement reported (PostgreSQL's
    count: rows merged or inserted by an incremental model, rows of a rebuilt table; none for a view) and seconds."""
    out = {}
    for r in run_results.get("results", []):
        if r.get("unique_id", "").startswith("model."):
            rows = (r.get("adapter_response") or {}).get("rows_affected")
            out[r["unique_id"]] = {"status": r.get("status"),
                                   "rows_affected": rows if isinstance(rows, int) and rows >= 0 else None,
                                   "seconds": round(float(r.get("execution_time") or 0.0), 3)}
    return out


def read_model_results(project_dir: str | Path) -> dict[str, dict[str, Any]]:
    """model_results() from a dbt run's target/ folder (empty when dbt wrote no results)."""
    try:
        return model_results(json.loads((Path(project_dir) / "target" / "run_results.json").read_text()))
    except (OSError, ValueError):
        return {}


def first_try_since_clear(try_number: int, max_tries: int, retries: int) -> bool:
    """Whether this try is the first since the task was created or last cleared (Airflow's own rule: a clear sets
    max_tries to the try number reached plus the task's retries)."""
    return int(try_number) == int(max_tries) - int(retries or 0) + 1


def accepts(record: Mapping[str, Any] | None, model_id: str, clear_number: int, first_try: bool) -> tuple[bool, str]:
    """Whether a model task may take the shared build's result instead of building the model itself, and why.

    Only in the first try since the task was created or cleared (an automatic retry means the shared result did
    not do), and only a result of the same clear of the run: clearing a model task - alone or with its downstream,
    from the UI, the CLI or the REST API with reset_dag_runs (the default) - bumps the run's clear_number, so a
    cleared task always rebuilds, while clearing the whole run reruns the shared build too.
    """
    if not first_try:
        return False, "a retry of this task (the shared result did not do for its first try)"
    if not record:
        return False, "the shared dbt build left no record (it did not run or failed before dbt started)"
    if record.get("clear_number") != clear_number:
        return False, (f"this task was cleared after the shared dbt build ran (clear {clear_number}, "
                       f"build of clear {record.get('clear_number')})")
    outcome = (record.get("models") or {}).get(model_id)
    if outcome is None:
        return False, record.get("skipped") or "the shared dbt build did not run this model"
    if outcome != PASSED:
        return False, f"in the shared dbt build: {outcome}"
    return True, "built and tested by the shared dbt build of this run"


class DbtBuildOnceOperator(DbtBuildLocalOperator):
    """One `dbt build` for the run; pushes {clear_number, try_number, models: {model_id: outcome}, model_results:
    {model_id: {status, rows_affected, seconds}}} as its XCom.

    Node failures do not fail this task (each model's own task reports and retries them); a dbt that could not
    run at all (profile, connection, project errors: no results written) does.
    """

    def execute(self, context: Any, **kwargs: Any) -> dict[str, Any]:
        record: dict[str, Any] = {"clear_number": int(getattr(context["dag_run"], "clear_number", 0) or 0),
                                  "try_number": int(context["ti"].try_number), "models": {}, "model_results": {}}
        started = self._model_tasks_started(context)
        if started:
            # Cleared alone, or with only some model tasks (e.g. "with upstream" of one model): a build of
            # everything would rebuild models nobody cleared and race the model tasks that run now. The cleared
            # model tasks build their models themselves.
            record["skipped"] = (f"the shared dbt build did not run: {len(started)} model task(s) of this run had "
                                 f"already run since it was last cleared (e.g. {started[0]})")
            self.log.warning("%s; clear the whole run to rebuild everything", record["skipped"])
            return record
        outcomes: dict[str, str] = {}
        results: dict[str, dict[str, Any]] = {}

        def collect(project_dir: str, **_: Any) -> None:
            outcomes.update(read_outcomes(project_dir))
            results.update(read_model_results(project_dir))

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
        record["models"] = outcomes
        record["model_results"] = results
        return record

    def _model_tasks_started(self, context: Any) -> list[str]:
        """The model tasks of this run that are not in their cleared/new state (None)."""
        ti, run_id = context["ti"], context["run_id"]
        model_task_ids = sorted(t.task_id for t in self.dag.tasks if isinstance(t, DbtModelBuildOperator))
        states = ti.get_task_states(dag_id=ti.dag_id, task_ids=model_task_ids, run_ids=[run_id]).get(run_id, {})
        return sorted(t for t, state in states.items() if state is not None)


class DbtModelBuildOperator(DbtBuildLocalOperator):
    """One model (with the tests that gate it): takes the shared build's result, else builds the model itself.

    Returns (XCom) the model's run metrics - {model, built_by, status, rows_affected, seconds} - from whichever
    build built it, so the task's XCom tab shows what it did without its log.
    """

    def __init__(self, *args: Any, build_task_id: str = BUILD_TASK_ID, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.build_task_id = build_task_id

    @property
    def model_unique_id(self) -> str | None:
        return (self.extra_context.get("dbt_node_config") or {}).get("unique_id")

    def execute(self, context: Any, **kwargs: Any) -> Any:
        ti = context["ti"]
        record = ti.xcom_pull(task_ids=self.build_task_id)
        first_try = first_try_since_clear(ti.try_number, ti.max_tries, self.retries)
        ok, why = accepts(record, self.model_unique_id or "", int(getattr(context["dag_run"], "clear_number", 0) or 0),
                          first_try)
        model_id = self.model_unique_id or ""
        if ok:
            self.log.info("%s: %s (task %s); nothing to do", model_id, why, self.build_task_id)
            return {"model": model_id, "built_by": self.build_task_id,
                    **((record or {}).get("model_results") or {}).get(model_id, {})}
        self.log.info("%s: building it here (%s)", model_id, why)
        results: dict[str, dict[str, Any]] = {}
        self.callback = lambda project_dir, **_: results.update(read_model_results(project_dir))
        self.callback_args = {}
        super().execute(context, **kwargs)
        return {"model": model_id, "built_by": self.task_id, **results.get(model_id, {})}
