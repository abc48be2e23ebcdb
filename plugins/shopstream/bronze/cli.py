"""One bounded bronze load from the command line; prints the result as JSON on stdout.

    python -m shopstream.bronze.cli --topics orders,events [--partitions orders:0,orders:1] \\
        [--bootstrap 127.0.0.1:59092] [--dsn "host=... dbname=..."] [--group shopstream-bronze] \\
        [--batch-size 20000] [--max-messages N] [--max-seconds S] [--max-value-bytes N] [--apply-ddl]

With the environment of scripts/common.sh it logs in as the loader (the runbook's replay: `python -m
shopstream.bronze.cli --topics orders`): --dsn defaults to the connection AIRFLOW_CONN_BRONZE_DB (the loader's
least-privilege login) when set, else to libpq's environment (PGHOST, PGPORT, ...); --bootstrap to
$KAFKA_BOOTSTRAP; --group to $SHOPSTREAM_BRONZE_GROUP, else shopstream-bronze (as the bronze DAG).
--kafka-config takes a JSON object of extra confluent-kafka settings.

The schema is only verified (the tables exist, the role may append to them): the DDL is applied at setup by
the owner role, `scripts/postgres.sh apply-ddl`. --apply-ddl applies include/sql/bronze itself first, for a
database whose role owns bronze (a test or benchmark database).
Exit codes: 0 drained or budget reached, 1 error, 2 usage, 3 stalled (Kafka silent for --stall-seconds).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from shopstream.bronze.consumer import DEFAULT_GROUP
from shopstream.bronze.loader import BronzeLoader, LoaderSettings, LoaderStalled
from shopstream.bronze.planning import parse_tps
from shopstream.bronze.schema import verify_ddl
from shopstream.cli import kafka_config, setup_logging
from shopstream.connections import BRONZE_DB, env_var, postgres_conninfo_from_env


def default_dsn() -> str:
    """The loader's own login (AIRFLOW_CONN_BRONZE_DB) when configured, else libpq's environment (PG*): the
    warehouse role that PG* names in scripts/common.sh may read bronze but not write it."""
    return postgres_conninfo_from_env(BRONZE_DB) if os.environ.get(env_var(BRONZE_DB)) else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m shopstream.bronze.cli", description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP"))
    ap.add_argument("--kafka-config", default="{}", help="JSON object of extra confluent-kafka settings")
    ap.add_argument("--dsn", help="libpq conninfo (default: AIRFLOW_CONN_BRONZE_DB, else PG* environment variables)")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--topics", help="comma-separated topics (all their partitions)")
    what.add_argument("--partitions", help="comma-separated topic:partition list")
    ap.add_argument("--group", default=os.environ.get("SHOPSTREAM_BRONZE_GROUP") or DEFAULT_GROUP)
    ap.add_argument("--batch-size", type=int, default=LoaderSettings.batch_max_messages)
    ap.add_argument("--batch-seconds", type=float, default=LoaderSettings.batch_max_seconds)
    ap.add_argument("--max-messages", type=int)
    ap.add_argument("--max-seconds", type=float)
    ap.add_argument("--max-value-bytes", type=int, default=LoaderSettings.max_value_bytes)
    ap.add_argument("--stall-seconds", type=float, default=LoaderSettings.stall_seconds)
    ap.add_argument("--db-retry-seconds", type=float, default=LoaderSettings.db_retry_seconds)
    ap.add_argument("--no-kafka-commit", action="store_true")
    ap.add_argument("--apply-ddl", action="store_true",
                    help="apply include/sql/bronze first (a role that owns bronze); default: only verify it")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)

    setup_logging(args.log_level)
    config = kafka_config(ap, args)
    dsn = default_dsn() if args.dsn is None else args.dsn
    if not args.apply_ddl:
        verify_ddl(dsn)  # a missing table or grant: a message with the fix, before reading Kafka
    settings = LoaderSettings(apply_ddl=args.apply_ddl,
        consumer_group=args.group, batch_max_messages=args.batch_size, batch_max_seconds=args.batch_seconds,
        max_messages=args.max_messages, max_seconds=args.max_seconds, max_value_bytes=args.max_value_bytes,
        stall_seconds=args.stall_seconds, db_retry_seconds=args.db_retry_seconds,
        commit_to_kafka=not args.no_kafka_commit)
    if args.topics:
        loader = BronzeLoader(dsn, config, topics=[t for t in args.topics.split(",") if t], settings=settings)
    else:
        loader = BronzeLoader(dsn, config, partitions=parse_tps(args.partitions), settings=settings)
    try:
        result = loader.run()
    except LoaderStalled as exc:
        logging.getLogger("shopstream.bronze").error("%s", exc)
        return 3
    json.dump(result.as_dict(), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
