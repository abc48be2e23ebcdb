"""PostgreSQL over TLS: a private cluster started by the project's own `scripts/postgres.sh start` with
SHOPSTREAM_PG_SSL=on (self-signed certificate made with openssl at setup), on a private port and folder - the
shared cluster is never touched - and the pipeline's connection code connecting to it with sslmode from the
connection's extra: the bronze loader's conninfo (psycopg 3) and the dbt profile Cosmos builds (psycopg2, as
dbt-postgres connects).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.support.private_services import PrivateKafka, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tls_cluster():
    """A private PostgreSQL started by scripts/postgres.sh with TLS on; yields (env, root)."""
    root = Path("/var/tmp") / f"shopstream-tls-{uuid.uuid4().hex[:10]}"
    root.mkdir(mode=0o755)
    port = free_port()
    base = {"conn_type": "postgres", "host": "127.0.0.1", "port": port, "schema": "tlswh"}
    env = {**os.environ, "SHOPSTREAM_PG_ROOT": str(root), "SHOPSTREAM_PG_SSL": "on",
           "AIRFLOW_CONN_WAREHOUSE_DB": json.dumps({**base, "login": os.environ["PGUSER"],
                                                   "password": os.environ["PGPASSWORD"]}),
           "AIRFLOW_CONN_BRONZE_DB": json.dumps({**base, "login": os.environ["BRONZE_PGUSER"],
                                                "password": os.environ["BRONZE_PGPASSWORD"]}),
           "AIRFLOW_CONN_ANALYST_DB": json.dumps({**base, "login": os.environ["ANALYST_PGUSER"],
                                                 "password": os.environ["ANALYST_PGPASSWORD"]})}
    script = str(ROOT / "scripts" / "postgres.sh")
    try:
        result = subprocess.run([script, "start"], env=env, capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "TLS on" in result.stderr
        yield env, root, port
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, text=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def conn_json(port: int, login_var: str, password_var: str, extra: dict) -> str:
    return json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": port, "schema": "tlswh",
                       "login": os.environ[login_var], "password": os.environ[password_var], "extra": extra})


def test_setup_made_a_self_signed_certificate(tls_cluster):
    _, root, _ = tls_cluster
    crt, key = root / "tls" / "server.crt", root / "tls" / "server.key"
    assert crt.is_file() and key.is_file()
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    text = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-text"], capture_output=True,
                          text=True, check=True).stdout
    assert "IP Address:127.0.0.1" in text and "DNS:localhost" in text


def test_loader_connects_with_sslmode_require_and_verify_full(tls_cluster, monkeypatch):
    from shopstream import connections
    from shopstream.bronze import airflow_entry, schema

    _, root, port = tls_cluster
    # dbt's connection on the same database (the bronze tasks check that the loader writes where dbt reads)
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DB", conn_json(port, "PGUSER", "PGPASSWORD", {"sslmode": "require"}))
    for extra in ({"sslmode": "require"},
                  {"sslmode": "verify-full", "sslrootcert": str(root / "tls" / "server.crt")}):
        monkeypatch.setenv("AIRFLOW_CONN_BRONZE_DB", conn_json(port, "BRONZE_PGUSER", "BRONZE_PGPASSWORD", extra))
        info = connections.postgres_conninfo(connections.BRONZE_DB)
        with psycopg.connect(info) as conn:
            ssl, version = conn.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
            assert ssl is True and version.startswith("TLS"), extra
            assert conn.execute("SELECT current_user").fetchone()[0] == os.environ["BRONZE_PGUSER"]
        # The least-privilege setup ran on the private cluster too: the loader's DDL check passes over TLS.
        assert airflow_entry.apply_ddl() == sorted(schema.LOADER_NEEDS)


def test_verify_full_rejects_an_unknown_ca(tls_cluster, monkeypatch, tmp_path):
    from shopstream import connections

    _, _, port = tls_cluster
    other = tmp_path / "other-ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
                    "-keyout", str(tmp_path / "other.key"), "-out", str(other)], capture_output=True, check=True)
    monkeypatch.setenv("AIRFLOW_CONN_BRONZE_DB", conn_json(port, "BRONZE_PGUSER", "BRONZE_PGPASSWORD",
                                                           {"sslmode": "verify-full", "sslrootcert": str(other)}))
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(connections.postgres_conninfo(connections.BRONZE_DB)).close()


def test_dbt_profile_connects_over_tls(tls_cluster, monkeypatch):
    """The profile Cosmos builds from warehouse_db (sslmode, sslrootcert from the extra), used the way
    dbt-postgres uses it (psycopg2)."""
    import airflow  # noqa: F401 - before cosmos
    import psycopg2
    from shopstream.dbt.cosmos_config import profile_config

    _, root, port = tls_cluster
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DB", conn_json(
        port, "PGUSER", "PGPASSWORD", {"sslmode": "verify-full", "sslrootcert": str(root / "tls" / "server.crt")}))
    profile = profile_config().profile_mapping.profile
    conn = psycopg2.connect(host=profile["host"], port=profile["port"], user=profile["user"],
                            password=os.environ["PGPASSWORD"], dbname=profile["dbname"], sslmode=profile["sslmode"],
                            sslrootcert=profile["sslrootcert"])
    try:
        cur = conn.cursor()
        cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert cur.fetchone()[0] is True
        cur.execute("SELECT has_schema_privilege('gold', 'CREATE'), has_table_privilege('bronze.raw_events', 'INSERT')")
        assert cur.fetchone() == (True, False)  # dbt owns gold, cannot write bronze
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------- Kafka SASL
@pytest.fixture(scope="module")
def sasl_broker():
    """A private single-node broker (tests/support/private_services.py) with a second listener, SASL_PLAINTEXT +
    PLAIN, and one user whose password is generated here. The PLAINTEXT listener is only for the helper's start-up
    check."""
    import secrets as pysecrets

    password = pysecrets.token_urlsafe(16)
    jaas = f'org.apache.kafka.common.security.plain.PlainLoginModule required user_shop="{password}";'
    k = PrivateKafka.create(partitions=1, listeners={"SASL_PLAINTEXT": None}, prefix="shopstream-sasl-",
                            properties={"sasl.enabled.mechanisms": "PLAIN",
                                        "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
                                        "offsets.topic.num.partitions": "1"})
    try:
        k.create_topics(["sasl-check"], partitions=1)
        yield f"127.0.0.1:{k.listener_ports['SASL_PLAINTEXT']}", password
    finally:
        k.destroy()


def kafka_conn(bootstrap: str, password: str) -> str:
    return json.dumps({"conn_type": "kafka", "extra": {
        "bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
        "sasl.username": "shop", "sasl.password": password}})


def test_pipeline_clients_authenticate_with_sasl_from_the_connection(sasl_broker, monkeypatch):
    """The SASL settings of AIRFLOW_CONN_KAFKA_DEFAULT's extra reach the extractor's producer and the bronze
    loader's consumer config (through the Kafka provider's hooks) and authenticate against a real broker."""
    from confluent_kafka import Consumer, TopicPartition
    from shopstream import config
    from shopstream.connections import kafka_config
    from shopstream.extract.messages import KafkaMessage
    from shopstream.extract.publisher import publish

    bootstrap, user_pw = sasl_broker
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", kafka_conn(bootstrap, user_pw))
    config.load_connection("kafka_default")  # the tasks' preflight accepts it
    now_ms = int(__import__("time").time() * 1000)
    messages = [KafkaMessage(topic="sasl-check", key=f"k{i}".encode(), value=b'{"i": %d}' % i, timestamp_ms=now_ms,
                             headers=()) for i in range(5)]
    assert publish(messages, kafka_config(), flush_timeout=60).published == 5
    consumer = Consumer({**kafka_config(), "group.id": "sasl-check", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition("sasl-check", 0, 0)])
        got = []
        for _ in range(20):
            got += [m for m in consumer.consume(10, timeout=2) if not m.error()]
            if len(got) >= 5:
                break
    finally:
        consumer.close()
    assert sorted(m.key() for m in got) == [f"k{i}".encode() for i in range(5)]


def test_a_wrong_sasl_password_is_refused(sasl_broker, monkeypatch):
    from confluent_kafka import KafkaError, Producer
    from shopstream.connections import kafka_config

    bootstrap, _ = sasl_broker
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", kafka_conn(bootstrap, "not-the-password"))
    errors = []
    producer = Producer({**kafka_config(), "error_cb": errors.append, "log_level": 0,
                         "message.timeout.ms": 5000})
    delivered = []
    producer.produce("sasl-check", b"never", on_delivery=lambda err, msg: delivered.append(err))
    producer.flush(15)
    assert len(delivered) == 1 and delivered[0] is not None  # the message was not delivered
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
