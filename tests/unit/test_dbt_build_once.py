"""shopstream.dbt.build_once: which tests gate a model, what the shared build recorded, and when a model task may
take that record instead of building its model (pure logic; the DAG runs are in tests/integration and tests/e2e)."""

from __future__ import annotations

import json

import pytest
from shopstream.dbt.build_once import (
    PASSED,
    accepts,
    first_try_since_clear,
    gating_tests,
    model_outcomes,
    model_results,
    read_model_results,
    read_outcomes,
)

# a -> b -> c, plus a relationships test on (c, a) and one on (b, c) (b points at its own downstream: odd, but
# it must then gate c, the parent built last)
MANIFEST = {
    "parent_map": {
        "model.p.a": ["source.p.raw.x"],
        "model.p.b": ["model.p.a"],
        "model.p.c": ["model.p.b"],
        "test.p.not_null_a_id": ["model.p.a"],
        "test.p.unique_b_id": ["model.p.b"],
        "test.p.relationships_c_a": ["model.p.c", "model.p.a"],
        "test.p.relationships_b_c": ["model.p.b", "model.p.c"],
        "source.p.raw.x": [],
    },
    "unit_tests": {"unit_test.p.b.u1": {"depends_on": {"nodes": ["model.p.b"]}}},
}


def _results(**status):
    return {"results": [{"unique_id": k.replace("__", "."), "status": v} for k, v in status.items()]}


def test_gating_tests_give_a_multi_parent_test_to_the_parent_built_last():
    assert gating_tests(MANIFEST, "model.p.a") == ["test.p.not_null_a_id"]
    assert gating_tests(MANIFEST, "model.p.b") == ["test.p.unique_b_id", "unit_test.p.b.u1"]
    assert gating_tests(MANIFEST, "model.p.c") == ["test.p.relationships_b_c", "test.p.relationships_c_a"]


def test_outcomes_pass_only_with_the_model_and_all_its_gating_tests():
    statuses = {"model__p__a": "success", "test__p__not_null_a_id": "pass",
                "model__p__b": "success", "test__p__unique_b_id": "warn", "unit_test__p__b__u1": "pass",
                "model__p__c": "success", "test__p__relationships_c_a": "fail"}
    outcomes = model_outcomes(MANIFEST, _results(**statuses))
    assert outcomes["model.p.a"] == PASSED and outcomes["model.p.b"] == PASSED  # warn does not block (dbt's rule)
    assert outcomes["model.p.c"].startswith("tests not passed")
    assert "relationships_c_a fail" in outcomes["model.p.c"] and "relationships_b_c not run" in outcomes["model.p.c"]


@pytest.mark.parametrize("status", ["error", "skipped"])
def test_a_model_that_did_not_succeed_is_not_passed(status):
    outcomes = model_outcomes(MANIFEST, _results(model__p__a=status, test__p__not_null_a_id="skipped"))
    assert outcomes == {"model.p.a": f"model {status}"}


def test_read_outcomes_from_a_target_folder(tmp_path):
    assert read_outcomes(tmp_path) == {}  # dbt wrote nothing: no record
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "manifest.json").write_text(json.dumps(MANIFEST))
    (tmp_path / "target" / "run_results.json").write_text(json.dumps(_results(model__p__a="success",
                                                                              test__p__not_null_a_id="pass")))
    assert read_outcomes(tmp_path) == {"model.p.a": PASSED}


def test_a_failed_test_that_gates_no_model_withholds_every_model_below_all_its_parents():
    # c and d are unrelated; a singular test reads both, so no model's own build would run it
    manifest = {"parent_map": {"model.p.c": [], "model.p.d": [], "test.p.singular_c_d": ["model.p.c", "model.p.d"],
                               "model.p.e": ["model.p.c", "model.p.d"], "model.p.f": ["model.p.c"]}}
    statuses = {"model__p__c": "success", "model__p__d": "success", "model__p__e": "success",
                "model__p__f": "success", "test__p__singular_c_d": "fail"}
    outcomes = model_outcomes(manifest, _results(**statuses))
    assert all("test.p.singular_c_d" not in gating_tests(manifest, m) for m in outcomes)  # belongs to no model
    assert outcomes == {"model.p.c": PASSED, "model.p.d": PASSED, "model.p.f": PASSED,
                        "model.p.e": "tests not passed: upstream test.p.singular_c_d fail"}


def test_every_test_of_the_project_gates_exactly_one_model():
    from shopstream.dbt.paths import MANIFEST_PATH

    manifest = json.loads(MANIFEST_PATH.read_text())
    models = [n for n in manifest["nodes"] if n.startswith("model.")]
    owners: dict[str, list[str]] = {}
    for m in models:
        for t in gating_tests(manifest, m):
            owners.setdefault(t, []).append(m)
    tests = [n for n in manifest["nodes"] if n.startswith("test.")] + list(manifest.get("unit_tests") or {})
    assert tests and {t: owners.get(t, []) for t in tests if len(owners.get(t, [])) != 1} == {}


def test_first_try_since_clear_follows_airflows_max_tries():
    assert first_try_since_clear(1, max_tries=2, retries=2)  # a new task instance
    assert not first_try_since_clear(2, max_tries=2, retries=2)  # its automatic retry
    assert first_try_since_clear(3, max_tries=4, retries=2)  # cleared after try 2: max_tries = 2 + retries


RECORD = {"clear_number": 0, "try_number": 1, "models": {"model.p.a": PASSED, "model.p.b": "model error"}}


def test_first_try_of_the_same_clear_takes_a_passed_model():
    ok, why = accepts(RECORD, "model.p.a", clear_number=0, first_try=True)
    assert ok, why


@pytest.mark.parametrize(("record", "model", "clear_number", "first_try", "because"), [
    (None, "model.p.a", 0, True, "left no record"),
    (RECORD, "model.p.a", 1, True, "cleared after the shared dbt build"),  # cleared alone (or with downstream)
    (RECORD, "model.p.a", 0, False, "a retry of this task"),  # an automatic retry: the shared result did not do
    (RECORD, "model.p.b", 0, True, "model error"),
    (RECORD, "model.p.c", 0, True, "did not run this model"),
    ({**RECORD, "models": {}, "skipped": "the shared dbt build did not run: 3 model task(s)"}, "model.p.a", 0, True,
     "did not run: 3 model task(s)"),  # the shared build was cleared without (all) the model tasks
])
def test_otherwise_the_task_builds_its_model_and_says_why(record, model, clear_number, first_try, because):
    ok, why = accepts(record, model, clear_number=clear_number, first_try=first_try)
    assert not ok and because in why, why


def test_clearing_the_whole_run_reuses_the_new_shared_build():
    # everything cleared: the build ran again in clear 1; the model task is in its first try since that clear
    record = {**RECORD, "clear_number": 1, "try_number": 2}
    assert accepts(record, "model.p.a", clear_number=1, first_try=True)[0]


RUN_RESULTS_WITH_ROWS = {"results": [
    {"unique_id": "model.p.a", "status": "success", "execution_time": 0.51234,
     "adapter_response": {"_message": "INSERT 0 91", "code": "INSERT", "rows_affected": 91}},
    {"unique_id": "model.p.v", "status": "success", "execution_time": 0.1,
     "adapter_response": {"_message": "CREATE VIEW", "code": "CREATE VIEW", "rows_affected": -1}},
    {"unique_id": "model.p.c", "status": "error", "execution_time": 0.0, "adapter_response": {}},
    {"unique_id": "test.p.not_null_a_id", "status": "pass", "execution_time": 0.02, "adapter_response": {}},
]}


def test_model_results_are_each_models_rows_and_seconds():
    assert model_results(RUN_RESULTS_WITH_ROWS) == {
        "model.p.a": {"status": "success", "rows_affected": 91, "seconds": 0.512},
        "model.p.v": {"status": "success", "rows_affected": None, "seconds": 0.1},  # a view reports no rows
        "model.p.c": {"status": "error", "rows_affected": None, "seconds": 0.0},
    }


def test_read_model_results_from_a_target_folder(tmp_path):
    assert read_model_results(tmp_path) == {}
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "run_results.json").write_text(json.dumps(RUN_RESULTS_WITH_ROWS))
    assert read_model_results(tmp_path)["model.p.a"]["rows_affected"] == 91
