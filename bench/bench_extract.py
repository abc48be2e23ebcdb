"""Extract benchmark: build + publish one logical hour to the project's Kafka broker.

Two catalogues: DummyJSON's snapshot (208 users, 194 products, 208 carts; generated ones of the same size
when the snapshot folder is absent) and a generated one 100x larger (quick mode: 10x). For each, all four
topics of one hour go to fresh throwaway topics through `shopstream.extract.publisher.publish` (idempotent,
acks=all, every delivery checked). Figures: messages per topic, build time, publish rate (msgs/s) and
MB/s of values. The snapshot case also fetches through the local DummyJSON server when it is available,
reporting requests per extraction.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (str(ROOT), str(ROOT / "plugins")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from tests.support.throwaway import create_topics, delete_topics  # noqa: E402 - needs ROOT on sys.path

# A past hour: Kafka 4 brokers reject CreateTimes more than log.message.timestamp.after.max.ms (default 1 h)
# in the future with INVALID_RECORD.
HOUR = datetime(2025, 6, 1, 13, tzinfo=UTC)


def _bootstrap() -> str:
    out = subprocess.run(
        ["bash", "-c", f"source {ROOT / 'scripts' / 'common.sh'} >/dev/null && "
                       f"{ROOT / 'scripts' / 'kafka.sh'} start >&2 && echo $KAFKA_BOOTSTRAP"],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def _publish_hour(catalog, bootstrap: str, label: str) -> dict:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient
    from shopstream.extract.messages import TOPICS, Snapshot, build_messages
    from shopstream.extract.publisher import producer_settings, publish

    admin = AdminClient({"bootstrap.servers": bootstrap})
    suffix = uuid.uuid4().hex[:8]
    names = {t: f"bench-{t}-{suffix}" for t in TOPICS}
    create_topics(admin, names.values())
    try:
        snap = Snapshot(users=catalog.users, products=catalog.products, carts=catalog.carts)
        started = time.perf_counter()
        messages = [m for t in TOPICS for m in build_messages(t, snap, HOUR, topic=names[t])]
        build_s = time.perf_counter() - started
        per_topic = {t: 0 for t in TOPICS}
        for m in messages:
            per_topic[m.topic.split("-")[1]] += 1
        value_bytes = sum(len(m.value) for m in messages)
        # Producer start-up and metadata of the just-created topics, timed apart from the publish itself
        # (in production the topics exist; a fresh topic's leader takes a few hundred ms to be known).
        started = time.perf_counter()
        producer = Producer(producer_settings({"bootstrap.servers": bootstrap}))
        deadline = time.monotonic() + 30
        while not all(_has_leaders(producer, n) for n in names.values()):
            assert time.monotonic() < deadline, "topic leaders not known after 30 s"
            time.sleep(0.05)
        startup_s = time.perf_counter() - started
        result = publish(messages, {"bootstrap.servers": bootstrap}, producer=producer)
        assert result.published == len(messages)
        return {
            "name": f"extract_publish_{label}",
            "figures": {
                **{f"msgs_{t}": n for t, n in per_topic.items()},
                "messages": len(messages),
                "value_mb": round(value_bytes / 1e6, 2),
                "build_s": round(build_s, 3),
                "producer_startup_s": round(startup_s, 3),
                "publish_s": round(result.seconds, 3),
                "publish_msgs_per_s": round(result.rate, 1),
                "publish_mb_per_s": round(value_bytes / 1e6 / result.seconds, 2),
                "build_and_publish_msgs_per_s": round(len(messages) / (build_s + result.seconds), 1),
            },
            "notes": f"users={len(catalog.users)} products={len(catalog.products)} carts={len(catalog.carts)}; "
                     "3 partitions, uncompressed, linger 20 ms, idempotent acks=all",
        }
    finally:
        delete_topics(admin, names.values())


def _has_leaders(producer, topic: str) -> bool:
    md = producer.list_topics(topic, timeout=5).topics.get(topic)
    return bool(md and md.error is None and md.partitions and all(p.leader >= 0 for p in md.partitions.values()))


def run(quick: bool) -> list[dict]:
    from shopstream.dummyjson_stub.catalog import generate_catalog, has_snapshot, load_snapshot, snapshot_dir

    bootstrap = _bootstrap()
    folder = snapshot_dir(ROOT)
    base = load_snapshot(folder) if has_snapshot(folder) else generate_catalog()
    rows = [_publish_hour(base, bootstrap, "snapshot_hour")]
    factor = 10 if quick else 100
    big = generate_catalog(users=208 * factor, products=194 * factor, carts=208 * factor, seed=11)
    rows.append(_publish_hour(big, bootstrap, f"generated_{factor}x_hour"))
    return rows


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=os.environ.get("BENCH_QUICK") == "1"), indent=2))
