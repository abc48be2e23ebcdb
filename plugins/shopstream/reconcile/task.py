"""The body of the dbt DAG's final `reconcile` task: Airflow's run and asset events in, a summary out.

Inlets: the bronze and the reconciled Assets; outlet: the reconciled Asset, whose extra carries the window's end
for the next run (`shopstream.reconcile.windows`). The warehouse is read through the `warehouse_db` connection
(`shopstream.connections`: TLS extras included); hours named by the run's conf have their expected counts
recomputed from the `dummyjson_api` connection (`shopstream.reconcile.published`). A mismatch fails the task
without retries (it is deterministic) with the whole table.
"""

from __future__ import annotations

import logging
from typing import Any

from shopstream import connections
from shopstream.hours import hour_iso
from shopstream.reconcile import windows
from shopstream.reconcile.checks import ReconciliationError
from shopstream.reconcile.warehouse import reconcile

log = logging.getLogger("shopstream.reconcile")


def run_reconcile_task(dag_run: Any, inlet_events: Any, outlet_events: Any) -> dict[str, Any]:
    """Reconcile the hours of this run (`windows.hours_for_run`), return the summary (the task's XCom) and, when
    the counts add up, record the reconciled Asset event; AirflowFailException with the table when they don't."""
    import psycopg

    chosen = windows.hours_for_run(dag_run, inlet_events)
    hours, how = chosen["hours"], chosen["how"]
    if hours:
        log.info("reconciling %s (%s)", ", ".join(hour_iso(h) for h in hours), how)
        expected = chosen["recorded"]
        if expected is None:
            expected = _published_counts_from_airflow(hours, getattr(dag_run, "conf", None) or {})
        with psycopg.connect(connections.postgres_conninfo(connections.WAREHOUSE_DB), autocommit=True) as conn:
            try:
                summary = reconcile(conn, hours, expected)
            except ReconciliationError as exc:
                from airflow.sdk.exceptions import AirflowFailException

                raise AirflowFailException(str(exc)) from exc  # deterministic: no retries
    else:
        log.warning("reconcile: no hour to reconcile (%s)", how)
        summary = {"hours": [], "ok": True}
    summary["how"] = how
    windows.record_reconciled_event(outlet_events, chosen["until"], summary["hours"])
    return summary


def _published_counts_from_airflow(hours: list, conf: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Expected counts of hours named by the run's conf: DummyJSON through the `dummyjson_api` connection, the
    derivation settings from the conf (`seed`, `order_rate`, `events_per_hour`; defaults when absent)."""
    from shopstream.extract.tasks import dummyjson_client, settings_from_params
    from shopstream.reconcile.published import published_counts

    with dummyjson_client() as client:
        return published_counts(hours, client, settings_from_params(conf))
