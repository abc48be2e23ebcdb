"""PII never leaves the extractor: one hour through extract -> Kafka -> bronze -> dbt on the real services, then
every message of the hour's Kafka topics and every column of every table and view in bronze, staging, silver and
gold is searched for the source's secrets: each user's password, SSN, card number and IBAN (plus the other
values shopstream.extract.pii drops: EIN, card expiry, IP, MAC address, crypto wallet - where they are long
enough not to occur by chance).

Source: DummyJSON's snapshot users.json (SHOPSTREAM_DUMMYJSON_DATA) served by the project's DummyJSON-compatible
server. The warehouse is set up with least privilege (the loader writes bronze through AIRFLOW_CONN_BRONZE_DB, dbt
builds as the dbt role), so this is also the full pipeline under the restricted roles.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from shopstream.topics import TOPICS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BASES = TOPICS
HOUR = datetime(2026, 11, 2, 10, tzinfo=UTC)
SCANNED_SCHEMAS = ("bronze", "staging", "silver", "gold")
# Values of the drop list too short or too generic to search for without false hits (e.g. an EIN "977-175" is a
# piece of many phone numbers, a card expiry "05/28" of many texts). The four the policy is about are all checked.
ALWAYS = ("password", "ssn", "bank.cardNumber", "bank.iban")
MIN_LEN = 10


def secret_values(users: list[dict]) -> dict[str, str]:
    """{secret: 'user <id> <field>'} for every dropped field's value."""
    from shopstream.extract.pii import DROPPED_FIELDS

    out: dict[str, str] = {}
    for user in users:
        for path in DROPPED_FIELDS:
            node = user
            for part in path.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, str) and node and (path in ALWAYS or len(node) >= MIN_LEN):
                out[node] = f"user {user.get('id')} {path}"
    return out


def find(text: str, secrets: dict[str, str]) -> list[str]:
    return [f"{where} ({value!r})" for value, where in secrets.items() if value in text]


def kafka_texts(bootstrap: str, topics: list[str]) -> list[tuple[str, str]]:
    """(topic, key + value + headers as text) of every message of `topics`, up to their high watermarks."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "pii-scan", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    out: list[tuple[str, str]] = []
    try:
        meta = consumer.list_topics(timeout=30)
        ends: dict[tuple[str, int], int] = {}
        assignment = []
        for topic in topics:
            for p in meta.topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
                if high > low:
                    ends[(topic, p)] = high
                    assignment.append(TopicPartition(topic, p, low))
        consumer.assign(assignment)
        pending = dict(ends)
        while pending:
            for msg in consumer.consume(1000, timeout=5):
                if msg.error():
                    raise RuntimeError(msg.error())
                parts = [msg.key() or b"", msg.value() or b""]
                parts += [v or b"" for _, v in (msg.headers() or [])]
                out.append((msg.topic(), b"\n".join(parts).decode("utf-8", "replace")))
                if msg.offset() + 1 >= pending.get((msg.topic(), msg.partition()), -1):
                    pending.pop((msg.topic(), msg.partition()), None)
    finally:
        consumer.close()
    return out


def warehouse_texts(conn: psycopg.Connection) -> dict[str, list[str]]:
    """{schema.relation: every value of every column, as text} for the scanned schemas (tables and views)."""
    cols = conn.execute(
        "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ANY(%s) ORDER BY table_schema, table_name, ordinal_position",
        [list(SCANNED_SCHEMAS)]).fetchall()
    relations: dict[str, list[str]] = {}
    for schema, table, column, data_type in cols:
        expr = f'encode("{column}", \'escape\')' if data_type == "bytea" else f'"{column}"::text'
        relations.setdefault(f'"{schema}"."{table}"', []).append(expr)
    out = {}
    for relation, exprs in relations.items():
        rows = conn.execute(f"SELECT {', '.join(exprs)} FROM {relation}").fetchall()
        out[relation] = ["\x1f".join(v for v in row if v is not None) for row in rows]
    return out


@pytest.mark.parametrize("fresh_database", ["least_privilege"], indirect=True)
def test_no_secret_of_the_source_reaches_kafka_or_the_warehouse(fresh_database, kafka_bootstrap, unique_topics,
                                                                 monkeypatch, tmp_path):
    from shopstream.bronze import airflow_entry
    from shopstream.dbt.runner import run_dbt
    from shopstream.dummyjson_stub.catalog import snapshot_dir
    from shopstream.dummyjson_stub.server import DummyJSONServer, resolve_catalog
    from shopstream.extract import tasks

    data = snapshot_dir()
    users = json.loads((Path(data) / "users.json").read_text())
    users = users["users"] if isinstance(users, dict) else users
    secrets = secret_values(users)
    assert len(secrets) >= 4 * len(users) >= 4 * 200, "the snapshot lost its secrets: nothing to test"

    server = DummyJSONServer(resolve_catalog(data), port=0, rate_limit=None)
    url = server.start()
    try:
        host, port = url.split("://", 1)[1].rsplit(":", 1)
        names = unique_topics(*BASES)
        monkeypatch.setenv("AIRFLOW_CONN_DUMMYJSON_API", json.dumps(
            {"conn_type": "http", "host": host, "port": int(port), "schema": "http"}))
        monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", json.dumps(
            {"conn_type": "kafka", "extra": {"bootstrap.servers": kafka_bootstrap}}))
        for base, name in names.items():
            monkeypatch.setenv(f"SHOPSTREAM_TOPIC_{base.upper()}", name)

        # extract: the DAG's task body, through the Airflow connections
        context = {"data_interval_start": HOUR, "logical_date": HOUR, "params": {}}
        published = {base: tasks.run_extract_task(base, **context)["published"] for base in BASES}
        assert published["customers"] == len(users) and all(published.values()), published
    finally:
        server.stop()

    # bronze: the DAG's task bodies, as the loader role
    airflow_entry.apply_ddl()
    for group in airflow_entry.plan(None, 2, "pii-scan"):
        airflow_entry.load(group, "pii-scan", max_seconds=120)

    # dbt: build everything as the dbt role
    run = run_dbt(["build"], fresh_database.roles["dbt"], target_path=tmp_path / "dbt")
    assert run.success

    leaks: list[str] = []
    messages = kafka_texts(kafka_bootstrap, list(names.values()))
    assert len(messages) == sum(published.values())
    for topic, text in messages:
        leaks += [f"kafka {topic}: {hit}" for hit in find(text, secrets)]

    with psycopg.connect(**{k: fresh_database[k] for k in ("host", "port", "user", "password", "dbname")}) as conn:
        relations = warehouse_texts(conn)
    for relation, rows in relations.items():
        for row in rows:
            leaks += [f"{relation}: {hit}" for hit in find(row, secrets)]

    # The scan saw the whole pipeline: every layer has the hour's customers, and it finds a kept value.
    for table in ('"bronze"."raw_events"', '"silver"."customers"', '"gold"."dim_customers"'):
        assert relations.get(table), f"{table} is empty or missing: the scan would prove nothing"
    email = users[0]["email"]
    assert any(email in row for row in relations['"gold"."dim_customers"'])
    assert any(email in text for _, text in messages)
    assert set(s.split(".")[0] for s in relations) >= {f'"{s}"' for s in SCANNED_SCHEMAS}
    assert not leaks, f"{len(leaks)} secret values found:\n" + "\n".join(leaks[:50])
