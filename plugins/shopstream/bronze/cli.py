"""One bounded bronze load from the command line; prints the result as JSON on stdout.

    python -m shopstream.bronze.cli --bootstrap 127.0.0.1:59092 --dsn "host=... dbname=..." \\
        --topics orders,events [--partitions orders:0,orders:1] [--group shopstream-bronze] \\
        [--batch-size 20000] [--max-messages N] [--max-seconds S] [--max-value-bytes N]

--dsn defaults to libpq's environment (PGHOST, PGPORT, ...); --bootstrap to $KAFKA_BOOTSTRAP.
--kafka-config takes a JSON object of extra confluent-kafka settings.
Exit codes: 0 drained or budget reached, 1 error, 3 stalled (Kafka silent for --stall-seconds).
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
from shopstream.cli import kafka_config, setup_logging


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m shopstream.bronze.cli", description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP"))
    ap.add_argument("--kafka-config", default="{}", help="JSON object of extra confluent-kafka settings")
    ap.add_argument("--dsn", default="", help="libpq conninfo (default: PG* environment variables)")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--topics", help="comma-separated topics (all their partitions)")
    what.add_argument("--partitions", help="comma-separated topic:partition list")
    ap.add_argument("--group", default=DEFAULT_GROUP)
    ap.add_argument("--batch-size", type=int, default=LoaderSettings.batch_max_messages)
    ap.add_argument("--batch-seconds", type=float, default=LoaderSettings.batch_max_seconds)
    ap.add_argument("--max-messages", type=int)
    ap.add_argument("--max-seconds", type=float)
    ap.add_argument("--max-value-bytes", type=int, default=LoaderSettings.max_value_bytes)
    ap.add_argument("--stall-seconds", type=float, default=LoaderSettings.stall_seconds)
    ap.add_argument("--db-retry-seconds", type=float, default=LoaderSettings.db_retry_seconds)
    ap.add_argument("--no-kafka-commit", action="store_true")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)

    setup_logging(args.log_level)
    config = kafka_config(ap, args)
    settings = LoaderSettings(
        consumer_group=args.group, batch_max_messages=args.batch_size, batch_max_seconds=args.batch_seconds,
        max_messages=args.max_messages, max_seconds=args.max_seconds, max_value_bytes=args.max_value_bytes,
        stall_seconds=args.stall_seconds, db_retry_seconds=args.db_retry_seconds,
        commit_to_kafka=not args.no_kafka_commit)
    if args.topics:
        loader = BronzeLoader(args.dsn, config, topics=[t for t in args.topics.split(",") if t], settings=settings)
    else:
        loader = BronzeLoader(args.dsn, config, partitions=parse_tps(args.partitions), settings=settings)
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
