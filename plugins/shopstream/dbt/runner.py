"""Run dbt in-process (dbt's `dbtRunner`) against a warehouse given by connection parameters.

Used by tests, the benchmark and scripts. The project's profiles.yml reads PGHOST/PGPORT/PGUSER/PGPASSWORD/
PGDATABASE, so a run sets those (and only for its own duration). Every run writes its artifacts to its own
target path, never to include/dbt/shopstream/target (which holds the committed manifest).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopstream.dbt.paths import PROJECT_DIR

ENV_KEYS = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD", "dbname": "PGDATABASE"}
QUIET_ENV = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "False", "DO_NOT_TRACK": "1"}


class DbtRunError(RuntimeError):
    """dbt failed; the message lists the failing nodes."""


@dataclass
class DbtRun:
    args: list[str]
    success: bool
    seconds: float
    results: list[dict[str, Any]] = field(default_factory=list)  # unique_id, status, message, seconds

    def statuses(self) -> dict[str, str]:
        return {r["unique_id"]: r["status"] for r in self.results}

    def failures(self) -> list[dict[str, Any]]:
        return [r for r in self.results if r["status"] in ("error", "fail", "runtime error")]


def env_for(params: Mapping[str, Any]) -> dict[str, str]:
    """PG* variables (what profiles.yml reads) for connection parameters host/port/user/password/dbname."""
    return {ENV_KEYS[k]: str(v) for k, v in params.items() if k in ENV_KEYS}


@contextlib.contextmanager
def patched_env(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_dbt(
    args: Sequence[str],
    params: Mapping[str, Any] | None = None,
    *,
    target_path: str | Path | None = None,
    project_dir: str | Path = PROJECT_DIR,
    check: bool = True,
) -> DbtRun:
    """`dbt <args>` in-process with the project's profile, pointing at `params`' database.

    `target_path` defaults to a fresh temporary folder; pass the same folder to successive runs to reuse
    dbt's partial parsing. Raises DbtRunError when dbt fails and `check` is true.
    """
    from dbt.cli.main import dbtRunner

    target = Path(target_path) if target_path else Path(tempfile.mkdtemp(prefix="shopstream-dbt-"))
    full_args = [
        *args,
        "--project-dir", str(project_dir),
        "--profiles-dir", str(project_dir),
        "--target-path", str(target),
        "--log-path", str(target / "logs"),
    ]
    env = {**QUIET_ENV, **(env_for(params) if params else {})}
    started = time.perf_counter()
    with patched_env(env):
        result = dbtRunner().invoke(full_args)
    seconds = time.perf_counter() - started
    results = []
    for r in getattr(result.result, "results", None) or []:
        results.append({
            "unique_id": r.node.unique_id,
            "status": str(r.status),
            "message": r.message,
            "seconds": r.execution_time,
        })
    run = DbtRun(args=list(args), success=bool(result.success), seconds=seconds, results=results)
    if check and not run.success:
        detail = "\n".join(f"  {r['unique_id']}: {r['status']}: {r['message']}" for r in run.failures())
        raise DbtRunError(f"dbt {' '.join(args)} failed:\n{detail or result.exception}")
    return run
