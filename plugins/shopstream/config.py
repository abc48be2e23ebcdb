"""Configuration checks that fail fast: a missing or malformed variable or connection stops a task at its start
with a message that names it and says how to fix it (instead of a stack trace from deep inside a client library,
minutes later, or after a round of retries).

Standard library only: scripts/conn_env.py (run by every script through scripts/common.sh) uses it before any
package is installed, and the DAG files' parse stays fast.

Used at the start of the extract, bronze and dbt tasks (``task_preflight``: raises Airflow's
``AirflowFailException`` so a configuration error is not retried) and by scripts/conn_env.py (``ConfigError``).

Connections are read in Airflow's JSON form from ``AIRFLOW_CONN_<CONN_ID>`` (.env); inside Airflow a connection
that is not in the environment is looked up through Airflow (metadata DB / secrets backend) before it is
declared missing.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from shopstream import connections
from shopstream.topics import ENV_PREFIX as TOPIC_PREFIX
from shopstream.topics import TOPICS

#: The project's connections and their types.
CONNECTIONS: dict[str, str] = {
    connections.WAREHOUSE_DB: "postgres",  # dbt: owns staging/silver/gold, reads bronze
    connections.BRONZE_DB: "postgres",  # the bronze loader: appends to bronze only
    connections.ANALYST_DB: "postgres",  # analysts / BI: read-only on gold
    connections.KAFKA: "kafka",
    connections.DUMMYJSON_API: "http",
}

SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER")
TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
FIX = "Fix it in .env (see .env.example for the form)"


class ConfigError(ValueError):
    """A configuration problem; the message names the variable or connection and says how to fix it."""


def env_var(conn_id: str) -> str:
    return "AIRFLOW_CONN_" + conn_id.upper()


def _where(conn_id: str) -> str:
    return f"{env_var(conn_id)} (Airflow connection '{conn_id}')"


def _port_problem(port: Any) -> str | None:
    if port is None or port == "":
        return None
    if isinstance(port, bool) or not isinstance(port, (int, str)):
        return f'"port" must be an integer, got {port!r} ({type(port).__name__})'
    if isinstance(port, str) and not port.strip().isdigit():
        return f'"port" must be an integer, got {port!r} (a string that is not a number)'
    if not 1 <= int(port) <= 65535:
        return f'"port" must be between 1 and 65535, got {port!r}'
    return None


def _extra(conn: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    extra = conn.get("extra")
    if extra in (None, ""):
        return {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except json.JSONDecodeError as exc:
            problems.append(f'"extra" is a string that is not valid JSON ({exc})')
            return {}
    if not isinstance(extra, dict):
        problems.append(f'"extra" must be a JSON object, got {type(extra).__name__}')
        return {}
    return extra


def _host_port_list(servers: str) -> list[str]:
    problems = []
    for server in (s.strip() for s in servers.split(",")):
        host, sep, port = server.rpartition(":")
        if not server or not sep or not host:
            problems.append(f"{server!r} is not host:port")
        elif not port.isdigit() or not 1 <= int(port) <= 65535:
            problems.append(f"{server!r} has no valid port")
    return problems


def connection_problems(conn_id: str, conn: Any, conn_type: str | None = None) -> list[str]:
    """What is wrong with connection `conn` (Airflow's JSON form, as a dict); empty when it is usable."""
    if not isinstance(conn, dict):
        return [f"must be a JSON object, got {type(conn).__name__}"]
    conn_type = conn_type or CONNECTIONS.get(conn_id)
    problems: list[str] = []
    actual = conn.get("conn_type")
    if conn_type and actual != conn_type:
        problems.append(f'"conn_type" must be "{conn_type}", got {actual!r}')
    port = _port_problem(conn.get("port"))
    if port:
        problems.append(port)
    for field in ("host", "schema", "login", "password"):
        value = conn.get(field)
        if value is not None and not isinstance(value, str):
            problems.append(f'"{field}" must be a string, got {type(value).__name__}')
    extra = _extra(conn, problems)
    if conn_type == "postgres":
        for field in ("host", "schema", "login"):
            if not conn.get(field):
                problems.append(f'"{field}" is missing or empty (the PostgreSQL '
                                f'{ {"host": "server", "schema": "database", "login": "role"}[field] })')
        sslmode = extra.get("sslmode")
        if sslmode is not None and sslmode not in SSLMODES:
            problems.append(f'extra "sslmode" must be one of {", ".join(SSLMODES)}; got {sslmode!r}')
        for key in ("sslrootcert", "sslcert", "sslkey", "sslcrl"):
            if key in extra and not isinstance(extra[key], str):
                problems.append(f'extra "{key}" must be a file path (string)')
    elif conn_type == "kafka":
        servers = extra.get("bootstrap.servers")
        if not servers or not isinstance(servers, str):
            problems.append('extra "bootstrap.servers" is missing (e.g. "127.0.0.1:29092")')
        else:
            problems += [f'extra "bootstrap.servers": {p}' for p in _host_port_list(servers)]
        protocol = str(extra.get("security.protocol", "PLAINTEXT")).upper()
        if protocol not in KAFKA_SECURITY_PROTOCOLS:
            problems.append(f'extra "security.protocol" must be one of {", ".join(KAFKA_SECURITY_PROTOCOLS)}; '
                            f'got {extra.get("security.protocol")!r}')
        if protocol.startswith("SASL"):
            mechanism = extra.get("sasl.mechanisms") or extra.get("sasl.mechanism")
            if not mechanism:
                problems.append(f'security.protocol {protocol} needs extra "sasl.mechanisms" '
                                f'({", ".join(KAFKA_SASL_MECHANISMS)})')
            elif str(mechanism).upper() not in KAFKA_SASL_MECHANISMS:
                problems.append(f'extra "sasl.mechanisms" must be one of {", ".join(KAFKA_SASL_MECHANISMS)}; '
                                f'got {mechanism!r}')
            elif str(mechanism).upper() in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
                for key in ("sasl.username", "sasl.password"):
                    if not extra.get(key):
                        problems.append(f'sasl.mechanisms {mechanism} needs extra "{key}"')
        for key, value in extra.items():
            if not isinstance(value, (str, int, float, bool)):
                problems.append(f'extra "{key}" must be a string, number or boolean (confluent-kafka setting)')
    elif conn_type == "http":
        if not conn.get("host"):
            problems.append('"host" is missing or empty')
        schema = conn.get("schema")
        if schema not in (None, "", "http", "https"):
            problems.append(f'"schema" must be "http" or "https", got {schema!r}')
    return problems


def parse_connection(conn_id: str, raw: str | None) -> dict[str, Any]:
    """The JSON of ``AIRFLOW_CONN_<CONN_ID>`` as a dict; ConfigError when it is missing or not a JSON object."""
    var = env_var(conn_id)
    if raw is None or not raw.strip():
        raise ConfigError(f"{_where(conn_id)} is not set. Add it to .env (scripts/common.sh copies it from "
                          f".env.example with a generated password), or define the Airflow connection "
                          f"'{conn_id}'.")
    try:
        conn = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{var} is not valid JSON ({exc}). {FIX}; it must be Airflow's JSON form, "
                          f"e.g. '{{\"conn_type\":\"...\",\"host\":\"...\",\"port\":1234}}'.") from exc
    if not isinstance(conn, dict):
        raise ConfigError(f"{var} must be a JSON object, got {type(conn).__name__}. {FIX}.")
    return conn


def _airflow_connection(conn_id: str) -> dict[str, Any] | None:
    """The connection as Airflow resolves it (metadata DB, secrets backend), or None when Airflow has none."""
    try:
        from airflow.sdk import BaseHook
    except ImportError:  # outside Airflow (scripts): the environment is the only source
        return None
    try:
        c = BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - AirflowNotFoundException and friends: "not defined"
        return None
    return {"conn_type": c.conn_type, "host": c.host, "port": c.port, "schema": c.schema, "login": c.login,
            "password": c.password, "extra": c.extra_dejson}


def load_connection(conn_id: str, environ: Mapping[str, str] | None = None, *, conn_type: str | None = None,
                    airflow_fallback: bool = False) -> dict[str, Any]:
    """The validated connection `conn_id` (ConfigError naming it and the fix otherwise)."""
    env = os.environ if environ is None else environ
    raw = env.get(env_var(conn_id))
    if (raw is None or not raw.strip()) and airflow_fallback:
        conn = _airflow_connection(conn_id)
        if conn is None:
            parse_connection(conn_id, raw)  # raises "not set"
    else:
        conn = parse_connection(conn_id, raw)
    problems = connection_problems(conn_id, conn, conn_type)
    if problems:
        raise ConfigError(f"{_where(conn_id)} is malformed: " + "; ".join(problems) + f". {FIX}.")
    return conn


def topic_overrides(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """{base topic: topic} from the ``SHOPSTREAM_TOPIC_<NAME>`` variables; ConfigError for an unknown <NAME>
    (a typo would silently publish to the contract's topic) or an invalid Kafka topic name."""
    env = os.environ if environ is None else environ
    out: dict[str, str] = {}
    problems: list[str] = []
    known = ", ".join(TOPIC_PREFIX + t.upper() for t in TOPICS)
    for key, value in env.items():
        if not key.startswith(TOPIC_PREFIX):
            continue
        base = key[len(TOPIC_PREFIX):].lower()
        if base not in TOPICS:
            problems.append(f"{key} names no topic of the contract (known: {known})")
        elif value and not TOPIC_NAME.match(value):
            problems.append(f"{key}={value!r} is not a valid Kafka topic name (letters, digits, '.', '_', '-'; "
                            f"at most 249)")
        elif value:
            out[base] = value
    if problems:
        raise ConfigError("; ".join(problems) + ". Fix or unset the variable (in .env or the environment).")
    return out


def int_variable(name: str, environ: Mapping[str, str] | None = None, *, default: int | None = None,
                 minimum: int | None = None) -> int | None:
    env = os.environ if environ is None else environ
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer. {FIX}.") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}. {FIX}.")
    return value


def choice_variable(name: str, choices: Iterable[str], environ: Mapping[str, str] | None = None, *,
                    default: str | None = None) -> str | None:
    env = os.environ if environ is None else environ
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    choices = tuple(choices)
    if raw not in choices:
        raise ConfigError(f"{name}={raw!r} must be one of {', '.join(choices)}. {FIX}.")
    return raw


def same_database(a: str, b: str, environ: Mapping[str, str] | None = None) -> None:
    """Two PostgreSQL connections that must reach the same database (e.g. the loader's and dbt's)."""
    env = os.environ if environ is None else environ
    ca, cb = (load_connection(c, env, airflow_fallback=True) for c in (a, b))
    loopback = {"127.0.0.1", "localhost", "::1", ""}

    def key(c: Mapping[str, Any]) -> tuple[str, str, str]:
        host = str(c.get("host") or "").lower()
        return ("loopback" if host in loopback else host, str(c.get("port") or 5432), str(c.get("schema")))

    if key(ca) != key(cb):
        raise ConfigError(
            f"{env_var(a)} and {env_var(b)} must point at the same PostgreSQL database (host, port, schema): "
            f"{a} is {':'.join(key(ca))}, {b} is {':'.join(key(cb))}. {FIX}; only the login and password differ.")


def preflight(connections: Iterable[str] = (), environ: Mapping[str, str] | None = None, *,
              topics: bool = False, ints: Mapping[str, int] | None = None,
              same_db: Iterable[tuple[str, str]] = (), airflow_fallback: bool = False) -> None:
    """Check everything a task needs before it starts; one ConfigError listing every problem."""
    problems: list[str] = []
    checks: list[Any] = [lambda c=c: load_connection(c, environ, airflow_fallback=airflow_fallback)
                         for c in connections]
    if topics:
        checks.append(lambda: topic_overrides(environ))
    for name, minimum in (ints or {}).items():
        checks.append(lambda n=name, m=minimum: int_variable(n, environ, minimum=m))
    for a, b in same_db:
        checks.append(lambda a=a, b=b: same_database(a, b, environ))
    for check in checks:
        try:
            check()
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("configuration error:\n  - " + "\n  - ".join(problems))


def task_preflight(*args: Any, **kwargs: Any) -> None:
    """`preflight` for a task's first line: a configuration error fails the task at once, without retries
    (Airflow's AirflowFailException), with the message at the top of the log."""
    kwargs.setdefault("airflow_fallback", True)
    try:
        preflight(*args, **kwargs)
    except ConfigError as exc:
        try:
            from airflow.sdk.exceptions import AirflowFailException
        except ImportError:  # no Airflow (a plain script): the ConfigError itself
            raise exc from None
        raise AirflowFailException(str(exc)) from exc
