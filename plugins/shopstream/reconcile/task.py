"""The body of the dbt DAG's final `reconcile` task: Airflow's run and asset events in, a summary out.

Inlets: the bronze and the reconciled Assets; outlet: the reconciled Asset, whose extra carries the window's end
for the next run (`shopstream.reconcile.windows`). The warehouse is read through the `warehouse_db` connection
(`shopstream.connections`: TLS extras included); the expected counts are what extract recorded as published
(`ops.extract_published`, else the asset events' counts: `shopstream.reconcile.published`), for the window's
hours and for hours named by the run's conf alike. The results, mismatches included, are recorded in
`ops.reconcile_results` (`shopstream.ops`; a retry overwrites them). A mismatch fails the task without retries
(it is deterministic) with the whole table.
"""

from __future__ import annotations

import logging
from typing import Any

from shopstream import connections, ops
from shopstream.hours import hour_iso
from shopstream.reconcile import windows
from shopstream.reconcile.checks import ReconciliationError
from shopstream.reconcile.published import expected_counts
from shopstream.reconcile.warehouse import reconcile
from shopstream.topics import topic_names

log = logging.getLogger("shopstream.reconcile")


def run_reconcile_task(dag_run: Any, inlet_events: Any, outlet_events: Any) -> dict[str, Any]:
    """Reconcile the hours of this run (`windows.hours_for_run`), return the summary (the task's XCom) and, when
    the counts add up, record the reconciled Asset event; AirflowFailException with the table when they don't."""
    import psycopg

    chosen = windows.hours_for_run(dag_run, inlet_events)
    hours, how = chosen["hours"], chosen["how"]
    if hours:
        log.info("reconciling %s (%s)", ", ".join(hour_iso(h) for h in hours), how)
        topics = topic_names()
        with psycopg.connect(connections.postgres_conninfo(connections.WAREHOUSE_DB), autocommit=True) as conn:
            expected = expected_counts(conn, hours, topics, chosen["recorded"])
            summary = reconcile(conn, hours, expected, topics, raise_on_mismatch=False)
            ops.record_reconciliation(conn, summary, topics, getattr(dag_run, "run_id", None))
        if not summary["ok"]:
            from airflow.sdk.exceptions import AirflowFailException

            error = ReconciliationError(f"counts do not add up for {', '.join(summary['hours'])}:\n{summary['table']}")
            raise AirflowFailException(str(error)) from error  # deterministic: no retries
    else:
        log.warning("reconcile: no hour to reconcile (%s)", how)
        summary = {"hours": [], "ok": True}
    summary["how"] = how
    windows.record_reconciled_event(outlet_events, chosen["until"], summary["hours"])
    return summary

