"""The extract task: fetch DummyJSON once, build the hour's messages of every topic, publish them.

`extract_hour(...)` / `extract_topic(...)` are the plain-Python core (a DummyJSON client and a producer config in,
counts out), used by tests, benchmarks and the CLI. `run_extract_hour_task(...)` is the Airflow glue the DAG
calls: logical hour from the run, client from the `dummyjson_api` connection (via the DummyJSON hook), producer
config from the `kafka_default` connection (via the Kafka provider's `KafkaProducerHook`), one asset event per
topic with its extra, logging.

One task per hour, not one per topic (bench/README.md, "Extract tasks per hour"): each resource is fetched once
(/users, /products, /carts: 8 requests per hour at the default page size of 100 against DummyJSON's 208 users,
194 products, 208 carts, instead of 16) and a backfill schedules a quarter of the tasks. The topics are published
one after the other (customers, products, orders, events); a failure stops the task, and its retry publishes the
whole hour again: the same messages (deterministic), which bronze stores and silver deduplicates by key and
version, as for any re-run.

Topic names: `SHOPSTREAM_TOPIC_<NAME>` (e.g. `SHOPSTREAM_TOPIC_ORDERS=orders-test1`) overrides the topic a
task publishes to; read when the task runs, never at DAG parse time.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from shopstream import ops
from shopstream.connections import DUMMYJSON_API as DUMMYJSON_CONN_ID
from shopstream.connections import KAFKA as KAFKA_CONN_ID
from shopstream.connections import WAREHOUSE_DB as WAREHOUSE_CONN_ID
from shopstream.connections import kafka_config
from shopstream.extract.derive import (
    DEFAULT_EVENTS_PER_HOUR,
    DEFAULT_ORDER_RATE,
    DEFAULT_SEED,
    DEFAULT_SETTINGS,
    DeriveSettings,
)
from shopstream.extract.messages import RESOURCES, Snapshot, build_messages
from shopstream.extract.publisher import close_producer, open_producer, publish
from shopstream.hours import hour_iso, logical_hour
from shopstream.topics import TOPICS, check_base_topic, topic_name

log = logging.getLogger(__name__)



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


def publish_topic(
    base_topic: str,
    hour: datetime,
    snapshot: Snapshot,
    producer_config: Mapping[str, Any],
    *,
    settings: DeriveSettings = DEFAULT_SETTINGS,
    topic: str | None = None,
    flush_timeout: float = 120.0,
    producer: Any = None,
) -> dict[str, Any]:
    """Build and publish one topic's messages for `hour` from an already fetched `snapshot`; returns the counts.
    `producer` (optional): an open confluent-kafka Producer to use (and leave open)."""
    check_base_topic(base_topic)
    name = topic or base_topic
    started = time.perf_counter()
    messages = build_messages(base_topic, snapshot, hour, settings, name)
    build_seconds = time.perf_counter() - started
    result = publish(messages, producer_config, flush_timeout=flush_timeout, producer=producer,
                     fault_point=f"extract.publish:{base_topic}")
    return {
        "topic": name,
        "logical_hour": hour_iso(hour),
        "published": result.published,
        **published_keys(base_topic, messages),
        "offsets": {str(p): span for p, span in sorted((result.offsets or {}).get(name, {}).items())},
        "build_seconds": round(build_seconds, 3),
        "publish_seconds": round(result.seconds, 3),
        "publish_rate": round(result.rate, 1),
    }


def published_keys(base_topic: str, messages: Sequence[Any]) -> dict[str, int]:
    """What the reconciliation counts of a topic's messages: distinct `keys`, and for orders the `order_items`
    of the last message of each order (the version silver ends up with when the hour is the latest)."""
    last = {m.key: m for m in messages}
    out = {"keys": len(last)}
    if base_topic == "orders":
        out["order_items"] = sum(len(json.loads(m.value).get("items") or ()) for m in last.values())
    return out


def _fetch(client: Any, resources: tuple[str, ...]) -> tuple[Snapshot, dict[str, Any]]:
    stats = getattr(client, "stats", {}) or {}
    requests_before, retries_before = stats.get("requests", 0), stats.get("retries", 0)
    started = time.perf_counter()
    fetched = {resource: client.fetch_all(resource) for resource in resources}
    stats = getattr(client, "stats", {}) or {}
    return Snapshot(**fetched), {
        "fetched": {resource: len(records) for resource, records in fetched.items()},
        "requests": stats.get("requests", 0) - requests_before,
        "retries": stats.get("retries", 0) - retries_before,
        "fetch_seconds": round(time.perf_counter() - started, 3),
    }


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
    """Fetch what one topic needs, build and publish its messages for `hour`; returns the counts.

    `client` is a `DummyJSONClient` (anything with `fetch_all(resource)` and a `stats` dict with
    `requests`/`retries`).
    """
    check_base_topic(base_topic)
    snapshot, fetch = _fetch(client, RESOURCES[base_topic])
    counts = publish_topic(base_topic, hour, snapshot, producer_config, settings=settings, topic=topic,
                           flush_timeout=flush_timeout)
    return {**counts, **fetch}


def extract_hour(
    hour: datetime,
    client: Any,
    producer_config: Mapping[str, Any],
    *,
    settings: DeriveSettings = DEFAULT_SETTINGS,
    topics: Mapping[str, str] | None = None,
    flush_timeout: float = 120.0,
) -> dict[str, dict[str, Any]]:
    """Every topic of `hour` from one fetch of each resource they need; {base topic: counts}.

    `topics` maps base topics to the names to publish to (default: all four, under their own names).
    The first topic that fails stops the hour (its exception propagates). One producer serves the four topics (an
    idempotent producer's start-up, ~0.5 s against the local broker, is paid once per hour, not per topic).
    """
    topics = dict(topics) if topics is not None else {t: t for t in TOPICS}
    resources = tuple(dict.fromkeys(r for base in topics for r in RESOURCES[base]))
    snapshot, fetch = _fetch(client, resources)
    out = {}
    producer = open_producer(producer_config)
    try:
        for base, name in topics.items():
            counts = publish_topic(base, hour, snapshot, producer_config, settings=settings, topic=name,
                                   flush_timeout=flush_timeout, producer=producer)
            out[base] = {**counts, "fetched": {r: fetch["fetched"][r] for r in RESOURCES[base]}}
    finally:
        close_producer(producer)
    log.info("logical hour %s: fetched %s in %d requests (%d retries, %.2f s)", hour_iso(hour), fetch["fetched"],
             fetch["requests"], fetch["retries"], fetch["fetch_seconds"])
    return out


def dummyjson_client(conn_id: str = DUMMYJSON_CONN_ID) -> Any:
    """A DummyJSONClient configured from the Airflow HTTP connection `conn_id`."""
    from shopstream.dummyjson.hook import DummyJSONHook

    return DummyJSONHook(http_conn_id=conn_id).get_conn()


def run_extract_hour_task(*, data_interval_start: Any = None, logical_date: Any = None,
                          params: Mapping[str, Any] | None = None, outlet_events: Any = None,
                          run_id: str | None = None, base_topics: tuple[str, ...] = TOPICS
                          ) -> dict[str, dict[str, Any]]:
    """The body of the DAG's `publish_hour` task: every topic of the run's logical hour; one asset event per topic
    (extra: `logical_hour`, `topic`, `messages`) and one `ops.extract_published` row per topic (messages, keys,
    Kafka offsets; through the `warehouse_db` connection, `shopstream.ops`).

    Takes the few context values it uses by name (Airflow passes them to the task function), so a test or a
    caller outside Airflow says exactly what the run is: its data interval / logical date (shopstream.hours),
    the DAG params, the outlet events to fill and the run id recorded in ops."""
    from shopstream import config
    from shopstream.assets import KAFKA_TOPIC_ASSETS

    config.task_preflight([DUMMYJSON_CONN_ID, KAFKA_CONN_ID, WAREHOUSE_CONN_ID], topics=True)
    hour = logical_hour({"data_interval_start": data_interval_start, "logical_date": logical_date})
    settings = settings_from_params(params)
    names = {base: topic_name(base) for base in base_topics}
    log.info("publishing %s for logical hour %s (%s)", names, hour_iso(hour), settings)
    client = dummyjson_client()
    try:
        results = extract_hour(hour, client, kafka_config(KAFKA_CONN_ID), settings=settings,
                               topics=names)
    finally:
        close = getattr(client, "close", None)
        if callable(close):
            close()
    for base, counts in results.items():
        if outlet_events is not None:
            outlet_events[KAFKA_TOPIC_ASSETS[base]].extra = {
                "logical_hour": counts["logical_hour"],
                "topic": counts["topic"],
                "messages": counts["published"],
            }
        log.info("%s: logical hour %s, published %d to %r, %.0f msg/s", base, counts["logical_hour"],
                 counts["published"], counts["topic"], counts["publish_rate"])
    # What was published, for the reconciliation and the Pipeline health dashboard (a retry overwrites it).
    ops.record_extract(WAREHOUSE_CONN_ID, results, run_id)
    return results


def run_extract_task(base_topic: str, **run: Any) -> dict[str, Any]:
    """One topic of the run's hour (run_extract_hour_task restricted to `base_topic`, same keyword arguments);
    its counts."""
    check_base_topic(base_topic)
    return run_extract_hour_task(**run, base_topics=(base_topic,))[base_topic]
