from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pendulum
import pytest
from shopstream.hours import (
    LogicalHourError,
    epoch_ms,
    hour_compact,
    hour_iso,
    iso_seconds,
    logical_hour,
    parse_hour,
    to_utc_hour,
)

H13 = datetime(2026, 11, 27, 13, tzinfo=UTC)


def test_data_interval_start_wins_over_logical_date():
    ctx = {
        "data_interval_start": pendulum.datetime(2026, 11, 27, 13, tz="UTC"),
        "data_interval_end": pendulum.datetime(2026, 11, 27, 14, tz="UTC"),
        "logical_date": pendulum.datetime(2026, 11, 27, 14, tz="UTC"),  # a manual run's shape
    }
    assert logical_hour(ctx) == H13


def test_logical_date_floored_when_no_interval():
    ctx = {"data_interval_start": None, "logical_date": pendulum.datetime(2026, 11, 27, 13, 59, 59, 999, tz="UTC")}
    assert logical_hour(ctx) == H13
    assert logical_hour({"logical_date": datetime(2026, 11, 27, 13, 0, 1, tzinfo=UTC)}) == H13


def test_other_timezones_are_converted_to_utc():
    cet = timezone(timedelta(hours=1))
    assert logical_hour({"data_interval_start": datetime(2026, 11, 27, 14, 30, tzinfo=cet)}) == H13
    assert logical_hour({"logical_date": pendulum.datetime(2026, 11, 27, 8, 15, tz="America/New_York")}) == H13


def test_missing_interval_and_date_is_a_clear_error():
    with pytest.raises(LogicalHourError, match="neither a data interval nor a logical date"):
        logical_hour({"data_interval_start": None, "logical_date": None})
    with pytest.raises(LogicalHourError):
        logical_hour({})


def test_naive_datetimes_are_rejected():
    with pytest.raises(ValueError, match="naive"):
        logical_hour({"logical_date": datetime(2026, 11, 27, 13)})


def test_result_is_a_plain_utc_datetime_on_the_hour():
    h = logical_hour({"data_interval_start": pendulum.datetime(2026, 11, 27, 13, 42, 7, tz="UTC")})
    assert type(h) is datetime
    assert h.tzinfo is UTC and (h.minute, h.second, h.microsecond) == (0, 0, 0)


def test_formats_and_round_trip():
    assert hour_iso(H13) == "2026-11-27T13:00:00Z"
    assert hour_compact(H13) == "2026112713"
    assert parse_hour("2026-11-27T13:00:00Z") == H13
    assert parse_hour("2026112713") == H13
    assert parse_hour("2026-11-27T14:00:00+01:00") == H13
    with pytest.raises(ValueError, match="not on the hour"):
        parse_hour("2026-11-27T13:30:00Z")
    assert iso_seconds(H13 + timedelta(minutes=21, seconds=7, microseconds=900)) == "2026-11-27T13:21:07Z"
    assert epoch_ms(H13) == int(H13.timestamp()) * 1000 == 1_795_784_400_000
    assert to_utc_hour(H13 + timedelta(minutes=59)) == H13
