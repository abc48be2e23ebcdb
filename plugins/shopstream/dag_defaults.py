"""Defaults every ShopStream DAG shares: owner, retries with exponential backoff, alerts.

Retries are the first line of defence: every task in this project is safe to re-run (idempotent by
design), so a transient failure (a broker restart, a database failover, a 429 storm) heals itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shopstream import alerts

OWNER = "shopstream"
# Early enough for any hour we may backfill or run by hand: a manual run whose logical date is before a
# task's start_date gets no task instance at all (the run "succeeds" doing nothing). Same as the extract DAG.
START_DATE = datetime(2025, 1, 1, tzinfo=UTC)


def default_args(retries: int = 3, retry_delay: timedelta = timedelta(seconds=30),
                 max_retry_delay: timedelta = timedelta(minutes=10)) -> dict:
    return {
        "owner": OWNER,
        "retries": retries,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": 2.0,  # Airflow 3.3: a multiplier (True would mean 1.0, no backoff)
        "max_retry_delay": max_retry_delay,
        "on_failure_callback": alerts.on_failure,
        "on_retry_callback": alerts.on_retry,
    }
