"""DAG integrity (the astro-cli pattern, stricter): every DAG file imports cleanly with no connections, no
network and no dbt, and every DAG carries an owner, tags and retries with a delay. The DagBag is the session's one
(tests/dags/conftest.py). How fast the files parse is a benchmark, not a test (a timed assertion fails on a busy
machine and passes on a fast one whatever the code does): `parse_times()` in bench/bench_cosmos_modes.py, figures
in bench/README.md."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


def test_dag_files_exist():
    assert sorted(p.name for p in DAGS_FOLDER.glob("*.py")), "no DAG files in dags/"


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}, "\n".join(f"{k}:\n{v}" for k, v in dagbag.import_errors.items())


def test_every_file_defines_a_dag(dagbag):
    files_with_dags = {Path(d.fileloc).name for d in dagbag.dags.values()}
    for path in DAGS_FOLDER.glob("*.py"):
        assert path.name in files_with_dags, f"{path.name} defines no DAG"


def test_dbt_dag_renders_from_the_committed_manifest(dagbag):
    """Cosmos built the dbt task groups from include/dbt/shopstream/target/manifest.json, not from `dbt ls`."""
    from cosmos.constants import LoadMode

    groups = dagbag.dags["shopstream_dbt"].task_group.children
    assert {groups[g].dbt_graph.load_method for g in ("silver", "gold")} == {LoadMode.DBT_MANIFEST}


def _dags(dagbag):
    assert dagbag.dags, "DagBag is empty"
    return sorted(dagbag.dags.items())


# Tasks that must not retry themselves, and why.
NO_RETRIES = {
    # the shared `dbt build`: a model it could not build is retried by that model's own task, alone
    ("shopstream_dbt", "dbt_build"),
}


def test_owner_tags_retries(dagbag):
    problems = []
    for dag_id, dag in _dags(dagbag):
        if not dag.tags:
            problems.append(f"{dag_id}: no tags")
        for t in dag.tasks:
            if not t.owner or t.owner == "airflow":
                problems.append(f"{dag_id}.{t.task_id}: owner is {t.owner!r}")
            if (dag_id, t.task_id) in NO_RETRIES:
                if t.retries:
                    problems.append(f"{dag_id}.{t.task_id}: retries={t.retries}, expected none")
                continue
            if (t.retries or 0) < 2:
                problems.append(f"{dag_id}.{t.task_id}: retries={t.retries}")
            if not t.retry_delay or t.retry_delay < timedelta(seconds=1):
                problems.append(f"{dag_id}.{t.task_id}: retry_delay={t.retry_delay}")
    assert not problems, "\n".join(problems)


def test_expected_dags_present(dagbag):
    assert {"shopstream_extract", "shopstream_bronze", "shopstream_dbt"} <= set(dagbag.dag_ids)
