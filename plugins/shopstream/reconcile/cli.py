"""Reconcile hours from the command line, without Airflow: the count table on stdout.

    python -m shopstream.reconcile --hour 2026-11-27T13:00:00Z [--hour ...] [--hours N] [--record]

The same counts and checks as the dbt DAG's `reconcile` task (`shopstream.reconcile.warehouse`); the expected
(`published`) counts are what the extract task recorded (`ops.extract_published`, `shopstream.reconcile.published`;
an hour it did not record shows `-`). `--record` also writes the results into `ops.reconcile_results` (the
Pipeline health dashboard), as the task does. Connection: `AIRFLOW_CONN_WAREHOUSE_DB` from the environment of
`scripts/common.sh`; topics: `SHOPSTREAM_TOPIC_<NAME>`. Exit codes: 0 the counts add up, 1 a mismatch.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import timedelta

from shopstream import connections
from shopstream.hours import parse_hour
from shopstream.topics import topic_names


def main(argv: Sequence[str] | None = None) -> int:
    import psycopg

    from shopstream import ops
    from shopstream.reconcile.published import expected_counts
    from shopstream.reconcile.warehouse import reconcile

    parser = argparse.ArgumentParser(prog="python -m shopstream.reconcile",
                                     description="Reconcile logical hours across Kafka, bronze, silver and gold.")
    parser.add_argument("--hour", action="append", required=True, help="ISO hour, e.g. 2026-11-27T13:00:00Z")
    parser.add_argument("--hours", type=int, default=1, help="reconcile N consecutive hours from each --hour")
    parser.add_argument("--record", action="store_true",
                        help="also write the results into ops.reconcile_results (the Pipeline health dashboard)")
    args = parser.parse_args(argv)
    hours = sorted({parse_hour(h) + timedelta(hours=i) for h in args.hour for i in range(args.hours)})
    topics = topic_names()
    with psycopg.connect(connections.postgres_conninfo_from_env(connections.WAREHOUSE_DB), autocommit=True) as conn:
        expected = expected_counts(conn, hours, topics)
        summary = reconcile(conn, hours, expected, topics, raise_on_mismatch=False, log_table=False)
        if args.record:
            ops.record_reconciliation(conn, summary, topics, "cli")
    print(summary["table"])
    return 0 if summary["ok"] else 1
