"""Airflow Assets that chain the stage DAGs: extract -> bronze -> dbt.

Name-only Assets (the URI defaults to the name): they identify our data, not a host, so the same
names hold on the native stack and in docker-compose.
"""

from __future__ import annotations

from airflow.sdk import Asset

from shopstream.topics import TOPICS

KAFKA_TOPIC_ASSETS: dict[str, Asset] = {topic: Asset(f"shopstream.kafka.{topic}") for topic in TOPICS}
BRONZE_RAW_EVENTS = Asset("shopstream.bronze.raw_events")
GOLD = Asset("shopstream.gold")
# Emitted by shopstream_dbt's reconcile task; its extra chains the reconciliation windows (shopstream.reconcile).
RECONCILED = Asset("shopstream.reconciled")
