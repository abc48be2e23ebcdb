"""The committed dbt manifest (include/dbt/shopstream/target/manifest.json) that Cosmos renders the DAG from.

Rebuild it after changing anything under include/dbt/shopstream (models, YAML, macros, dbt_project.yml):

    PYTHONPATH=plugins .venv/bin/python -m shopstream.dbt.manifest          # (make dbt-manifest)

It runs `dbt parse` (no warehouse connection needed) with PGDATABASE=shopstream so the relation names in the
manifest do not depend on the machine. tests/unit/test_dbt_manifest.py fails while the committed manifest
differs from a fresh parse (ignoring timestamps and ids, see `normalized`).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from shopstream.dbt.paths import MANIFEST_PATH

MANIFEST_DBNAME = "shopstream"
_VOLATILE_KEYS = {"created_at", "database", "relation_name"}
_VOLATILE_METADATA = {"generated_at", "invocation_id", "invocation_started_at", "run_started_at", "env", "user_id"}


def parse_manifest(target_path: str | Path | None = None) -> dict[str, Any]:
    """`dbt parse` the project now and return the manifest it writes (in a temporary target path)."""
    from shopstream.dbt.runner import run_dbt

    target = Path(target_path or tempfile.mkdtemp(prefix="shopstream-dbt-parse-"))
    run_dbt(["parse", "--no-partial-parse"], params={"dbname": MANIFEST_DBNAME}, target_path=target)
    return json.loads((target / "manifest.json").read_text())


def build_manifest(dest: Path = MANIFEST_PATH) -> Path:
    target = Path(tempfile.mkdtemp(prefix="shopstream-dbt-parse-"))
    try:
        parse_manifest(target)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target / "manifest.json", dest)
    finally:
        shutil.rmtree(target, ignore_errors=True)
    return dest


def normalized(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest without what changes from one parse to the next (timestamps, ids, database name)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in _VOLATILE_KEYS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    out = {k: strip(v) for k, v in manifest.items() if k != "metadata"}
    out["metadata"] = {k: v for k, v in manifest.get("metadata", {}).items() if k not in _VOLATILE_METADATA}
    return out


def stale_entries(committed: dict[str, Any], fresh: dict[str, Any]) -> list[str]:
    """Top-level sections / node ids where the two manifests differ (empty when they match)."""
    a, b = normalized(committed), normalized(fresh)
    problems = []
    for section in sorted(set(a) | set(b)):
        x, y = a.get(section), b.get(section)
        if x == y:
            continue
        if isinstance(x, dict) and isinstance(y, dict) and section != "metadata":
            for key in sorted(set(x) | set(y)):
                if x.get(key) != y.get(key):
                    problems.append(f"{section}: {key}")
        else:
            problems.append(section)
    return problems


def main() -> int:
    path = build_manifest()
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
