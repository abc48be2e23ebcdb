"""Print shell assignments derived from the AIRFLOW_CONN_* JSON connections.

The connections in .env are the single source of truth for hosts, ports and credentials; the service
scripts (PostgreSQL, Kafka, the DummyJSON server) read them through this helper so a port is never
configured twice. Usage: eval "$(python3 scripts/conn_env.py)".
"""

from __future__ import annotations

import json
import os
import shlex
import sys


def _load(var: str) -> dict:
    raw = os.environ.get(var)
    if not raw:
        sys.exit(f"error: {var} is not set. Copy .env.example to .env (make does this) and set it.")
    try:
        conn = json.loads(raw)
    except json.JSONDecodeError as exc:
        sys.exit(f"error: {var} is not valid JSON ({exc}). Fix it in .env; see .env.example for the form.")
    if not isinstance(conn, dict):
        sys.exit(f"error: {var} must be a JSON object; see .env.example.")
    return conn


def main() -> None:
    pg = _load("AIRFLOW_CONN_WAREHOUSE_DB")
    kafka = _load("AIRFLOW_CONN_KAFKA_DEFAULT")
    api = _load("AIRFLOW_CONN_DUMMYJSON_API")
    bootstrap = (kafka.get("extra") or {}).get("bootstrap.servers")
    if not bootstrap:
        sys.exit('error: AIRFLOW_CONN_KAFKA_DEFAULT has no extra."bootstrap.servers"; see .env.example.')
    out = {
        "PGHOST": pg.get("host", "127.0.0.1"),
        "PGPORT": pg.get("port", 5432),
        "PGDATABASE": pg.get("schema", "shopstream"),
        "PGUSER": pg.get("login", "shopstream"),
        "PGPASSWORD": pg.get("password", ""),
        "KAFKA_BOOTSTRAP": bootstrap,
        "KAFKA_PORT": bootstrap.split(",")[0].rsplit(":", 1)[-1],
        "DUMMYJSON_HOST": api.get("host", "127.0.0.1"),
        "DUMMYJSON_PORT": api.get("port", 58080),
    }
    for key, value in out.items():
        print(f"export {key}={shlex.quote(str(value))}")


if __name__ == "__main__":
    main()
