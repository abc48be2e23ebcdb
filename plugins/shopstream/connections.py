"""Every connection the pipeline uses, in one place: its id, and how each client's settings are built from it.

The connections themselves come from the environment (`AIRFLOW_CONN_<ID>`, .env; never literals):

| id | what | used by |
|---|---|---|
| `warehouse_db` | PostgreSQL, the dbt role (owns staging/silver/gold, reads bronze) | dbt (Cosmos profile), reconcile, summary |
| `bronze_db` | PostgreSQL, the loader role (appends to bronze only) | the bronze DAG |
| `analyst_db` | PostgreSQL, read-only on gold | analysts, BI |
| `kafka_default` | Kafka (`extra` = the confluent-kafka client config, SASL/TLS included) | extract (producer), bronze (consumer) |
| `dummyjson_api` | HTTP, the DummyJSON API | extract, reconcile (manual hours) |

- `postgres_conninfo(conn_id)`: the libpq conninfo of a PostgreSQL connection, TLS settings of its extra included
  (`sslmode`, `sslrootcert`, ...), read through Airflow (inside tasks). `postgres_conninfo_from_env(conn_id)`
  builds the same from the `AIRFLOW_CONN_<ID>` JSON without importing Airflow (command-line tools).
- `kafka_config(conn_id)`: the confluent-kafka config of the Kafka connection as the Kafka provider builds it
  (its builder resolves allow-listed callbacks and managed-auth tokens), for producers and consumers alike.
- `sqlalchemy_url_from_env(conn_id, database)`: the SQLAlchemy URL (driver psycopg2) of a PostgreSQL connection,
  TLS settings as query parameters, without importing Airflow or a driver (Superset, in its own venv).
- `http_base_url(conn)`: the base URL of an HTTP connection (the DummyJSON API), as the HTTP provider builds it;
  `dummyjson_url_from_env()` the same from `AIRFLOW_CONN_DUMMYJSON_API` without Airflow.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

WAREHOUSE_DB = "warehouse_db"
BRONZE_DB = "bronze_db"  # the loader's connection (least privilege: append to bronze only)
ANALYST_DB = "analyst_db"
KAFKA = "kafka_default"
DUMMYJSON_API = "dummyjson_api"

# libpq parameters a PostgreSQL connection's extra may carry (the rest of the extra is ignored).
LIBPQ_EXTRA = ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "connect_timeout", "options",
               "target_session_attrs", "application_name", "keepalives", "keepalives_idle")


def env_var(conn_id: str) -> str:
    """The environment variable that holds connection `conn_id` (Airflow's naming)."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def conninfo(host: str | None, port: int | str | None, dbname: str | None, user: str | None,
             password: str | None, extra: Mapping[str, Any] | None = None) -> str:
    """A libpq conninfo from a connection's fields (Airflow's `schema` is the database name) and its extra."""
    import psycopg

    params = {k: extra[k] for k in LIBPQ_EXTRA if extra and k in extra}
    return psycopg.conninfo.make_conninfo(host=host or None, port=port or None, dbname=dbname or None,
                                          user=user or None, password=password or None, **params)


def postgres_conninfo(conn_id: str = WAREHOUSE_DB) -> str:
    """libpq conninfo of the Airflow PostgreSQL connection `conn_id` (read through Airflow: inside tasks)."""
    from airflow.sdk import BaseHook

    c = BaseHook.get_connection(conn_id)
    return conninfo(c.host, c.port, c.schema, c.login, c.password, c.extra_dejson or {})


def connection_from_env(conn_id: str, environ: Mapping[str, str] | None = None) -> SimpleNamespace:
    """Connection `conn_id` from `AIRFLOW_CONN_<ID>` (Airflow's JSON form) without importing Airflow: an object
    with conn_id, host, port, schema, login, password, extra (a dict); SystemExit saying what to do when the
    variable is missing or not JSON."""
    env = os.environ if environ is None else environ
    var = env_var(conn_id)
    raw = env.get(var)
    if not raw:
        raise SystemExit(f"error: {var} is not set; run through `make` or `source scripts/common.sh` (see .env)")
    try:
        c = json.loads(raw)
        extra = c.get("extra") or {}
        extra = json.loads(extra) if isinstance(extra, str) else extra
    except (ValueError, AttributeError) as exc:
        raise SystemExit(f"error: {var} is not Airflow's JSON connection form ({exc}); see .env.example") from exc
    return SimpleNamespace(conn_id=conn_id, host=c.get("host"), port=c.get("port"), schema=c.get("schema"),
                           login=c.get("login"), password=c.get("password"), extra=extra)


def postgres_conninfo_from_env(conn_id: str = WAREHOUSE_DB, environ: Mapping[str, str] | None = None) -> str:
    """The same as postgres_conninfo() from `AIRFLOW_CONN_<ID>`, without importing Airflow (command-line tools)."""
    c = connection_from_env(conn_id, environ)
    return conninfo(c.host, c.port, c.schema, c.login, c.password, c.extra)


def sqlalchemy_url_from_env(conn_id: str, database: str | None = None,
                            environ: Mapping[str, str] | None = None) -> str:
    """``postgresql+psycopg2://login:password@host:port/db?sslmode=...`` of the PostgreSQL connection `conn_id`
    (credentials URL-quoted; `database` replaces the connection's own database, e.g. a metadata database on the
    same server). Stdlib only: Superset's venv has psycopg2 and SQLAlchemy 1.4, not Airflow or psycopg 3."""
    c = connection_from_env(conn_id, environ)
    user = quote(c.login or "", safe="")
    auth = f"{user}:{quote(c.password, safe='')}@" if c.password else (f"{user}@" if user else "")
    host = c.host or "127.0.0.1"
    port = f":{int(c.port)}" if c.port else ""
    params = {k: str(c.extra[k]) for k in LIBPQ_EXTRA if k in c.extra}
    query = f"?{urlencode(params)}" if params else ""
    return f"postgresql+psycopg2://{auth}{host}{port}/{quote(database or c.schema or '', safe='')}{query}"


def http_base_url(conn: Any) -> str:
    """``schema://host[:port]`` of an HTTP connection, like the HTTP provider; ``host`` may already contain a
    scheme and a path."""
    host = (conn.host or "").strip()
    if not host:
        raise ValueError(f"connection {conn.conn_id!r} has no host; e.g. host=dummyjson.com, schema=https")
    if "://" not in host:
        host = f"{(conn.schema or 'http').strip()}://{host}"
    parts = urlsplit(host)
    if not parts.scheme or not parts.hostname:
        raise ValueError(f"connection {conn.conn_id!r}: cannot build a URL from host {conn.host!r}")
    netloc = parts.netloc
    if conn.port and parts.port is None:
        netloc = f"{netloc}:{int(conn.port)}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")).rstrip("/")


def dummyjson_url_from_env(conn_id: str = DUMMYJSON_API, environ: Mapping[str, str] | None = None) -> str:
    """The DummyJSON base URL from `AIRFLOW_CONN_DUMMYJSON_API`, without importing Airflow."""
    return http_base_url(connection_from_env(conn_id, environ))


def kafka_config(conn_id: str = KAFKA) -> dict[str, Any]:
    """The confluent-kafka config of the Airflow Kafka connection `conn_id`, as the Kafka provider builds it
    (the provider's builder is private API: without it, the connection's extra as is)."""
    from airflow.providers.apache.kafka.hooks.base import KafkaBaseHook

    hook = KafkaBaseHook(kafka_config_id=conn_id)
    build = getattr(hook, "_build_config", None)  # resolves callbacks and managed-auth tokens (provider 2.x)
    return dict(build()) if callable(build) else dict(hook.get_connection(conn_id).extra_dejson)
