"""Where one task's seconds go, from "queued" to "success" (issue #11, target 4).

Reads a task instance's timestamps from the Airflow API (queued_when, start_date, end_date) and its task log
(JSON lines, one timestamp each, written by the Task SDK, Cosmos and dbt) and splits the time into phases by
the first log line of each phase:

| phase | from | to |
|---|---|---|
| executor pick-up | queued_when | start_date (the supervisor told the API the task runs) |
| process start | start_date | first log line (fork, Task SDK start-up, bundle) |
| DAG parse | "Filling up the DagBag" | "Worker startup parse complete" |
| task code until dbt | parse complete | dbt's first line ("Trying to run dbtRunner"; imports, Cosmos project copy, profile) |
| dbt start-up | dbtRunner | "Found N models" (adapter, project load, partial parse) |
| dbt SQL | "Found N models" | "Finished running" |
| dbt wrap-up | "Finished running" | "::group::Post Execute" (results, artifacts, Cosmos post-processing) |
| task code (no dbt) | parse complete | "::group::Post Execute" (tasks that run no dbt) |
| finish | "::group::Post Execute" | end_date (XCom, state to the API) |

`profile(ti, log_path)` returns {phase: seconds}; `table(rows)` renders the Markdown table of bench/README.md.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

MARKERS = {
    "parse_start": "Filling up the DagBag",
    "parse_end": "Worker startup parse complete",
    "dbt_start": "Trying to run dbtRunner",
    "dbt_loaded": "Found ",
    "dbt_finished": "Finished running",
    "post": "::group::Post Execute",
}


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def log_marks(log_path: Path) -> dict[str, datetime]:
    """The timestamp of the first log line of each marker (and `first`: the first line of all)."""
    marks: dict[str, datetime] = {}
    for line in Path(log_path).read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        ts, event = _ts(entry.get("timestamp")), str(entry.get("event", ""))
        if ts is None:
            continue
        marks.setdefault("first", ts)
        # dbt's own lines come through stdout with its colour codes: look for the marker anywhere in the event
        for name, text in MARKERS.items():
            if name not in marks and text in event:
                if name == "dbt_loaded" and ("models" not in event or "dbt_start" not in marks):
                    continue
                marks[name] = ts
    return marks


def profile(ti: dict[str, Any], log_path: Path) -> dict[str, float]:
    marks = log_marks(log_path)
    queued, start, end = _ts(ti.get("queued_when")), _ts(ti.get("start_date")), _ts(ti.get("end_date"))

    def span(a: datetime | None, b: datetime | None) -> float | None:
        return round((b - a).total_seconds(), 2) if a and b else None

    out = {
        "executor pick-up": span(queued, start),
        "process start": span(start, marks.get("first")),
        "DAG parse": span(marks.get("parse_start"), marks.get("parse_end")),
    }
    if "dbt_start" in marks:
        out.update({
            "task code until dbt": span(marks.get("parse_end"), marks.get("dbt_start")),
            "dbt start-up": span(marks.get("dbt_start"), marks.get("dbt_loaded")),
            "dbt SQL": span(marks.get("dbt_loaded"), marks.get("dbt_finished")),
            "dbt wrap-up": span(marks.get("dbt_finished"), marks.get("post")),
        })
    else:
        out["task code (no dbt)"] = span(marks.get("parse_end"), marks.get("post"))
    out["finish"] = span(marks.get("post"), end)
    out["total (queued -> end)"] = span(queued, end)
    return {k: v for k, v in out.items() if v is not None}


def log_path(home: Path, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> Path:
    base = Path(home) / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    if map_index >= 0:
        base = base / f"map_index={map_index}"
    return base / f"attempt={try_number}.log"


def table(rows: dict[str, dict[str, float]]) -> str:
    """Markdown: one column per profiled task, one row per phase."""
    phases: list[str] = []
    for values in rows.values():
        phases += [p for p in values if p not in phases]
    lines = ["| phase | " + " | ".join(rows) + " |", "|---|" + "---|" * len(rows)]
    for phase in phases:
        lines.append(f"| {phase} | " + " | ".join(f"{rows[r].get(phase, '')}" for r in rows) + " |")
    return "\n".join(lines)
