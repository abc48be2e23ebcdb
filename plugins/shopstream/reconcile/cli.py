"""Reconcile hours from the command line, without Airflow: the count table on stdout.

    python -m shopstream.reconcile --hour 2026-11-27T13:00:00Z [--hour ...] [--hours N]

The same counts and checks as the dbt DAG's `reconcile` task (`shopstream.reconcile.warehouse`); the expected
(`published`) counts are recomputed from DummyJSON + the derivation with the default settings
(`shopstream.reconcile.published`). Connections from the environment of `scripts/common.sh`:
`AIRFLOW_CONN_WAREHOUSE_DB` and `AIRFLOW_CONN_DUMMYJSON_API`. Exit codes: 0 the counts add up, 1 a mismatch.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import timedelta

from shopstream import connections
from shopstream.hours import parse_hour


def main(argv: Sequence[str] | None = None) -> int:
    import psycopg

    from shopstream.dummyjson.client import DummyJSONClient
    from shopstream.reconcile.published import published_counts
    from shopstream.reconcile.warehouse import reconcile

    parser = argparse.ArgumentParser(prog="python -m shopstream.reconcile",
                                     description="Reconcile logical hours across Kafka, bronze, silver and gold.")
    parser.add_argument("--hour", action="append", required=True, help="ISO hour, e.g. 2026-11-27T13:00:00Z")
    parser.add_argument("--hours", type=int, default=1, help="reconcile N consecutive hours from each --hour")
    args = parser.parse_args(argv)
    hours = sorted({parse_hour(h) + timedelta(hours=i) for h in args.hour for i in range(args.hours)})
    with DummyJSONClient(connections.dummyjson_url_from_env()) as client:
        expected = published_counts(hours, client)
    with psycopg.connect(connections.postgres_conninfo_from_env(connections.WAREHOUSE_DB), autocommit=True) as conn:
        summary = reconcile(conn, hours, expected, raise_on_mismatch=False, log_table=False)
    print(summary["table"])
    return 0 if summary["ok"] else 1
