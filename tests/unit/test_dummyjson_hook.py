"""DummyJSONHook: Airflow connection -> configured DummyJSONClient."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from shopstream.dummyjson.hook import DummyJSONHook, base_url_from_connection, client_kwargs_from_extra
from shopstream.dummyjson_stub.catalog import generate_catalog
from shopstream.dummyjson_stub.server import DummyJSONServer


def conn(**kw):
    return SimpleNamespace(conn_id="dummyjson_api", host=kw.get("host"), port=kw.get("port"),
                           schema=kw.get("schema"))


@pytest.mark.parametrize(
    ("kw", "url"),
    [
        ({"host": "127.0.0.1", "port": 58080, "schema": "http"}, "http://127.0.0.1:58080"),
        ({"host": "dummyjson.com", "schema": "https"}, "https://dummyjson.com"),
        ({"host": "dummyjson.com"}, "http://dummyjson.com"),
        ({"host": "https://dummyjson.com/", "schema": "http"}, "https://dummyjson.com"),
        ({"host": "https://proxy.local/dj/", "port": 8443}, "https://proxy.local:8443/dj"),
        ({"host": "http://h:9000", "port": 1234}, "http://h:9000"),
    ],
)
def test_base_url_from_connection(kw, url):
    assert base_url_from_connection(conn(**kw)) == url


def test_base_url_needs_a_host():
    with pytest.raises(ValueError, match="no host"):
        base_url_from_connection(conn(host=""))


def test_extra_overrides_client_settings():
    kwargs = client_kwargs_from_extra({"page_size": "50", "timeout": "7", "read_timeout": 12,
                                       "max_attempts": 3, "rate_limit": 0, "verify": "false",
                                       "headers": {"X-Test": 1}, "unknown": "ignored"})
    assert kwargs == {"page_size": 50, "max_attempts": 3, "rate_limit": None, "timeout": (7.0, 12.0),
                      "verify": False, "headers": {"X-Test": "1"}}


def test_hook_defaults():
    assert DummyJSONHook.conn_name_attr == "http_conn_id"
    assert DummyJSONHook.default_conn_name == "dummyjson_api" and DummyJSONHook.conn_type == "http"


def test_hook_builds_a_working_client_from_the_env_connection(monkeypatch):
    catalog = generate_catalog(users=45, products=12, carts=30, seed=2)
    with DummyJSONServer(catalog, rate_limit=None) as url:
        port = int(url.rsplit(":", 1)[1])
        monkeypatch.setenv("AIRFLOW_CONN_DUMMYJSON_TEST", json.dumps({
            "conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http",
            "extra": {"page_size": 10, "max_attempts": 2}}))
        hook = DummyJSONHook(http_conn_id="dummyjson_test", time_budget=60)
        client = hook.get_conn()
        assert client.base_url == url and client.page_size == 10 and client.max_attempts == 2
        assert client.time_budget == 60 and hook.get_conn() is client
        assert hook.fetch_all("users") == catalog.users
        assert client.stats["requests"] == 5  # 45 users in pages of 10
        ok, message = hook.test_connection()
        assert ok and "45 users" in message
        hook.close()
