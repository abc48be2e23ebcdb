"""The extract stage from the command line: fetch, build and publish logical hours; JSON counts on stdout.

    python -m shopstream.extract.cli --hour 2026-11-27T10:00:00Z [--hour ...] \\
        [--topics customers,products,orders,events] [--bootstrap 127.0.0.1:59092] \\
        [--dummyjson-url http://127.0.0.1:58080] [--events-per-hour 300] [--order-rate 0.09] [--seed ...]

The same core as the DAG's `publish_hour` task (`shopstream.extract.tasks.extract_hour`), without Airflow: used by
the fault suite to run (and kill -9) a real extract process, and by hand. Topic names follow the tasks:
`$SHOPSTREAM_TOPIC_<NAME>` renames a base topic. --bootstrap defaults to $KAFKA_BOOTSTRAP, --dummyjson-url to
the `AIRFLOW_CONN_DUMMYJSON_API` connection. A fault spec in $SHOPSTREAM_FAULTS_FILE applies as in the DAG.
Exit codes: 0 every message delivered, 1 error (e.g. `PublishError`: the hour must be published again).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from shopstream.cli import kafka_config, setup_logging
from shopstream.connections import DUMMYJSON_API, dummyjson_url_from_env, env_var
from shopstream.extract.derive import (
    DEFAULT_EVENTS_PER_HOUR,
    DEFAULT_ORDER_RATE,
    DEFAULT_SEED,
    DeriveSettings,
)
from shopstream.extract.messages import TOPICS
from shopstream.extract.tasks import extract_hour, topic_name
from shopstream.hours import parse_hour


def _default_dummyjson_url() -> str | None:
    if not os.environ.get(env_var(DUMMYJSON_API)):
        return None
    return dummyjson_url_from_env()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m shopstream.extract.cli", description=__doc__.split("\n")[0])
    ap.add_argument("--hour", action="append", required=True, help="logical hour (repeatable)")
    ap.add_argument("--topics", default=",".join(TOPICS), help="comma-separated base topics")
    ap.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP"))
    ap.add_argument("--kafka-config", default="{}", help="JSON object of extra confluent-kafka settings")
    ap.add_argument("--dummyjson-url", default=_default_dummyjson_url())
    ap.add_argument("--page-size", type=int, default=100)
    ap.add_argument("--events-per-hour", type=int, default=DEFAULT_EVENTS_PER_HOUR)
    ap.add_argument("--order-rate", type=float, default=DEFAULT_ORDER_RATE)
    ap.add_argument("--seed", default=DEFAULT_SEED)
    ap.add_argument("--flush-timeout", type=float, default=120.0)
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)

    setup_logging(args.log_level)
    config = kafka_config(ap, args)
    if not args.dummyjson_url:
        ap.error("--dummyjson-url (or $AIRFLOW_CONN_DUMMYJSON_API) is required")
    bases = [t for t in args.topics.split(",") if t]
    settings = DeriveSettings(seed=args.seed, order_rate=args.order_rate, events_per_hour=args.events_per_hour)

    from shopstream.dummyjson.client import DummyJSONClient

    client = DummyJSONClient(args.dummyjson_url, page_size=args.page_size, rate_limit=None)
    out = []
    try:
        for hour_text in args.hour:
            hour = parse_hour(hour_text)
            published = extract_hour(hour, client, config, settings=settings,
                                     topics={base: topic_name(base) for base in bases},
                                     flush_timeout=args.flush_timeout)
            out.extend(published.values())
    finally:
        close = getattr(client, "close", None)
        if callable(close):
            close()
    json.dump({"published": sum(r["published"] for r in out), "runs": out}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
