"""dbt docs (lineage graph, models, columns) for the Airflow UI, generated off the hourly critical path.

Cosmos' Airflow 3 plugin serves a dbt docs folder under `/cosmos/<slug>/` and adds it to the UI's *Browse* menu;
the folder is named by Airflow's `[cosmos] dbt_docs_projects` setting (scripts/airflow.sh and docker-compose.yaml
set AIRFLOW__COSMOS__DBT_DOCS_PROJECTS). The DAG `shopstream_dbt_docs` runs Cosmos' own `dbt docs generate`
(catalog included: it reads the warehouse's columns; shopstream.dbt.docs_operator) and `make demo` runs it in-process
(`python -m shopstream.dbt.docs`); both write index.html, manifest.json and catalog.json into that same folder, read
from the same setting, so the writer and the server cannot disagree.

This module does not import Cosmos: `make demo`'s docs step does not use it, and importing it costs ~1.4 s and
logs, once per process, that OpenLineage events need apache-airflow-providers-openlineage (not installed: the
project emits no lineage events).

The docs change only when the dbt project changes (its committed manifest) or when a model had no columns in the
catalog yet (its table did not exist). Otherwise the task returns at once without running dbt: the DAG follows
every dbt run (a backfill makes many), and a `dbt docs generate` on each would only take CPU from the pipeline.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shopstream.dbt.paths import MANIFEST_PATH, PROJECT_NAME

DOCS_SLUG = PROJECT_NAME  # /cosmos/shopstream/dbt_docs_index.html
DOCS_SETTING_ENV = "AIRFLOW__COSMOS__DBT_DOCS_PROJECTS"
# Written last, after the docs themselves: what the folder holds, from which project (see `is_current`).
STAMP_FILE = "shopstream_docs.json"
DOCS_FILES = ("catalog.json", "manifest.json", "index.html")  # index.html last: it reads the other two


class DocsConfigError(RuntimeError):
    """The dbt docs folder is not configured, or not in a form this task can write."""


def docs_dir_from_setting(raw: str | None, slug: str = DOCS_SLUG) -> Path:
    """The local folder of `slug` in a `[cosmos] dbt_docs_projects` value (JSON: {slug: {"dir": ...}})."""
    where = f"[cosmos] dbt_docs_projects ({DOCS_SETTING_ENV})"
    if not raw:
        raise DocsConfigError(f"{where} is not set: scripts/airflow.sh and docker-compose.yaml set it; set it to "
                              f'{{"{slug}": {{"dir": "/path/to/dbt_docs/{slug}"}}}} to generate the dbt docs')
    try:
        projects = json.loads(raw)
    except ValueError as exc:
        raise DocsConfigError(f"{where} is not valid JSON ({exc}): {raw!r}") from exc
    entry = projects.get(slug) if isinstance(projects, dict) else None
    folder = entry.get("dir") if isinstance(entry, dict) else None
    if not folder:
        raise DocsConfigError(f"{where} has no project {slug!r} with a \"dir\": {raw!r}")
    if "://" in folder:
        raise DocsConfigError(f"{where}: {slug!r} points at {folder!r}; this task writes a local folder only "
                              "(for object storage use Cosmos' DbtDocsS3/GCS/AzureStorageLocalOperator)")
    return Path(folder)


def configured_docs_dir(slug: str = DOCS_SLUG) -> Path:
    """The folder Cosmos' plugin serves for `slug`, from Airflow's configuration (environment or airflow.cfg)."""
    from airflow.configuration import conf

    return docs_dir_from_setting(conf.get("cosmos", "dbt_docs_projects", fallback=None), slug)


def project_fingerprint(manifest_path: Path = MANIFEST_PATH) -> str:
    """Identifies the dbt project the docs describe: the committed manifest (tests/unit/test_dbt_manifest.py keeps
    it in step with the models and their YAML)."""
    return hashlib.sha256(manifest_path.read_bytes()).hexdigest()[:16]


def docs_summary(target_dir: Path) -> dict[str, Any]:
    """What a generated docs folder covers: models, sources, and the models the catalog has no columns for."""
    manifest = json.loads((target_dir / "manifest.json").read_text())
    catalog = json.loads((target_dir / "catalog.json").read_text())
    models = sorted(n for n in manifest.get("nodes", {}) if n.startswith("model."))
    catalogued = set(catalog.get("nodes", {}))
    return {
        "models": len(models),
        "sources": len(manifest.get("sources", {})),
        "tests": sum(1 for n in manifest.get("nodes", {}) if n.startswith("test.")),
        "catalog_tables": len(catalogued) + len(catalog.get("sources", {})),
        "models_without_columns": [m for m in models if m not in catalogued],
    }


def read_stamp(docs_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((docs_dir / STAMP_FILE).read_text())
    except (OSError, ValueError):
        return None


def is_current(stamp: Mapping[str, Any] | None, fingerprint: str, docs_dir: Path) -> tuple[bool, str]:
    """Whether the folder's docs already describe this project with every model's columns, and why (not)."""
    if not stamp:
        return False, f"no docs in {docs_dir} yet"
    if any(not (docs_dir / name).is_file() for name in DOCS_FILES):
        return False, f"{docs_dir} misses some of {', '.join(DOCS_FILES)}"
    if stamp.get("project_fingerprint") != fingerprint:
        return False, "the dbt project changed since the docs were generated"
    if stamp.get("models_without_columns"):
        return False, f"the catalog had no columns for {', '.join(stamp['models_without_columns'])}"
    return True, f"the docs in {docs_dir} are current (generated {stamp.get('generated_at')})"


def publish(target_dir: Path, docs_dir: Path, fingerprint: str) -> dict[str, Any]:
    """Copies the docs from dbt's target folder into `docs_dir`, each file replaced atomically (the plugin may be
    serving the folder right now), and writes the stamp last. Returns the stamp."""
    missing = [name for name in DOCS_FILES if not (target_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"dbt docs generate wrote no {', '.join(missing)} in {target_dir}")
    stamp = {"project_fingerprint": fingerprint, "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
             "docs_dir": str(docs_dir), **docs_summary(target_dir)}
    docs_dir.mkdir(parents=True, exist_ok=True)
    for name in DOCS_FILES:
        _replace(docs_dir / name, lambda tmp, src=target_dir / name: shutil.copyfile(src, tmp))
    _replace(docs_dir / STAMP_FILE, lambda tmp: tmp.write_text(json.dumps(stamp, indent=2) + "\n"))
    return stamp


def _replace(path: Path, write) -> None:  # noqa: ANN001 - a callable that writes the given temporary path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def to_generate(docs_dir: Path, force: bool | str = False) -> tuple[bool, str, str]:
    """(whether to run `dbt docs generate`, why, the project's fingerprint) for the docs in `docs_dir`."""
    fingerprint = project_fingerprint()
    current, why = is_current(read_stamp(docs_dir), fingerprint, docs_dir)
    if current and str(force).lower() in ("true", "1"):
        return True, "regeneration forced", fingerprint
    return not current, why, fingerprint


def generate_here(docs_dir: Path, force: bool = False, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`make demo`'s way to the same docs without an Airflow task (`airflow dags test` costs ~35 s of start-up on a
    loaded 2-core machine, the dbt work ~15 s): dbt in-process through shopstream.dbt.runner (profiles.yml reads
    the warehouse from PG*, which scripts/common.sh derives from AIRFLOW_CONN_WAREHOUSE_DB, or from `params`), the
    same `publish`."""
    import tempfile

    from shopstream.dbt.runner import run_dbt

    needed, why, fingerprint = to_generate(docs_dir, force)
    if not needed:
        return {"generated": False, "why": why, **(read_stamp(docs_dir) or {})}
    with tempfile.TemporaryDirectory(prefix="shopstream-dbt-docs-") as target:
        run_dbt(["--quiet", "docs", "generate"], params, target_path=target)  # the demo prints its own line
        return {"generated": True, "why": why, **publish(Path(target), docs_dir, fingerprint)}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Generate the dbt docs into the folder the Airflow UI serves "
                                                 f"({DOCS_SETTING_ENV}, slug {DOCS_SLUG!r}).")
    parser.add_argument("--force", action="store_true", help="regenerate even when the docs are current")
    args = parser.parse_args(argv)
    docs_dir = docs_dir_from_setting(os.environ.get(DOCS_SETTING_ENV))
    result = generate_here(docs_dir, force=args.force)
    if result["generated"]:
        print(f"dbt docs: {result['models']} models, {result['sources']} sources, {result['tests']} tests, "
              f"{result['catalog_tables']} catalogued tables -> {docs_dir}")
    else:
        print(f"dbt docs: {result['why']}; nothing to generate")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
