"""shopstream.config: a missing or malformed variable or connection fails fast, naming it and saying how to fix it;
the tasks and scripts/conn_env.py use it; Kafka SASL/TLS and PostgreSQL TLS settings pass through to the clients."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from shopstream import config
from shopstream.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]

PG = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "schema": "wh", "login": "u", "password": "p"}  # test-credential
KAFKA = {"conn_type": "kafka", "extra": {"bootstrap.servers": "127.0.0.1:9092"}}
HTTP = {"conn_type": "http", "host": "127.0.0.1", "port": 58080, "schema": "http"}


def env(**conns) -> dict[str, str]:
    out = {"AIRFLOW_CONN_WAREHOUSE_DB": json.dumps(PG), "AIRFLOW_CONN_BRONZE_DB": json.dumps({**PG, "login": "l"}),
           "AIRFLOW_CONN_ANALYST_DB": json.dumps({**PG, "login": "a"}), "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps(KAFKA),
           "AIRFLOW_CONN_DUMMYJSON_API": json.dumps(HTTP)}
    for key, value in conns.items():
        var = config.env_var(key)
        if value is None:
            out.pop(var, None)
        else:
            out[var] = value if isinstance(value, str) else json.dumps(value)
    return out


def error(fn, *args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_valid_connections_pass():
    e = env()
    for conn_id in config.CONNECTIONS:
        assert config.load_connection(conn_id, e)["conn_type"] == config.CONNECTIONS[conn_id]


def test_topics_match_the_contract():
    from shopstream.assets import TOPICS

    assert config.TOPICS == TOPICS


def test_missing_connection_names_the_variable_and_the_fix():
    msg = error(config.load_connection, "bronze_db", env(bronze_db=None))
    assert "AIRFLOW_CONN_BRONZE_DB" in msg and "'bronze_db'" in msg and "not set" in msg
    assert ".env.example" in msg
    assert "not set" in error(config.load_connection, "bronze_db", env(bronze_db="  "))


def test_malformed_json():
    msg = error(config.load_connection, "kafka_default", env(kafka_default='{"conn_type": "kafka",'))
    assert "AIRFLOW_CONN_KAFKA_DEFAULT is not valid JSON" in msg and "Fix it in .env" in msg
    assert "must be a JSON object" in error(config.load_connection, "kafka_default", env(kafka_default="[1, 2]"))


@pytest.mark.parametrize("port", ["abc", 5432.5, True, "", "65536", -1, [1]])
def test_wrong_port_type_or_range(port):
    conn = {**PG, "port": port}
    if port == "":
        assert config.load_connection("warehouse_db", env(warehouse_db=conn))
        return
    msg = error(config.load_connection, "warehouse_db", env(warehouse_db=conn))
    assert "AIRFLOW_CONN_WAREHOUSE_DB" in msg and '"port"' in msg


def test_port_as_a_numeric_string_is_accepted():
    assert config.load_connection("warehouse_db", env(warehouse_db={**PG, "port": "5432"}))


@pytest.mark.parametrize("field", ["host", "schema", "login"])
def test_postgres_needs_host_database_and_role(field):
    conn = {k: v for k, v in PG.items() if k != field}
    assert f'"{field}" is missing' in error(config.load_connection, "bronze_db", env(bronze_db=conn))


def test_wrong_conn_type():
    msg = error(config.load_connection, "bronze_db", env(bronze_db={**PG, "conn_type": "mysql"}))
    assert '"conn_type" must be "postgres"' in msg


def test_postgres_tls_settings():
    ok = {**PG, "extra": {"sslmode": "verify-full", "sslrootcert": "/ca.crt"}}
    assert config.load_connection("warehouse_db", env(warehouse_db=ok))
    as_string = {**PG, "extra": json.dumps({"sslmode": "require"})}  # Airflow also allows extra as a JSON string
    assert config.load_connection("warehouse_db", env(warehouse_db=as_string))
    assert "sslmode" in error(config.load_connection, "warehouse_db",
                              env(warehouse_db={**PG, "extra": {"sslmode": "required"}}))
    assert '"extra" is a string that is not valid JSON' in error(
        config.load_connection, "warehouse_db", env(warehouse_db={**PG, "extra": "{nope"}))


def test_kafka_bootstrap_servers_are_checked():
    no_servers = {"conn_type": "kafka", "extra": {}}
    assert "bootstrap.servers" in error(config.load_connection, "kafka_default", env(kafka_default=no_servers))
    bad_port = {"conn_type": "kafka", "extra": {"bootstrap.servers": "a:1,b:x"}}
    assert "'b:x' has no valid port" in error(config.load_connection, "kafka_default", env(kafka_default=bad_port))


def test_kafka_sasl_tls_settings_are_validated():
    sasl = {"conn_type": "kafka", "extra": {
        "bootstrap.servers": "broker:9093", "security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "shop", "sasl.password": "pw", "ssl.ca.location": "/ca.crt"}}  # test-credential
    assert config.load_connection("kafka_default", env(kafka_default=sasl))
    missing_user = json.loads(json.dumps(sasl))
    del missing_user["extra"]["sasl.username"]
    assert '"sasl.username"' in error(config.load_connection, "kafka_default", env(kafka_default=missing_user))
    no_mechanism = json.loads(json.dumps(sasl))
    del no_mechanism["extra"]["sasl.mechanisms"]
    assert "sasl.mechanisms" in error(config.load_connection, "kafka_default", env(kafka_default=no_mechanism))
    bad_protocol = {"conn_type": "kafka", "extra": {"bootstrap.servers": "b:1", "security.protocol": "TLS"}}
    assert "security.protocol" in error(config.load_connection, "kafka_default", env(kafka_default=bad_protocol))


def test_http_connection():
    assert '"schema" must be "http" or "https"' in error(
        config.load_connection, "dummyjson_api", env(dummyjson_api={**HTTP, "schema": "ftp"}))


def test_unknown_topic_variable_and_bad_topic_names():
    assert config.topic_overrides({"SHOPSTREAM_TOPIC_ORDERS": "orders-x", "OTHER": "1"}) == {"orders": "orders-x"}
    msg = error(config.topic_overrides, {"SHOPSTREAM_TOPIC_ORDER": "orders-x"})
    assert "SHOPSTREAM_TOPIC_ORDER names no topic" in msg and "SHOPSTREAM_TOPIC_ORDERS" in msg
    assert "not a valid Kafka topic name" in error(config.topic_overrides, {"SHOPSTREAM_TOPIC_EVENTS": "a b"})
    assert config.topic_overrides({"SHOPSTREAM_TOPIC_EVENTS": ""}) == {}  # empty = the contract's name


def test_integer_and_choice_variables():
    assert config.int_variable("N", {"N": " 4 "}, minimum=1) == 4
    assert config.int_variable("N", {}, default=3) == 3
    assert "N='three' is not an integer" in error(config.int_variable, "N", {"N": "three"})
    assert "must be at least 1" in error(config.int_variable, "N", {"N": "0"}, minimum=1)
    assert config.choice_variable("SHOPSTREAM_PG_SSL", ("on", "off"), {}, default="off") == "off"
    assert "must be one of on, off" in error(config.choice_variable, "SHOPSTREAM_PG_SSL", ("on", "off"),
                                             {"SHOPSTREAM_PG_SSL": "yes"})


def test_same_database():
    config.same_database("warehouse_db", "bronze_db", env())
    msg = error(config.same_database, "warehouse_db", "bronze_db", env(bronze_db={**PG, "schema": "other"}))
    assert "AIRFLOW_CONN_WAREHOUSE_DB and AIRFLOW_CONN_BRONZE_DB must point at the same" in msg


def test_preflight_lists_every_problem_at_once():
    e = env(bronze_db=None, kafka_default="{bad")
    e["SHOPSTREAM_TOPIC_NOPE"] = "x"
    e["SHOPSTREAM_BRONZE_LOAD_TASKS"] = "many"
    msg = error(config.preflight, ["bronze_db", "kafka_default", "warehouse_db"], e, topics=True,
                ints={"SHOPSTREAM_BRONZE_LOAD_TASKS": 1})
    for needle in ("AIRFLOW_CONN_BRONZE_DB", "AIRFLOW_CONN_KAFKA_DEFAULT", "SHOPSTREAM_TOPIC_NOPE",
                   "SHOPSTREAM_BRONZE_LOAD_TASKS"):
        assert needle in msg
    assert "AIRFLOW_CONN_WAREHOUSE_DB" not in msg
    config.preflight(["bronze_db", "kafka_default"], env(), topics=True)


def test_task_preflight_fails_without_retries(monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.delenv("AIRFLOW_CONN_BRONZE_DB", raising=False)
    with pytest.raises(AirflowFailException, match="AIRFLOW_CONN_BRONZE_DB"):
        config.task_preflight(["bronze_db"])


# ------------------------------------------------------------------------------------------- call sites
def test_bronze_tasks_fail_fast_on_a_malformed_connection(monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException
    from shopstream.bronze import airflow_entry

    monkeypatch.setenv("AIRFLOW_CONN_BRONZE_DB", json.dumps({**PG, "port": "fifty"}))
    for call in (lambda: airflow_entry.apply_ddl(), lambda: airflow_entry.plan(None, 2, "g"),
                 lambda: airflow_entry.load(["t:0"], "g")):
        with pytest.raises(AirflowFailException, match=r'AIRFLOW_CONN_BRONZE_DB.*"port" must be an integer'):
            call()
    monkeypatch.setenv("AIRFLOW_CONN_BRONZE_DB", json.dumps(PG))
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DB", json.dumps({**PG, "host": "localhost"}))
    monkeypatch.setenv("SHOPSTREAM_TOPIC_CUSTOMER", "c")
    with pytest.raises(AirflowFailException, match="SHOPSTREAM_TOPIC_CUSTOMER names no topic"):
        airflow_entry.plan(None, 2, "g")
    monkeypatch.delenv("SHOPSTREAM_TOPIC_CUSTOMER")
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DB", json.dumps({**PG, "schema": "elsewhere"}))
    with pytest.raises(AirflowFailException, match="must point at the same PostgreSQL database"):
        airflow_entry.load(["t:0"], "g")


def test_extract_task_fails_fast_before_fetching(monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException
    from shopstream.extract import tasks

    monkeypatch.setattr(tasks, "dummyjson_client", lambda *a, **k: pytest.fail("fetched despite a bad config"))
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", json.dumps({"conn_type": "kafka", "extra": {}}))
    with pytest.raises(AirflowFailException, match="AIRFLOW_CONN_KAFKA_DEFAULT.*bootstrap.servers"):
        tasks.run_extract_task("orders", logical_date=None)


def test_dbt_profile_fails_fast_and_passes_tls_settings(monkeypatch):
    import airflow  # noqa: F401 - before cosmos (circular import otherwise)
    from airflow.sdk.exceptions import AirflowFailException
    from shopstream.dbt.cosmos_config import profile_config

    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DB", "{oops")
    with pytest.raises(AirflowFailException, match="AIRFLOW_CONN_WAREHOUSE_DB is not valid JSON"):
        profile_config().profile_mapping.profile  # noqa: B018 - what Cosmos reads when a dbt task starts
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DB", json.dumps(
        {**PG, "extra": {"sslmode": "verify-full", "sslrootcert": "/ca.crt", "sslcert": "/c.crt", "sslkey": "/c.key"}}))
    profile = profile_config().profile_mapping.profile
    assert (profile["sslmode"], profile["sslrootcert"], profile["sslcert"], profile["sslkey"]) == (
        "verify-full", "/ca.crt", "/c.crt", "/c.key")
    assert profile["dbname"] == "wh" and profile["user"] == "u"


def test_kafka_sasl_tls_extra_reaches_producer_and_consumer_unchanged(monkeypatch):
    from shopstream.connections import kafka_config

    extra = {"bootstrap.servers": "broker:9093", "security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512",
             "sasl.username": "shop", "sasl.password": "pw", "ssl.ca.location": "/etc/kafka/ca.crt",  # test-credential
             "ssl.endpoint.identification.algorithm": "https"}
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", json.dumps({"conn_type": "kafka", "extra": extra}))
    for cfg in (kafka_config(),):
        assert {k: cfg[k] for k in extra} == extra
    # librdkafka knows every name and value (it validates them when a client is created; the CA file must exist
    # for SSL, so the SASL part is created over SASL_PLAINTEXT here - no connection is made before a request).
    from confluent_kafka import Producer

    sasl = {k: v for k, v in extra.items() if not k.startswith("ssl.")}
    Producer({**sasl, "security.protocol": "SASL_PLAINTEXT"}).flush(0)


def test_postgres_tls_extra_reaches_the_loader_conninfo(monkeypatch):
    import psycopg
    from shopstream.connections import postgres_conninfo

    monkeypatch.setenv("AIRFLOW_CONN_BRONZE_DB", json.dumps(
        {**PG, "extra": {"sslmode": "verify-full", "sslrootcert": "/ca.crt", "sslcert": "/c.crt", "sslkey": "/c.key"}}))
    info = psycopg.conninfo.conninfo_to_dict(postgres_conninfo("bronze_db"))
    assert {k: info[k] for k in ("sslmode", "sslrootcert", "sslcert", "sslkey")} == {
        "sslmode": "verify-full", "sslrootcert": "/ca.crt", "sslcert": "/c.crt", "sslkey": "/c.key"}


# ------------------------------------------------------------------------------------------- conn_env.py
def run_conn_env(**overrides) -> subprocess.CompletedProcess:
    e = {"PATH": os.environ["PATH"], **env()}
    e.update({k: v for k, v in overrides.items() if v is not None})
    for k, v in overrides.items():
        if v is None:
            e.pop(k, None)
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "conn_env.py")], capture_output=True, text=True,
                          env=e)


def test_conn_env_exports_every_role():
    result = run_conn_env()
    assert result.returncode == 0, result.stderr
    assert "export BRONZE_PGUSER=l" in result.stdout and "export ANALYST_PGUSER=a" in result.stdout
    assert "export PGPORT=5432" in result.stdout and "export KAFKA_PORT=9092" in result.stdout


@pytest.mark.parametrize("overrides, needle", [
    ({"AIRFLOW_CONN_BRONZE_DB": None}, "AIRFLOW_CONN_BRONZE_DB (Airflow connection 'bronze_db') is not set"),
    ({"AIRFLOW_CONN_WAREHOUSE_DB": "{not json"}, "AIRFLOW_CONN_WAREHOUSE_DB is not valid JSON"),
    ({"AIRFLOW_CONN_ANALYST_DB": json.dumps({**PG, "port": "x"})}, '"port" must be an integer'),
    ({"SHOPSTREAM_TOPIC_ORDRS": "o"}, "SHOPSTREAM_TOPIC_ORDRS names no topic"),
    ({"SHOPSTREAM_PG_SSL": "true"}, "SHOPSTREAM_PG_SSL='true' must be one of on, off"),
])
def test_conn_env_fails_with_a_message_naming_the_variable(overrides, needle):
    result = run_conn_env(**overrides)
    assert result.returncode != 0
    assert needle in result.stderr and result.stdout == ""
