"""Failure alerts: one structured line per failed task try, optionally POSTed to a webhook.

Used as `on_failure_callback` (and `on_retry_callback`) by every DAG through `shopstream.dag_defaults`. The
alert is a JSON object an on-call engineer (or a log pipeline) can act on: which DAG, task, run and try, the
logical hour, the exception, and the log URL. `SHOPSTREAM_ALERT_WEBHOOK_URL` (optional, from .env) receives the
same JSON; a webhook that fails is logged, never raised: an alert must not fail the task a second time.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from typing import Any

log = logging.getLogger("shopstream.alerts")

WEBHOOK_ENV = "SHOPSTREAM_ALERT_WEBHOOK_URL"


def build_alert(context: dict[str, Any], event: str) -> dict[str, Any]:
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    exc = context.get("exception")
    return {
        "event": event,
        "dag_id": getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "map_index": getattr(ti, "map_index", None),
        "run_id": getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None),
        "try_number": getattr(ti, "try_number", None),
        "logical_date": str(context.get("logical_date")) if context.get("logical_date") else None,
        "data_interval_start": str(context.get("data_interval_start"))
        if context.get("data_interval_start") else None,
        "error_type": type(exc).__name__ if exc else None,
        "error": str(exc)[:2000] if exc else None,
        "log_url": getattr(ti, "log_url", None),
    }


def _post(url: str, payload: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - URL is operator config
            response.read()
    except Exception as exc:  # noqa: BLE001 - never fail the task because the alert channel is down
        log.warning("alert webhook %s failed: %s", url, exc)


def emit(context: dict[str, Any], event: str) -> dict[str, Any]:
    alert = build_alert(context, event)
    log.error("SHOPSTREAM_ALERT %s", json.dumps(alert, sort_keys=True, default=str))
    url = os.environ.get(WEBHOOK_ENV)
    if url:
        _post(url, alert)
    return alert


def on_failure(context: dict[str, Any]) -> None:
    emit(context, "task_failed")


def on_retry(context: dict[str, Any]) -> None:
    emit(context, "task_retry")
