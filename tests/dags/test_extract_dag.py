"""The shopstream_extract DAG's structure, from the session's DagBag (tests/dags/conftest.py: no scheduler, no
metadata DB, no network)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

DAG_ID = "shopstream_extract"


def test_identity_schedule_and_defaults(dag):
    from airflow.sdk import CronDataIntervalTimetable

    assert dag.dag_id == "shopstream_extract"
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.timetable.expression == "0 * * * *"
    assert dag.start_date == datetime(2025, 1, 1, tzinfo=UTC)
    assert dag.catchup is False
    assert 1 <= dag.max_active_runs <= 3
    assert set(dag.tags) >= {"shopstream", "extract"}
    assert set(dag.params.keys()) == {"seed", "order_rate", "events_per_hour"}


def test_one_task_per_hour_updates_every_topic_asset(dag):
    from shopstream.assets import KAFKA_TOPIC_ASSETS

    assert dag.task_ids == ["publish_hour"]
    t = dag.get_task("publish_hour")
    assert t.outlets == list(KAFKA_TOPIC_ASSETS.values())
    assert t.owner == "shopstream"
    assert t.retries >= 2
    assert t.retry_delay >= timedelta(seconds=10)
    assert t.retry_exponential_backoff > 1


def test_scheduled_run_processes_the_previous_hour(dag):
    """Run starting at 14:00 covers [13:00, 14:00): its data_interval_start is the logical hour."""
    import pendulum
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import DataInterval, TimeRestriction
    from shopstream.hours import logical_hour

    timetable = coerce_to_core_timetable(dag.timetable)
    last = DataInterval(pendulum.datetime(2026, 11, 27, 12, tz="UTC"), pendulum.datetime(2026, 11, 27, 13, tz="UTC"))
    info = timetable.next_dagrun_info(
        last_automated_data_interval=last,
        restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=True),
    )
    assert info.run_after == datetime(2026, 11, 27, 14, tzinfo=UTC)
    ctx = {"data_interval_start": info.data_interval.start, "logical_date": info.logical_date}
    assert logical_hour(ctx) == datetime(2026, 11, 27, 13, tzinfo=UTC)
