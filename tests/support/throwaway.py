"""Throwaway Kafka topics and PostgreSQL databases: what a test or a benchmark creates fresh (unique names, so runs
never see each other's data) and deletes when it is done. The one place that creates and deletes them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from shopstream.topics import TOPICS


def create_topics(admin: Any, names: Iterable[str], partitions: int = 3) -> None:
    """Create the topics `names` (replication factor 1) through the confluent-kafka AdminClient `admin`; returns
    when the broker has created each (raises its error, e.g. when a topic exists, after at most 30 s each)."""
    from confluent_kafka.admin import NewTopic

    futures = admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names])
    for f in futures.values():
        f.result(30)


def delete_topics(admin: Any, names: Iterable[str]) -> None:
    """Delete throwaway topics, best effort: a topic already gone or a broker that does not answer within 30 s is
    not an error (cleanup must not hide what the test found)."""
    names = list(names)
    if not names:
        return
    for f in admin.delete_topics(names).values():
        try:
            f.result(30)
        except Exception:  # noqa: BLE001 - best-effort cleanup of throwaway topics
            pass


def create_database(admin_dsn: str, owner: str, prefix: str) -> str:
    """A new, empty database `<prefix>_<random>` owned by `owner`, created over the superuser's `admin_dsn`;
    returns its name."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
    return name


def drop_database(admin_dsn: str, name: str) -> None:
    """Drop the database `name`, its open sessions included (nothing when it is gone already)."""
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_warehouse_and_topics(admin_dsn: str, owner: str, kafka_bootstrap: str, db_prefix: str, topic_tag: str,
                                partitions: int = 3) -> tuple[str, dict[str, str], Any]:
    """A fresh warehouse database `<db_prefix>_<random>` owned by `owner` (created over the superuser's
    `admin_dsn`) and fresh topics `<base>-<topic_tag>-<random>`; returns (database, {base: topic}, the Kafka
    AdminClient). drop_warehouse_and_topics removes both."""
    from confluent_kafka.admin import AdminClient

    db = create_database(admin_dsn, owner, db_prefix)
    suffix = uuid.uuid4().hex[:8]
    topics = {b: f"{b}-{topic_tag}-{suffix}" for b in TOPICS}
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    create_topics(admin, topics.values(), partitions)
    return db, topics, admin


def drop_warehouse_and_topics(admin_dsn: str, db: str, admin: Any, topics: Mapping[str, str]) -> None:
    """The database and topics of create_warehouse_and_topics (the topics also when dropping the database
    failed)."""
    try:
        drop_database(admin_dsn, db)
    finally:
        delete_topics(admin, topics.values())
