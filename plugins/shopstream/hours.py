"""The logical hour a DAG run processes, and its text forms.

Every extraction is a pure function of one *logical hour* (UTC, on the hour). It comes from the DAG run,
never from the wall clock, so re-running or backfilling an hour reproduces exactly the same messages.

Rule (`logical_hour`):
1. `data_interval_start` when the run has one. With `CronDataIntervalTimetable("0 * * * *")` a scheduled
   or backfill run of hour H has `logical_date == data_interval_start == H` and starts at H+1h.
   NB: a *manual* run (UI trigger, `airflow dags test`, `dag.test(logical_date=X)`) gets Airflow's inferred
   manual interval, the last complete hour before X: `[X-1h, X)`. So `dag.test(logical_date=14:00)`
   processes hour 13:00 - the same hour as the scheduled run that starts at 14:00.
2. otherwise `logical_date` floored to the hour;
3. otherwise a `LogicalHourError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

HOUR = timedelta(hours=1)


class LogicalHourError(ValueError):
    """The task context carries neither a data interval nor a logical date."""


def to_utc_hour(value: datetime) -> datetime:
    """`value` converted to UTC and floored to the hour. Naive datetimes are rejected (ambiguous)."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} is ambiguous; pass an aware (UTC) datetime")
    # Plain datetime (not pendulum's subclass) so comparisons, hashing and repr are boring and stable.
    utc = value.astimezone(UTC)
    return datetime(utc.year, utc.month, utc.day, utc.hour, tzinfo=UTC)


def logical_hour(context: Mapping[str, Any]) -> datetime:
    """The hour (UTC, on the hour) a task run processes; see the module docstring for the rule."""
    start = context.get("data_interval_start")
    if start is not None:
        return to_utc_hour(start)
    logical_date = context.get("logical_date")
    if logical_date is not None:
        return to_utc_hour(logical_date)
    raise LogicalHourError(
        "cannot determine the logical hour: the DAG run has neither a data interval nor a logical date "
        "(trigger it with a logical date, e.g. `airflow dags trigger shopstream_extract "
        "--logical-date 2026-11-27T14:00:00Z`, or use a backfill)"
    )


def hour_iso(hour: datetime) -> str:
    """`2026-11-27T13:00:00Z`."""
    return to_utc_hour(hour).strftime("%Y-%m-%dT%H:00:00Z")


def hour_compact(hour: datetime) -> str:
    """`2026112713` (used inside ids)."""
    return to_utc_hour(hour).strftime("%Y%m%d%H")


def parse_hour(text: str) -> datetime:
    """Inverse of `hour_iso` / `hour_compact`; also accepts any ISO-8601 time on the hour with an offset."""
    text = text.strip()
    if len(text) == 10 and text.isdigit():
        return datetime.strptime(text, "%Y%m%d%H").replace(tzinfo=UTC)
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    hour = to_utc_hour(value)
    if hour != value:
        raise ValueError(f"{text!r} is not on the hour")
    return hour


def iso_seconds(ts: datetime) -> str:
    """ISO-8601 UTC with a `Z`, second precision: `2026-11-27T13:21:07Z`."""
    if ts.tzinfo is None:
        raise ValueError("naive datetime")
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_ms(ts: datetime) -> int:
    """Milliseconds since the epoch (Kafka CreateTime), exact for whole seconds."""
    if ts.tzinfo is None:
        raise ValueError("naive datetime")
    delta = ts - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
