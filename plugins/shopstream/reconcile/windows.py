"""Which logical hours a run reconciles: the two chained asset-event windows, and the extras that carry them.

The hours are those of the extract runs whose messages this dbt run has processed, found through the Assets
as two chained time windows, so that every extract Asset event is reconciled exactly once, even when Airflow
folds several events into one run or runs them late:
1. the bronze DAG's `publish` task (`record_bronze_event`) looks at the extract Asset events (inlet events of
   the four topic Assets) since the previous bronze event's `extract_until` up to its own run's start (its
   loads start later, so every message of those events is loaded; `run_after` for a cleared run) and writes
   `{hour: {topic: messages}}` (the counts *recorded by the extract tasks*) as `extract`, and `extract_until`,
   into the extra of its Asset event, next to the load totals;
2. the dbt DAG's `reconcile` task (`hours_for_run`) takes the bronze Asset events since the previous successful
   reconciliation (`bronze_until` in the extra of the last `shopstream.reconciled` Asset event, written by
   `record_reconciled_event`) up to its run's start (its staging models ran later) and merges their hours.
   A failed reconciliation emits nothing, so the next dbt run checks those hours again until they add up (or
   until a run with conf `{"reconcile_hours": []}` accepts the state).
`dag_run.conf["reconcile_hours"]` (ISO hours) overrides the window. Either way the expected counts are what
extract recorded (`ops.extract_published`, the asset events' `extract` as the fallback:
`shopstream.reconcile.published`).

Each marker (`extract_until`, `bronze_until`) is written and read back in this module only. No I/O but
Airflow's inlet-event accessors and outlet events, passed in by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from shopstream.hours import parse_hour
from shopstream.topics import TOPICS


def _parse_ts(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        ts = value
    else:
        ts = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat()


def _window(accessor: Any, after: datetime | None, until: datetime) -> list[Any]:
    """Asset events of an inlet accessor with after < timestamp <= until (Airflow's `after` is inclusive)."""
    acc = accessor.after(_iso(after)) if after is not None else accessor
    acc = acc.before(_iso(until))
    return [e for e in acc if after is None or _parse_ts(getattr(e, "timestamp", None)) > after]


def _latest_marker(accessor: Any, key: str, lookback: int = 20) -> datetime | None:
    """The latest `key` timestamp in the extras of the asset's most recent events."""
    marks = [_parse_ts((getattr(e, "extra", None) or {}).get(key))
             for e in accessor.ascending(False).limit(lookback)]
    marks = [m for m in marks if m is not None]
    return max(marks) if marks else None


def _run_after(dag_run: Any) -> datetime:
    """The end of a run's window: a moment before any of its tasks read anything. The run's start (its
    run_after for a manual `dag.test`, whose start_date is its logical date), or run_after for a run that was
    cleared (a cleared run restarts late, but the tasks that already succeeded read their data earlier)."""
    run_after = _parse_ts(getattr(dag_run, "run_after", None))
    start = _parse_ts(getattr(dag_run, "start_date", None))
    if getattr(dag_run, "clear_number", 0):
        return run_after or start or datetime.now(UTC)
    candidates = [t for t in (run_after, start) if t is not None]
    return max(candidates) if candidates else datetime.now(UTC)


# ------------------------------------------------------------------------ window 1: the bronze DAG's publish


def extract_hours(triggering_asset_events: Mapping[Any, Sequence[Any]] | None) -> dict[str, dict[str, int]]:
    """{hour: {base topic: messages}} from the extract DAG's Asset events (asset -> events).

    Events of one (hour, topic) that disagree (an hour re-extracted with other settings): the latest wins.
    """
    found: list[tuple[Any, str, str, int]] = []
    for asset, events in (triggering_asset_events or {}).items():
        name = getattr(asset, "name", None) or str(asset)
        base = name.rsplit(".", 1)[-1]
        if not name.startswith("shopstream.kafka.") or base not in TOPICS:
            continue
        for event in events:
            extra = getattr(event, "extra", None) or {}
            if "logical_hour" in extra and "messages" in extra:
                found.append((str(getattr(event, "timestamp", "")), extra["logical_hour"], base,
                              int(extra["messages"])))
    out: dict[str, dict[str, int]] = {}
    for _, hour, base, n in sorted(found):
        out.setdefault(hour, {})[base] = n
    return out


def bronze_extract_extra(inlet_events: Any, dag_run: Any) -> dict[str, Any]:
    """`{"extract": {hour: {topic: messages}}, "extract_until": iso}` over the extract Asset events since the
    previous bronze event's `extract_until` up to this run's start (window 1 of the module doc)."""
    from shopstream.assets import BRONZE_RAW_EVENTS, KAFKA_TOPIC_ASSETS

    after = _latest_marker(inlet_events[BRONZE_RAW_EVENTS], "extract_until")
    until = _run_after(dag_run)
    if after is not None and until <= after:
        return {"extract": {}, "extract_until": _iso(after)}
    found = {asset: _window(inlet_events[asset], after, until) for asset in KAFKA_TOPIC_ASSETS.values()}
    return {"extract": extract_hours(found), "extract_until": _iso(until)}


def record_bronze_event(outlet_events: Any, loads: Mapping[str, Any], inlet_events: Any,
                        dag_run: Any) -> dict[str, Any] | None:
    """Write the extra of the bronze DAG's `shopstream.bronze.raw_events` Asset event and return it: the load
    `totals`, number of `loads` and per-topic `topics` (inserted, quarantined, quarantined_by_reason,
    remaining_lag; from the merged load results), and - when the task has inlet events - the
    hours this run loaded (`extract`, `extract_until`) for the dbt DAG's reconciliation. Without
    `outlet_events` (a call outside Airflow) there is no event: nothing is written, None is returned."""
    from shopstream.assets import BRONZE_RAW_EVENTS

    if outlet_events is None:
        return None
    # Per topic too, for the asset's page: what was stored, quarantined (and why) and left as lag.
    topics = {t: {k: c[k] for k in ("inserted", "quarantined", "remaining_lag", "quarantined_by_reason")}
              for t, c in loads["topics"].items()}
    extra = {"totals": loads["totals"], "loads": loads["loads"], "topics": topics}
    if inlet_events is not None:
        extra.update(bronze_extract_extra(inlet_events, dag_run))
    outlet_events[BRONZE_RAW_EVENTS].extra = extra
    return extra


# ------------------------------------------------------------------------ window 2: the dbt DAG's reconcile


def merge_extract_hours(extras: Iterable[Mapping[str, Any] | None]) -> dict[str, dict[str, int]]:
    """{hour: {base topic: messages}} from bronze asset event extras' `extract` entries (later wins)."""
    out: dict[str, dict[str, int]] = {}
    for extra in extras:
        for hour, topics in ((extra or {}).get("extract") or {}).items():
            for topic, n in topics.items():
                out.setdefault(hour, {})[topic] = int(n)
    return out


def hours_for_run(dag_run: Any, inlet_events: Any) -> dict[str, Any]:
    """{hours, recorded (the asset events' message counts, or None for hours named by conf), how, until} of a dbt
    run (window 2 of the module doc, or the hours its conf names)."""
    from shopstream.assets import BRONZE_RAW_EVENTS, RECONCILED

    conf = getattr(dag_run, "conf", None) or {}
    until = _run_after(dag_run)
    after = _latest_marker(inlet_events[RECONCILED], "bronze_until") if inlet_events is not None else None
    if after is not None and until < after:
        until = after
    if "reconcile_hours" in conf:
        hours = sorted({parse_hour(h) for h in conf["reconcile_hours"] or ()})
        return {"hours": hours, "recorded": None, "how": "dag_run.conf reconcile_hours", "until": until}
    if inlet_events is None:
        return {"hours": [], "recorded": None, "how": "no inlet events", "until": until}
    bronze = _window(inlet_events[BRONZE_RAW_EVENTS], after, until)
    recorded = merge_extract_hours(getattr(e, "extra", None) for e in bronze)
    how = (f"asset events window ({len(bronze)} bronze events after {_iso(after) if after else 'the beginning'},"
           f" hours recorded by extract)")
    return {"hours": sorted(parse_hour(h) for h in recorded), "recorded": recorded, "how": how, "until": until}


def record_reconciled_event(outlet_events: Any, until: datetime, hours: Sequence[str]) -> None:
    """Write the extra of the `shopstream.reconciled` Asset event of a successful reconciliation: where its
    window ended (`bronze_until`, where the next run's window starts) and the hours it reconciled."""
    from shopstream.assets import RECONCILED

    if outlet_events is not None:
        outlet_events[RECONCILED].extra = {"bronze_until": _iso(until), "hours": list(hours)}
