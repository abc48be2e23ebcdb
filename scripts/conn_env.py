"""Print shell assignments derived from the AIRFLOW_CONN_* JSON connections.

The connections in .env are the single source of truth for hosts, ports and credentials; the service
scripts (PostgreSQL, Kafka, the DummyJSON server) read them through this helper so a port is never
configured twice. Usage: eval "$(python3 scripts/conn_env.py)".

Every connection is validated first (plugins/shopstream/config.py, the checks the tasks run at their start):
a missing or malformed one stops the script with a message that names it and says how to fix it.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from shopstream import config  # noqa: E402 - stdlib-only module, found through the path above


def main() -> None:
    try:
        pg = config.load_connection("warehouse_db")
        loader = config.load_connection("bronze_db")
        analyst = config.load_connection("analyst_db")
        kafka = config.load_connection("kafka_default")
        api = config.load_connection("dummyjson_api")
        config.choice_variable("SHOPSTREAM_PG_SSL", ("on", "off"), default="off")
        config.topic_overrides()
    except config.ConfigError as exc:
        sys.exit(f"error: {exc}")
    bootstrap = (config._extra(kafka, []) or {}).get("bootstrap.servers")
    out = {
        "PGHOST": pg.get("host", "127.0.0.1"),
        "PGPORT": pg.get("port") or 5432,
        "PGDATABASE": pg.get("schema", "shopstream"),
        "PGUSER": pg.get("login", "shopstream"),
        "PGPASSWORD": pg.get("password", ""),
        "BRONZE_PGUSER": loader["login"],
        "BRONZE_PGPASSWORD": loader.get("password") or "",
        "ANALYST_PGUSER": analyst["login"],
        "ANALYST_PGPASSWORD": analyst.get("password") or "",
        "SHOPSTREAM_PG_OWNER_ROLE": os.environ.get("SHOPSTREAM_PG_OWNER_ROLE") or "shopstream_owner",
        "KAFKA_BOOTSTRAP": bootstrap,
        "KAFKA_PORT": bootstrap.split(",")[0].rsplit(":", 1)[-1],
        "DUMMYJSON_HOST": api.get("host", "127.0.0.1"),
        "DUMMYJSON_PORT": api.get("port", 58080),
    }
    for key, value in out.items():
        print(f"export {key}={shlex.quote(str(value))}")


if __name__ == "__main__":
    main()
