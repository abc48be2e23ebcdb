"""One extract task: fetch what a topic needs from DummyJSON, build the hour's messages, publish them.

`extract_topic(...)` is the plain-Python core (a DummyJSON client and a producer config in, counts out),
used by tests and benchmarks. `run_extract_task(base_topic, context)` is the Airflow glue the DAG calls:
logical hour from the run, client from the `dummyjson_api` connection (via the DummyJSON hook), producer
config from the `kafka_default` connection (via the Kafka provider's `KafkaProducerHook`), the asset
event's extra, logging.

Each topic's task fetches its own inputs, so a failed task retries alone (requests per run at the default
page size of 100 against DummyJSON's 208 users, 194 products, 208 carts): customers 3 (/users),
products 2 (/products), orders 3 (/carts), events 8 (all three) - 16 requests per hour.

Topic names: `SHOPSTREAM_TOPIC_<NAME>` (e.g. `SHOPSTREAM_TOPIC_ORDERS=orders-test1`) overrides the topic a
task publishes to; read when the task runs, never at DAG parse time.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shopstream.extract.derive import (
    DEFAULT_EVENTS_PER_HOUR,
    DEFAULT_ORDER_RATE,
    DEFAULT_SEED,
    DEFAULT_SETTINGS,
    DeriveSettings,
)
from shopstream.extract.messages import RESOURCES, TOPICS, Snapshot, build_messages
from shopstream.extract.publisher import producer_config_from_airflow, publish
from shopstream.hours import hour_iso, logical_hour

log = logging.getLogger(__name__)

DUMMYJSON_CONN_ID = "dummyjson_api"
KAFKA_CONN_ID = "kafka_default"


def topic_name(base_topic: str, environ: Mapping[str, str] | None = None) -> str:
    """The Kafka topic for `base_topic`: `$SHOPSTREAM_TOPIC_<BASE>` when set, else the base name."""
    if base_topic not in TOPICS:
        raise ValueError(f"unknown topic {base_topic!r}; expected one of {TOPICS}")
    env = os.environ if environ is None else environ
    return env.get(f"SHOPSTREAM_TOPIC_{base_topic.upper()}") or base_topic


def settings_from_params(params: Mapping[str, Any] | None) -> DeriveSettings:
    """DeriveSettings from the DAG params `seed`, `order_rate`, `events_per_hour` (defaults when absent)."""
    params = params or {}

    def get(name: str, default: Any) -> Any:
        value = params.get(name)
        return default if value is None or value == "" else value

    return DeriveSettings(
        seed=str(get("seed", DEFAULT_SEED)),
        order_rate=float(get("order_rate", DEFAULT_ORDER_RATE)),
        events_per_hour=int(get("events_per_hour", DEFAULT_EVENTS_PER_HOUR)),
    )


def extract_topic(
    base_topic: str,
    hour: datetime,
    client: Any,
    producer_config: Mapping[str, Any],
    *,
    settings: DeriveSettings = DEFAULT_SETTINGS,
    topic: str | None = None,
    flush_timeout: float = 120.0,
) -> dict[str, Any]:
    """Fetch, build and publish one topic's messages for `hour`; returns the counts.

    `client` is a `DummyJSONClient` (anything with `fetch_all(resource)` and a `stats` dict with
    `requests`/`retries`).
    """
    if base_topic not in TOPICS:
        raise ValueError(f"unknown topic {base_topic!r}; expected one of {TOPICS}")
    name = topic or base_topic
    stats = getattr(client, "stats", {}) or {}
    requests_before, retries_before = stats.get("requests", 0), stats.get("retries", 0)

    started = time.perf_counter()
    fetched = {resource: client.fetch_all(resource) for resource in RESOURCES[base_topic]}
    fetch_seconds = time.perf_counter() - started

    started = time.perf_counter()
    messages = build_messages(base_topic, Snapshot(**fetched), hour, settings, name)
    build_seconds = time.perf_counter() - started

    result = publish(messages, producer_config, flush_timeout=flush_timeout,
                     fault_point=f"extract.publish:{base_topic}")
    stats = getattr(client, "stats", {}) or {}
    return {
        "topic": name,
        "logical_hour": hour_iso(hour),
        "fetched": {resource: len(records) for resource, records in fetched.items()},
        "published": result.published,
        "requests": stats.get("requests", 0) - requests_before,
        "retries": stats.get("retries", 0) - retries_before,
        "fetch_seconds": round(fetch_seconds, 3),
        "build_seconds": round(build_seconds, 3),
        "publish_seconds": round(result.seconds, 3),
        "publish_rate": round(result.rate, 1),
    }


def dummyjson_client(conn_id: str = DUMMYJSON_CONN_ID) -> Any:
    """A DummyJSONClient configured from the Airflow HTTP connection `conn_id`."""
    from shopstream.dummyjson.hook import DummyJSONHook

    return DummyJSONHook(http_conn_id=conn_id).get_conn()


def run_extract_task(base_topic: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """The body of the DAG's `publish_<topic>` task."""
    from shopstream import config
    from shopstream.assets import KAFKA_TOPIC_ASSETS

    config.task_preflight([DUMMYJSON_CONN_ID, KAFKA_CONN_ID], topics=True)
    hour = logical_hour(context)
    settings = settings_from_params(context.get("params"))
    name = topic_name(base_topic)
    log.info("publishing %s for logical hour %s to topic %r (%s)", base_topic, hour_iso(hour), name, settings)
    client = dummyjson_client()
    try:
        counts = extract_topic(base_topic, hour, client, producer_config_from_airflow(KAFKA_CONN_ID),
                               settings=settings, topic=name)
    finally:
        close = getattr(client, "close", None)
        if callable(close):
            close()
    outlet_events = context.get("outlet_events")
    if outlet_events is not None:
        outlet_events[KAFKA_TOPIC_ASSETS[base_topic]].extra = {
            "logical_hour": counts["logical_hour"],
            "topic": name,
            "messages": counts["published"],
        }
    log.info(
        "%s: logical hour %s, fetched %s, published %d to %r, %d requests, %d retries, %.0f msg/s",
        base_topic, counts["logical_hour"], counts["fetched"], counts["published"], name,
        counts["requests"], counts["retries"], counts["publish_rate"],
    )
    return counts
