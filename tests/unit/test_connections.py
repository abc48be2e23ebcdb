"""shopstream.connections: one place builds every client's settings from the Airflow connections."""

from __future__ import annotations

import json
import secrets

import psycopg
import pytest
from shopstream import connections

TLS = {"sslmode": "verify-full", "sslrootcert": "/ca.crt", "sslcert": "/c.crt", "sslkey": "/c.key",
       "unrelated": "ignored"}


PASSWORD = secrets.token_urlsafe(12) + " with a space"  # generated: no credential literals in the repository


def _conn(**extra):
    return json.dumps({"conn_type": "postgres", "host": "db.example", "port": 5433, "schema": "shop",
                       "login": "u", "password": PASSWORD, **({"extra": extra} if extra else {})})


def test_conninfo_from_env_keeps_the_tls_settings_of_the_extra():
    info = psycopg.conninfo.conninfo_to_dict(
        connections.postgres_conninfo_from_env("warehouse_db", {"AIRFLOW_CONN_WAREHOUSE_DB": _conn(**TLS)}))
    assert info == {"host": "db.example", "port": "5433", "dbname": "shop", "user": "u", "password": PASSWORD,
                    "sslmode": "verify-full", "sslrootcert": "/ca.crt", "sslcert": "/c.crt", "sslkey": "/c.key"}


def test_sqlalchemy_url_quotes_credentials_keeps_tls_and_can_name_another_database():
    """Superset's URLs (include/superset): the same login, password and TLS settings as libpq's conninfo."""
    from urllib.parse import parse_qs, unquote, urlsplit

    env = {"AIRFLOW_CONN_WAREHOUSE_DB": _conn(**TLS)}
    url = urlsplit(connections.sqlalchemy_url_from_env("warehouse_db", environ=env))
    assert (url.scheme, url.hostname, url.port, url.path) == ("postgresql+psycopg2", "db.example", 5433, "/shop")
    assert (unquote(url.username), unquote(url.password)) == ("u", PASSWORD)
    assert parse_qs(url.query) == {"sslmode": ["verify-full"], "sslrootcert": ["/ca.crt"], "sslcert": ["/c.crt"],
                                   "sslkey": ["/c.key"]}
    other = urlsplit(connections.sqlalchemy_url_from_env("warehouse_db", "superset", environ=env))
    assert other.path == "/superset" and unquote(other.password) == PASSWORD


def test_conninfo_through_airflow_is_the_same(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_BRONZE_DB", _conn(**TLS))
    assert connections.postgres_conninfo("bronze_db") == connections.postgres_conninfo_from_env("bronze_db")


@pytest.mark.parametrize(("value", "says"), [(None, "is not set"), ("{not json", "JSON connection form")])
def test_a_missing_or_malformed_variable_says_what_to_do(value, says):
    env = {} if value is None else {"AIRFLOW_CONN_WAREHOUSE_DB": value}
    with pytest.raises(SystemExit, match=says):
        connections.postgres_conninfo_from_env("warehouse_db", env)


def test_kafka_config_is_the_connection_extra(monkeypatch):
    extra = {"bootstrap.servers": "b:9093", "security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN",
             "sasl.username": "u", "sasl.password": "s"}
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", json.dumps({"conn_type": "kafka", "extra": extra}))
    assert connections.kafka_config() == extra
