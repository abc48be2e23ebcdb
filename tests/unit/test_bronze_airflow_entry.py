"""What the shopstream_bronze DAG's tasks read when they run: load tasks and consumer group (param, then
environment), the topics, and the loader's connections (the DAG's structure is tested in tests/dags)."""

from __future__ import annotations


def test_load_tasks_and_group_come_from_the_param_then_the_environment(monkeypatch):
    from shopstream.bronze.airflow_entry import consumer_group, load_tasks

    monkeypatch.delenv("SHOPSTREAM_BRONZE_LOAD_TASKS", raising=False)
    monkeypatch.delenv("SHOPSTREAM_BRONZE_GROUP", raising=False)
    assert (load_tasks(None), consumer_group(None)) == (3, "shopstream-bronze")
    monkeypatch.setenv("SHOPSTREAM_BRONZE_LOAD_TASKS", "5")
    monkeypatch.setenv("SHOPSTREAM_BRONZE_GROUP", "g-env")
    assert (load_tasks(None), consumer_group(None)) == (5, "g-env")
    assert (load_tasks(2), consumer_group("g-param")) == (2, "g-param")


def test_default_topics_follow_the_extract_overrides(monkeypatch):
    from shopstream.bronze.airflow_entry import topics

    monkeypatch.delenv("SHOPSTREAM_TOPIC_ORDERS", raising=False)
    assert topics() == ["customers", "products", "orders", "events"]
    monkeypatch.setenv("SHOPSTREAM_TOPIC_ORDERS", "orders-test")
    assert topics() == ["customers", "products", "orders-test", "events"]
    assert topics(["x", "y"]) == ["x", "y"]


def test_connections_map_to_loader_arguments(monkeypatch):
    import json

    import psycopg
    from shopstream.connections import kafka_config, postgres_conninfo

    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DB", json.dumps({
        "conn_type": "postgres", "host": "db.example", "port": 6543, "schema": "wh", "login": "u",
        "password": "p w", "extra": {"sslmode": "require", "unrelated": "x"}}))  # test-credential
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", json.dumps({
        "conn_type": "kafka", "extra": {"bootstrap.servers": "k:9092", "security.protocol": "PLAINTEXT"}}))
    info = psycopg.conninfo.conninfo_to_dict(postgres_conninfo())
    assert info == {"host": "db.example", "port": "6543", "dbname": "wh", "user": "u", "password": "p w",  # test-credential
                    "sslmode": "require"}
    cfg = kafka_config()
    assert cfg["bootstrap.servers"] == "k:9092" and cfg["security.protocol"] == "PLAINTEXT"
