"""Container-side settings derived from the AIRFLOW_CONN_* JSON connections of .env (Docker path).

.env holds the connections (AIRFLOW_CONN_WAREHOUSE_DB, and the least-privilege AIRFLOW_CONN_BRONZE_DB /
AIRFLOW_CONN_ANALYST_DB on the same server) as the native path sees them (PostgreSQL on 127.0.0.1:55432, Kafka on
127.0.0.1:59092, ...). Inside the compose network those loopback addresses mean "this container", so every
loopback host is replaced by the compose service that provides it, from SHOPSTREAM_CONTAINER_HOSTS
("warehouse_db=postgres:5432,kafka_default=kafka:9092,dummyjson_api=dummyjson:58080"). A connection that
points elsewhere (the real https://dummyjson.com, a remote broker) is left as it is. Logins, passwords,
database names and every other field always come from .env.

Usage (stdlib only: Airflow runs the *_CMD ones on every start of every component):
  container_env.py exports            shell `export` lines: the rewritten AIRFLOW_CONN_*, plus PGHOST/PGPORT/
                                      PGUSER/PGPASSWORD/PGDATABASE, KAFKA_BOOTSTRAP, DUMMYJSON_HOST/PORT
                                      (the names scripts/conn_env.py gives the native path)
  container_env.py sql_alchemy_conn   Airflow's metadata DB URL (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD)
  container_env.py result_backend     Celery result backend URL (AIRFLOW__CELERY__RESULT_BACKEND_CMD)
  container_env.py passwords-file P   write SimpleAuthManager's passwords file P from AIRFLOW_ADMIN_USER /
                                      AIRFLOW_ADMIN_PASSWORD (mode 600)
  container_env.py preflight          exit 1 with a clear message while .env still holds a `change-me`
  container_env.py check-warehouse    log in to the warehouse with the .env credentials (psycopg)
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from urllib.parse import quote

CONNECTIONS = {
    "warehouse_db": "AIRFLOW_CONN_WAREHOUSE_DB",
    "kafka_default": "AIRFLOW_CONN_KAFKA_DEFAULT",
    "dummyjson_api": "AIRFLOW_CONN_DUMMYJSON_API",
}
# Least-privilege PostgreSQL logins (include/sql/security): the bronze loader's is given to Airflow, the
# analysts' only to the postgres service. Rewritten with warehouse_db's service (same server) when set.
OPTIONAL_CONNECTIONS = {
    "bronze_db": "AIRFLOW_CONN_BRONZE_DB",
    "analyst_db": "AIRFLOW_CONN_ANALYST_DB",
}
SAME_SERVER_AS = {"bronze_db": "warehouse_db", "analyst_db": "warehouse_db"}
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0", ""}
PLACEHOLDER = "change-me"


class ConfigError(Exception):
    pass


def _service_map(environ) -> dict[str, tuple[str, int]]:
    raw = environ.get("SHOPSTREAM_CONTAINER_HOSTS", "")
    out: dict[str, tuple[str, int]] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        conn_id, _, address = item.partition("=")
        host, _, port = address.rpartition(":")
        if not conn_id or not host or not port.isdigit():
            raise ConfigError(f"SHOPSTREAM_CONTAINER_HOSTS: bad entry {item!r} (want conn_id=host:port)")
        out[conn_id.strip()] = (host.strip(), int(port))
    return out


def load(var: str, environ) -> dict:
    raw = environ.get(var)
    if not raw:
        raise ConfigError(f"{var} is not set: set it in .env (see .env.example)")
    try:
        conn = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{var} is not valid JSON ({exc}); see .env.example for the form") from exc
    if not isinstance(conn, dict):
        raise ConfigError(f"{var} must be a JSON object; see .env.example")
    return conn


def _is_loopback(host: str | None) -> bool:
    return (host or "").strip().lower() in LOOPBACK


def rewrite(conn_id: str, conn: dict, services: dict[str, tuple[str, int]]) -> dict:
    """The connection as seen from inside the compose network."""
    if conn_id not in services:
        return conn
    host, port = services[conn_id]
    conn = json.loads(json.dumps(conn))  # deep copy
    if conn.get("conn_type") == "kafka":
        extra = conn.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra)
        servers = [s.strip() for s in str(extra.get("bootstrap.servers", "")).split(",") if s.strip()]
        rewritten: list[str] = []
        for server in servers or [""]:
            server_host = server.rsplit(":", 1)[0] if ":" in server else server
            target = f"{host}:{port}" if _is_loopback(server_host) else server
            if target not in rewritten:
                rewritten.append(target)
        extra["bootstrap.servers"] = ",".join(rewritten)
        conn["extra"] = extra
    elif _is_loopback(conn.get("host")):
        conn["host"] = host
        conn["port"] = port
    return conn


def container_connections(environ) -> dict[str, dict]:
    services = _service_map(environ)
    for cid, same in SAME_SERVER_AS.items():
        if cid not in services and same in services:
            services[cid] = services[same]
    conns = {cid: rewrite(cid, load(var, environ), services) for cid, var in CONNECTIONS.items()}
    for cid, var in OPTIONAL_CONNECTIONS.items():
        if environ.get(var):
            conns[cid] = rewrite(cid, load(var, environ), services)
    return conns


def _warehouse(environ) -> dict:
    return container_connections(environ)["warehouse_db"]


def exports(environ) -> list[str]:
    conns = container_connections(environ)
    pg, kafka, api = conns["warehouse_db"], conns["kafka_default"], conns["dummyjson_api"]
    values = {var: json.dumps(conns[cid], separators=(",", ":"))
              for cid, var in {**CONNECTIONS, **OPTIONAL_CONNECTIONS}.items() if cid in conns}
    bootstrap = (kafka.get("extra") or {}).get("bootstrap.servers", "")
    values.update({
        "PGHOST": pg.get("host", "postgres"),
        "PGPORT": pg.get("port", 5432),
        "PGDATABASE": pg.get("schema", "shopstream"),
        "PGUSER": pg.get("login", "shopstream"),
        "PGPASSWORD": pg.get("password", ""),
        "KAFKA_BOOTSTRAP": bootstrap,
        **({"BRONZE_PGUSER": conns["bronze_db"].get("login", "")} if "bronze_db" in conns else {}),
        "DUMMYJSON_HOST": api.get("host", "dummyjson"),
        "DUMMYJSON_PORT": api.get("port", 58080),
    })
    return [f"export {key}={shlex.quote(str(value))}" for key, value in values.items()]


def sql_alchemy_conn(environ, driver: str = "postgresql+psycopg2") -> str:
    """Airflow's metadata database: $SHOPSTREAM_METADATA_DB (default `airflow`) on the warehouse server,
    owned by the warehouse role (docker/postgres-init creates both)."""
    pg = _warehouse(environ)
    login = quote(str(pg.get("login", "")), safe="")
    password = quote(str(pg.get("password", "")), safe="")
    database = environ.get("SHOPSTREAM_METADATA_DB", "airflow")
    return f"{driver}://{login}:{password}@{pg.get('host')}:{pg.get('port', 5432)}/{database}"


def result_backend(environ) -> str:
    return "db+" + sql_alchemy_conn(environ, driver="postgresql")


def preflight(environ) -> list[str]:
    """Problems that must be fixed in .env before the stack can start."""
    problems = []
    if not environ.get("AIRFLOW_ADMIN_USER"):
        problems.append("AIRFLOW_ADMIN_USER is empty")
    if not environ.get("AIRFLOW_ADMIN_PASSWORD"):
        problems.append("AIRFLOW_ADMIN_PASSWORD is empty")
    elif environ["AIRFLOW_ADMIN_PASSWORD"] == PLACEHOLDER:
        problems.append(f"AIRFLOW_ADMIN_PASSWORD is still {PLACEHOLDER!r}")
    for var in [*CONNECTIONS.values(), *(v for v in OPTIONAL_CONNECTIONS.values() if environ.get(v))]:
        try:
            conn = load(var, environ)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        # (the loader's and analysts' placeholders are refused by docker/postgres-init/20-shopstream-roles.sh)
        if conn.get("password") == PLACEHOLDER and var in CONNECTIONS.values():
            problems.append(f"the password in {var} is still {PLACEHOLDER!r}")
    return problems


def write_passwords_file(path: str, environ) -> None:
    user, password = environ.get("AIRFLOW_ADMIN_USER"), environ.get("AIRFLOW_ADMIN_PASSWORD")
    if not user or not password:
        raise ConfigError("AIRFLOW_ADMIN_USER and AIRFLOW_ADMIN_PASSWORD must be set in .env")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({user: password}, fh)
    os.chmod(path, 0o600)


def check_warehouse(environ) -> None:
    import psycopg  # only here: the *_CMD commands stay stdlib-only and fast

    pg = _warehouse(environ)
    try:
        with psycopg.connect(host=pg.get("host"), port=pg.get("port", 5432), user=pg.get("login"),
                             password=pg.get("password"), dbname=pg.get("schema"), connect_timeout=10):
            pass
    except psycopg.OperationalError as exc:
        raise ConfigError(
            f"cannot log in to the warehouse {pg.get('schema')!r} as {pg.get('login')!r} on "
            f"{pg.get('host')}:{pg.get('port')}: {str(exc).strip()}\n"
            "The role and database are created from AIRFLOW_CONN_WAREHOUSE_DB when the postgres volume is "
            "first initialised. If you changed them in .env since, apply them to the existing volume:\n"
            "  docker compose up -d postgres && "
            "docker compose exec postgres bash /docker-entrypoint-initdb.d/10-shopstream.sh\n"
            "or start from an empty volume (deletes all data): docker compose down -v") from exc


def main(argv: list[str]) -> int:
    environ = os.environ
    try:
        if argv == ["exports"]:
            print("\n".join(exports(environ)))
        elif argv == ["sql_alchemy_conn"]:
            print(sql_alchemy_conn(environ))
        elif argv == ["result_backend"]:
            print(result_backend(environ))
        elif len(argv) == 2 and argv[0] == "passwords-file":
            write_passwords_file(argv[1], environ)
        elif argv == ["preflight"]:
            problems = preflight(environ)
            if problems:
                print("error: .env is not ready for `docker compose up`:", file=sys.stderr)
                for problem in problems:
                    print(f"  - {problem}", file=sys.stderr)
                print("Replace every change-me in .env with a secret of your own (see .env.example).",
                      file=sys.stderr)
                return 1
        elif argv == ["check-warehouse"]:
            check_warehouse(environ)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
