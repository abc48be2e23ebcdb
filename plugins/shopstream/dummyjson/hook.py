"""Airflow hook for the DummyJSON API: an Airflow connection -> a configured :class:`DummyJSONClient`.

The connection (default id ``dummyjson_api``, type ``http``) gives the base URL the same way the HTTP
provider does: ``schema`` (default ``http``) + ``host`` + ``port``, where ``host`` may already hold a
scheme (``https://dummyjson.com``). Optional client settings come from the connection's ``extra``
(strings are accepted, as typed in the UI): ``page_size``, ``timeout`` (or ``connect_timeout`` /
``read_timeout``), ``max_attempts``, ``time_budget``, ``backoff_base``, ``backoff_cap``, ``max_restarts``,
``rate_limit`` (0 disables the client-side limiter), ``rate_period``, ``verify``, ``headers`` (object).
Keyword arguments to the hook override the connection.

This is the only module of the package that imports Airflow.
"""

from __future__ import annotations

from typing import Any

try:  # Airflow 3: the Task SDK base class
    from airflow.sdk.bases.hook import BaseHook
except ImportError:  # pragma: no cover - Airflow 2 fallback
    from airflow.hooks.base import BaseHook

from shopstream.connections import http_base_url
from shopstream.dummyjson.client import RESOURCES, DummyJSONClient

_INT_EXTRAS = ("page_size", "max_attempts", "max_restarts", "rate_limit")
_FLOAT_EXTRAS = ("time_budget", "backoff_base", "backoff_cap", "rate_period")


def _to_bool(value: Any) -> bool | str:
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.lower() in ("true", "1", "yes", "on"):
        return True
    if text.lower() in ("false", "0", "no", "off"):
        return False
    return text  # a CA bundle path


# The URL rule lives with the other connection rules (shopstream.connections); re-exported for the hook's users.
base_url_from_connection = http_base_url


def client_kwargs_from_extra(extra: dict[str, Any]) -> dict[str, Any]:
    """Client keyword arguments from a connection's extra (unknown keys are ignored)."""
    out: dict[str, Any] = {}
    for key in _INT_EXTRAS:
        if extra.get(key) not in (None, ""):
            out[key] = int(extra[key])
    for key in _FLOAT_EXTRAS:
        if extra.get(key) not in (None, ""):
            out[key] = float(extra[key])
    if "rate_limit" in out and out["rate_limit"] <= 0:
        out["rate_limit"] = None
    connect, read = extra.get("connect_timeout"), extra.get("read_timeout")
    if extra.get("timeout") not in (None, ""):
        connect = connect if connect not in (None, "") else extra["timeout"]
        read = read if read not in (None, "") else extra["timeout"]
    if connect not in (None, "") or read not in (None, ""):
        out["timeout"] = (float(connect if connect not in (None, "") else 5.0),
                          float(read if read not in (None, "") else 30.0))
    if extra.get("verify") not in (None, ""):
        out["verify"] = _to_bool(extra["verify"])
    if isinstance(extra.get("headers"), dict):
        out["headers"] = {str(k): str(v) for k, v in extra["headers"].items()}
    return out


class DummyJSONHook(BaseHook):
    """``DummyJSONHook().get_conn()`` -> :class:`DummyJSONClient` for the ``dummyjson_api`` connection."""

    conn_name_attr = "http_conn_id"
    default_conn_name = "dummyjson_api"
    conn_type = "http"
    hook_name = "DummyJSON API"

    def __init__(self, http_conn_id: str = default_conn_name, **client_overrides: Any) -> None:
        super().__init__()
        self.http_conn_id = http_conn_id
        self.client_overrides = client_overrides
        self._client: DummyJSONClient | None = None

    def get_base_url(self) -> str:
        return base_url_from_connection(self.get_connection(self.http_conn_id))

    def get_client_kwargs(self) -> dict[str, Any]:
        conn = self.get_connection(self.http_conn_id)
        kwargs = client_kwargs_from_extra(conn.extra_dejson or {})
        kwargs.update(self.client_overrides)
        kwargs["base_url"] = base_url_from_connection(conn)
        return kwargs

    def get_conn(self) -> DummyJSONClient:
        """A configured client (built once per hook)."""
        if self._client is None:
            kwargs = self.get_client_kwargs()
            self._client = DummyJSONClient(kwargs.pop("base_url"), **kwargs)
            self.log.info("DummyJSON client for %s (page_size=%d, rate_limit=%s)", self._client.base_url,
                          self._client.page_size,
                          self._client.limiter.max_requests if self._client.limiter else "off")
        return self._client

    def fetch_all(self, resource: str) -> list[dict[str, Any]]:
        """Every record of ``resource``; logs the request/retry counts."""
        client = self.get_conn()
        records = client.fetch_all(resource)
        s = client.last_fetch_stats
        self.log.info("DummyJSON /%s: %d records in %d requests (%d retries, %d restarts, %.2f s)",
                      resource, len(records), s["requests"], s["retries"], s["restarts"], s["seconds"])
        return records

    def test_connection(self) -> tuple[bool, str]:
        """Fetch one user to prove the API answers (used by the UI's "Test" button)."""
        try:
            client = self.get_conn()
            response = client.session.get(f"{client.base_url}/users?limit=1&select=id",
                                          timeout=client.timeout, verify=client.verify)
            response.raise_for_status()
            body = response.json()
            return True, f"DummyJSON API answers at {client.base_url} ({body.get('total')} users)"
        except Exception as exc:  # the UI shows the message
            return False, f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


__all__ = ["DummyJSONHook", "base_url_from_connection", "client_kwargs_from_extra", "RESOURCES"]
