"""Configuration-driven fault injection: make a named point of the pipeline fail exactly N times.

Used by the end-to-end tests (and for game days) to make a task fail *mid-run* without editing code, then
check that clearing and re-running it gives the same gold as a clean run.

    from shopstream import faults
    faults.checkpoint("extract.publish:orders")          # raises InjectedFault when the spec says so

The spec is a JSON object, read at every checkpoint call (so it can change while Airflow runs):

    {"extract.publish:orders": {"fail_times": 1},        # fail the next 1 time(s) this point is reached
     "bronze.load": {"fail_times": 1000},                # "until further notice" (until the spec changes)
     "extract.publish:*": {"fail_times": 2, "enabled": false}}   # fnmatch patterns; disabled entries skip

Where the spec lives (first found wins):
1. the file named by ``$SHOPSTREAM_FAULTS_FILE``. Failures are counted *in the file* (``"failed": n`` is
   written back next to ``fail_times`` under an exclusive ``flock`` on ``<file>.lock``), so a point fails
   exactly ``fail_times`` times across processes, retries and clears. A missing file means no faults.
2. the Airflow Variable ``shopstream_faults`` (same JSON; only looked up inside a running Airflow task).
   Failures are counted by writing the Variable back - not atomic between tasks running at the same time,
   so prefer the file for parallel tasks.

Checkpoints in the code (names are stable; see docs/runbook.md "Fault injection"):
- ``extract.publish:<topic>`` (customers, products, orders, events): in the extract task, after half of the
  hour's messages were produced *and flushed* (so the failure leaves a partial publish behind, like a crash).
- ``bronze.load``: in the bronze loader, right after its first batch was committed (rows + offsets), so
  the failure leaves a partial load behind.
- dbt: no code checkpoint; the e2e test makes one model fail the real-world way, by revoking the warehouse
  role's INSERT/UPDATE privileges on its table (``permission denied``), and granting them back before it
  clears the task.

When nothing is configured a checkpoint costs one environment lookup.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FILE_ENV = "SHOPSTREAM_FAULTS_FILE"
VARIABLE = "shopstream_faults"


class InjectedFault(RuntimeError):
    """A failure injected on purpose at a named checkpoint (never raised unless configured)."""

    def __init__(self, name: str, occurrence: int, limit: int, source: str):
        super().__init__(f"injected fault at checkpoint {name!r} (failure {occurrence} of {limit}; "
                         f"configured in {source})")
        self.name = name
        self.occurrence = occurrence
        self.limit = limit
        self.source = source


class FaultSpecError(ValueError):
    """The fault spec is not a JSON object of {name: {"fail_times": int, ...}}."""


def match_entry(spec: Mapping[str, Any], name: str) -> str | None:
    """The key of the spec entry that governs checkpoint `name` (exact name first, then fnmatch patterns in
    key order), or None. Disabled entries and malformed ones are skipped (malformed ones raise)."""
    if not isinstance(spec, Mapping):
        raise FaultSpecError(f"fault spec must be a JSON object, got {type(spec).__name__}")
    candidates = ([name] if name in spec else []) + [k for k in spec if k != name and fnmatch.fnmatchcase(name, k)]
    for key in candidates:
        entry = spec[key]
        if not isinstance(entry, Mapping):
            raise FaultSpecError(f"fault spec entry {key!r} must be an object, got {entry!r}")
        if not entry.get("enabled", True):
            continue
        return key
    return None


def decide(spec: dict[str, Any], name: str) -> tuple[str, int, int] | None:
    """Pure decision: if checkpoint `name` must fail now, count the failure in `spec` (mutated) and return
    (entry key, occurrence number, fail_times); else None."""
    key = match_entry(spec, name)
    if key is None:
        return None
    entry = spec[key]
    try:
        limit = int(entry.get("fail_times", 1))
        failed = int(entry.get("failed", 0))
    except (TypeError, ValueError) as exc:
        raise FaultSpecError(f"fault spec entry {key!r}: fail_times/failed must be integers: {entry!r}") from exc
    if failed >= limit:
        return None
    entry["failed"] = failed + 1
    history = entry.setdefault("fired_at", [])
    if isinstance(history, list):
        history.append(name)
    return key, failed + 1, limit


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _from_file(path: Path, name: str) -> tuple[str, int, int] | None:
    if not path.exists():
        return None
    with _locked(path):
        text = path.read_text()
        if not text.strip():
            return None
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FaultSpecError(f"{path}: not JSON: {exc}") from exc
        fired = decide(spec, name)
        if fired is not None:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(spec, indent=2, sort_keys=True))
            os.replace(tmp, path)
    return fired


def _in_airflow_task() -> bool:
    # Never import Airflow here: in a plain process (the bronze CLI, benchmarks) importing it reconfigures
    # logging onto stdout. Inside a task the runner module is already loaded.
    task_runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return task_runner is not None and getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


def _from_variable(name: str) -> tuple[str, int, int] | None:
    if not _in_airflow_task():
        return None
    from airflow.sdk import Variable

    try:
        raw = Variable.get(VARIABLE, default=None)
    except Exception as exc:  # noqa: BLE001 - an unreachable Variable store must not fail the task
        log.debug("fault Variable %s not readable: %s", VARIABLE, exc)
        return None
    if not raw:
        return None
    try:
        spec = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except json.JSONDecodeError as exc:
        raise FaultSpecError(f"Airflow Variable {VARIABLE}: not JSON: {exc}") from exc
    fired = decide(spec, name)
    if fired is not None:
        Variable.set(VARIABLE, json.dumps(spec, sort_keys=True))
    return fired


def checkpoint(name: str, *, prepare: Callable[[], Any] | None = None) -> None:
    """Raise `InjectedFault` if the fault spec says checkpoint `name` must fail now (see module doc).

    `prepare` runs just before raising (e.g. flush a producer so the partial work is really done, like a
    process dying after it)."""
    path = os.environ.get(FILE_ENV)
    if path:
        fired, source = _from_file(Path(path), name), path
    else:
        fired, source = _from_variable(name), f"Airflow Variable {VARIABLE}"
    if fired is None:
        return
    key, occurrence, limit = fired
    log.error("FAULT INJECTION: checkpoint %r fails now (entry %r, failure %d of %d, %s)",
              name, key, occurrence, limit, source)
    if prepare is not None:
        prepare()
    raise InjectedFault(name, occurrence, limit, source)


def write_spec(path: str | os.PathLike[str], spec: Mapping[str, Any]) -> None:
    """Replace the spec file atomically (under the same lock as the checkpoints)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with _locked(p):
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(dict(spec), indent=2, sort_keys=True))
        os.replace(tmp, p)


def read_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The spec file's current content (with the failure counters), {} when absent or empty."""
    p = Path(path)
    if not p.exists():
        return {}
    with _locked(p):
        text = p.read_text()
    return json.loads(text) if text.strip() else {}
