"""The dbt docs: where they go ([cosmos] dbt_docs_projects), when they are regenerated, how they are published, and
the shopstream_dbt_docs DAG that generates them (parsed like Airflow does: no connection, no dbt run)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from shopstream.dbt import docs

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = ROOT / "dags" / "shopstream_dbt_docs.py"


def _setting(folder: str) -> str:
    return json.dumps({"shopstream": {"dir": folder, "name": "dbt Docs (ShopStream)"}})


def test_docs_dir_is_the_plugins_folder_for_the_slug(tmp_path):
    assert docs.docs_dir_from_setting(_setting(str(tmp_path / "d"))) == tmp_path / "d"


@pytest.mark.parametrize("raw, words", [
    (None, "is not set"),
    ("", "is not set"),
    ("{not json", "not valid JSON"),
    ('{"other": {"dir": "/x"}}', "no project 'shopstream'"),
    ('{"shopstream": {"name": "x"}}', "no project 'shopstream'"),
    ('{"shopstream": {"dir": "s3://bucket/docs"}}', "local folder only"),
])
def test_docs_dir_errors_say_what_to_set(raw, words):
    with pytest.raises(docs.DocsConfigError) as err:
        docs.docs_dir_from_setting(raw)
    assert words in str(err.value) and "dbt_docs_projects" in str(err.value)


def test_configured_docs_dir_reads_airflow_configuration(monkeypatch, tmp_path):
    monkeypatch.setenv(docs.DOCS_SETTING_ENV, _setting(str(tmp_path)))
    assert docs.configured_docs_dir() == tmp_path


def _target(tmp_path: Path, models=("model.shopstream.a", "model.shopstream.b"), catalogued=None) -> Path:
    target = tmp_path / "target"
    target.mkdir()
    nodes = {m: {} for m in models} | {"test.shopstream.t1": {}}
    (target / "manifest.json").write_text(json.dumps({"nodes": nodes, "sources": {"source.shopstream.bronze.x": {}}}))
    catalog = {"nodes": {m: {} for m in (models if catalogued is None else catalogued)},
               "sources": {"source.shopstream.bronze.x": {}}}
    (target / "catalog.json").write_text(json.dumps(catalog))
    (target / "index.html").write_text("<html><head></head></html>")
    return target


def test_publish_copies_the_docs_and_stamps_what_they_cover(tmp_path):
    out = tmp_path / "docs"
    stamp = docs.publish(_target(tmp_path), out, "abc")
    assert sorted(p.name for p in out.iterdir()) == sorted([*docs.DOCS_FILES, docs.STAMP_FILE])
    assert stamp == docs.read_stamp(out)
    assert (stamp["models"], stamp["sources"], stamp["tests"], stamp["catalog_tables"]) == (2, 1, 1, 3)
    assert stamp["models_without_columns"] == [] and stamp["project_fingerprint"] == "abc"
    assert docs.is_current(stamp, "abc", out) == (True, docs.is_current(stamp, "abc", out)[1])


def test_publish_refuses_an_incomplete_target(tmp_path):
    target = _target(tmp_path)
    (target / "catalog.json").unlink()
    with pytest.raises(FileNotFoundError, match="catalog.json"):
        docs.publish(target, tmp_path / "docs", "abc")


def test_docs_are_regenerated_when_missing_stale_or_without_columns(tmp_path):
    out = tmp_path / "docs"
    assert docs.is_current(None, "abc", out) == (False, f"no docs in {out} yet")
    stamp = docs.publish(_target(tmp_path, catalogued=["model.shopstream.a"]), out, "abc")
    current, why = docs.is_current(stamp, "abc", out)
    assert not current and "model.shopstream.b" in why  # its table did not exist yet
    stamp["models_without_columns"] = []
    assert not docs.is_current(stamp, "other", out)[0]  # the dbt project changed
    assert docs.is_current(stamp, "abc", out)[0]
    (out / "index.html").unlink()
    assert not docs.is_current(stamp, "abc", out)[0]


def test_fingerprint_follows_the_committed_manifest(tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text("{}")
    first = docs.project_fingerprint(manifest)
    manifest.write_text('{"nodes": {}}')
    assert docs.project_fingerprint(manifest) != first


@pytest.fixture(scope="module")
def docs_dag():
    import airflow.sdk  # noqa: F401  (import airflow before cosmos)
    from airflow.dag_processing.dagbag import DagBag

    mp = pytest.MonkeyPatch()

    def no_network(*args, **kwargs):
        raise AssertionError("the DAG file opened a network connection at import time")

    try:
        mp.setattr(socket.socket, "connect", no_network)
        mp.delenv("AIRFLOW_CONN_WAREHOUSE_DB", raising=False)
        bag = DagBag(dag_folder=str(DAG_FILE), safe_mode=False)
    finally:
        mp.undo()
    assert not bag.import_errors, bag.import_errors
    return bag.dags["shopstream_dbt_docs"]


def test_docs_dag_runs_after_gold_was_built_and_reconciled(docs_dag):
    from airflow.sdk.definitions.asset import AssetAll
    from shopstream.assets import GOLD, RECONCILED

    condition = docs_dag.timetable.asset_condition
    assert isinstance(condition, AssetAll)
    assert {a.name for a in condition.objects} == {GOLD.name, RECONCILED.name}
    assert docs_dag.max_active_runs == 1 and not docs_dag.catchup


def test_docs_dag_is_one_cosmos_docs_task_into_the_served_folder(docs_dag):
    from cosmos.operators.local import DbtDocsLocalOperator
    from shopstream.dbt.docs_operator import DbtDocsToFolderOperator

    (task,) = docs_dag.tasks
    assert isinstance(task, DbtDocsToFolderOperator) and isinstance(task, DbtDocsLocalOperator)
    assert task.task_id == "generate_docs"
    assert set(task.required_files) == set(docs.DOCS_FILES)  # catalog included (no --static, no --no-write-json)
    assert Path(task.project_dir) == ROOT / "include" / "dbt" / "shopstream"
    assert task.cache_dir is None or task.cache_dir.name == "shopstream_dbt_docs__generate_docs"
    assert task.force == "{{ params.force }}" and "force" in task.template_fields
    assert task.docs_dir is None  # read from [cosmos] dbt_docs_projects when the task runs, like the plugin
