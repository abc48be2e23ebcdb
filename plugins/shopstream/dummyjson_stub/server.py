"""A local DummyJSON-compatible read API (stdlib only) with deterministic fault injection.

Implements the GET contract of /users, /products and /carts (CONTRACT.md in the shared DummyJSON
folder): list and by-id routes (plural and singular prefixes), the ``{<resource>, total, skip, limit}``
envelope (default limit 30, ``limit=0`` means all, ``limit`` echoes the number returned, past-the-end
gives an empty 200), ``select`` (top-level keys, ``id`` first; ignored on carts), ``sortBy``/``order``,
``delay``, search/filter/category routes, the documented 400/404 JSON errors, an HTML 404 for unknown
paths, 301 for a trailing slash, gzip, weak ETags, and the fixed-window rate limit (default 100 requests
per 10 s per client IP, ``X-RateLimit-*`` headers, 429 with ``Retry-After``; configurable, can be off).

Run it::

    python -m shopstream.dummyjson_stub.server --port 58080 --data ../shared/dummyjson
    python -m shopstream.dummyjson_stub.server --port 58080 --generate users=200,products=200,carts=200 --seed 7

or embed it (tests)::

    with DummyJSONServer(catalog, rate_limit=None) as base_url:   # port 0: a free port, in a thread
        requests.get(f"{base_url}/users?limit=5")

Fault injection (deterministic, by request counter). A spec is a JSON list of rules, or ``{"rules": [..]}``.
Each rule has a ``fault`` and optional selectors, all of which must hold (no selector: every request):

* ``on: [n, ...]`` the rule's n-th matching request (1-based), ``first: n`` requests 1..n (a burst),
  ``after: n`` requests after the n-th, ``every: n`` every n-th, ``rate: p`` (+ ``seed``) a seeded,
  counter-based coin flip, ``times: n`` fire at most n times;
* ``path`` (a prefix such as ``/users``; default: every data route) and ``query`` (e.g. ``{"skip": "100"}``)
  decide which requests a rule counts.

Faults: ``status`` (``status``: 500/502/503/..., optional ``retry_after``; shorthands ``"500"``, ``"503"``,
``"429"``...), ``429`` (``retry_after``, default 10, the contract's body), ``slow`` (``seconds`` before
answering normally), ``truncate`` (``fraction`` of the body; ``mode`` ``cut`` = full Content-Length then
close, ``short`` = shortened Content-Length so the JSON is invalid), ``drop`` (close the connection
without a response), ``html`` (200 with an HTML page), ``envelope`` (``variant``: ``rename`` | ``total_type``
| ``no_total`` | ``limit_mismatch`` | ``skip_mismatch`` | ``list``), ``missing_id`` (``index``),
``duplicate_id``, ``total`` (``delta``, default 1: an inconsistent total). The first rule that fires wins.

Set faults with the ``faults=`` argument, ``--faults JSON|@file`` or ``$SHOPSTREAM_DUMMYJSON_FAULTS``,
or on a running server through the admin endpoints (not rate limited, never faulted):
``GET /__health``, ``GET /__faults`` (rules + counters), ``POST /__faults`` (JSON body) or
``GET /__faults?spec=<json>`` (replace the rules), ``DELETE /__faults``, ``GET /__stats``,
``POST /__reset`` (stats, fault counters and rate window), ``POST /__config`` (``rate_limit``, ``rate_window``).
"""

from __future__ import annotations

import argparse
import base64
import functools
import gzip
import hashlib
import json
import logging
import math
import os
import random
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from shopstream.dummyjson_stub.catalog import (
    DEFAULT_SEED,
    RESOURCES,
    SNAPSHOT_SIZES,
    Catalog,
    generate_catalog,
    has_snapshot,
    load_snapshot,
    parse_sizes,
    snapshot_dir,
)

log = logging.getLogger(__name__)

FAULTS_ENV = "SHOPSTREAM_DUMMYJSON_FAULTS"
RATE_LIMIT_MESSAGE = "request limit exceeded, please wait a few seconds"
SINGULAR = {"users": "user", "products": "product", "carts": "cart"}
PREFIXES = {"users": "users", "user": "users", "products": "products", "product": "products",
            "carts": "carts", "cart": "carts"}
JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"

# ------------------------------------------------------------------------------- JS number parsing
_JS_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_JS_NONDECIMAL = re.compile(r"0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+")
_JS_PARSEINT = re.compile(r"\s*([+-]?\d+)")


def js_number(text: str) -> float:
    """JavaScript ``Number(text)`` for a string (NaN when it is not a number)."""
    t = text.strip()
    if t == "":
        return 0.0
    if t in ("Infinity", "+Infinity"):
        return math.inf
    if t == "-Infinity":
        return -math.inf
    if _JS_DECIMAL.fullmatch(t):
        return float(t)
    if _JS_NONDECIMAL.fullmatch(t):
        return float(int(t, 0))
    return math.nan


def js_parse_int(text: str) -> int | None:
    """JavaScript ``parseInt(text, 10)``; None stands for NaN."""
    m = _JS_PARSEINT.match(text)
    return int(m.group(1)) if m else None


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ------------------------------------------------------------------------------------ rate limit
class FixedWindowRateLimit:
    """``limit`` requests per ``window`` seconds per client key; every counter resets together."""

    def __init__(self, limit: int, window: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.limit = int(limit)
        self.window = float(window)
        self._clock = clock
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._t0 = self._clock()
            self._index = 0
            self._counts: dict[str, int] = {}

    def hit(self, key: str) -> tuple[bool, dict[str, str]]:
        with self._lock:
            now = self._clock()
            index = int((now - self._t0) // self.window)
            if index != self._index:
                self._index = index
                self._counts.clear()
            count = self._counts.get(key, 0) + 1
            self._counts[key] = count
            reset_at = self._t0 + (index + 1) * self.window
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - count)),
            "X-RateLimit-Reset": str(math.ceil(reset_at)),
        }
        return count <= self.limit, headers


# ---------------------------------------------------------------------------------------- faults
FAULT_KINDS = {"status", "429", "slow", "truncate", "drop", "html", "envelope", "missing_id",
               "duplicate_id", "total"}
BODY_FAULTS = {"envelope", "missing_id", "duplicate_id", "total"}
_SELECTORS = {"on", "first", "after", "every", "rate", "seed", "times", "path", "query"}
_PARAMS = {"status", "retry_after", "seconds", "fraction", "mode", "variant", "index", "delta", "message"}


class FaultRule:
    def __init__(self, spec: dict[str, Any]) -> None:
        if not isinstance(spec, dict) or "fault" not in spec:
            raise ValueError(f"fault rule must be an object with a 'fault' key, got {spec!r}")
        unknown = set(spec) - _SELECTORS - _PARAMS - {"fault"}
        if unknown:
            raise ValueError(f"fault rule {spec!r}: unknown keys {sorted(unknown)}")
        kind = str(spec["fault"])
        if kind.isdigit():  # "503" -> status 503, "429" stays its own kind
            if kind != "429":
                spec = {**spec, "status": int(kind)}
                kind = "status"
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {sorted(FAULT_KINDS)} or a status code")
        if kind == "status" and not 400 <= int(spec.get("status", 500)) <= 599:
            raise ValueError(f"fault rule {spec!r}: status must be 400..599")
        self.spec = dict(spec, fault=kind)
        self.kind = kind
        self.on = {int(n) for n in spec["on"]} if "on" in spec else None
        self.first = int(spec["first"]) if "first" in spec else None
        self.after = int(spec["after"]) if "after" in spec else None
        self.every = int(spec["every"]) if "every" in spec else None
        self.rate = float(spec["rate"]) if "rate" in spec else None
        self.seed = spec.get("seed", 0)
        self.times = int(spec["times"]) if "times" in spec else None
        self.path = spec.get("path")
        self.query = {str(k): str(v) for k, v in (spec.get("query") or {}).items()}
        self.seen = 0
        self.fired = 0

    def counts(self, path: str, query: dict[str, list[str]]) -> bool:
        if self.path and not (path == self.path or path.startswith(self.path.rstrip("/") + "/")):
            return False
        return all(query.get(k, [None])[-1] == v for k, v in self.query.items())

    def fires(self, n: int) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.on is not None and n not in self.on:
            return False
        if self.first is not None and n > self.first:
            return False
        if self.after is not None and n <= self.after:
            return False
        if self.every is not None and (self.every <= 0 or n % self.every):
            return False
        if self.rate is not None and random.Random(f"{self.seed}:{n}").random() >= self.rate:
            return False
        return True

    def describe(self) -> dict[str, Any]:
        return {**self.spec, "seen": self.seen, "fired": self.fired}


class FaultPlan:
    """An ordered list of rules with per-rule request counters (thread-safe)."""

    def __init__(self, spec: Any = None) -> None:
        self._lock = threading.Lock()
        self.rules: list[FaultRule] = []
        self.set(spec)

    @staticmethod
    def parse(spec: Any) -> list[FaultRule]:
        if spec is None or spec == "":
            return []
        if isinstance(spec, (str, bytes)):
            text = spec.decode() if isinstance(spec, bytes) else spec
            if text.startswith("@"):
                with open(text[1:], encoding="utf-8") as fh:
                    text = fh.read()
            try:
                spec = json.loads(text)
            except ValueError as exc:
                raise ValueError(f"fault spec is not valid JSON: {exc}") from None
        if isinstance(spec, dict):
            spec = spec.get("rules", [spec] if "fault" in spec else [])
        if not isinstance(spec, list):
            raise ValueError("fault spec must be a list of rules or {\"rules\": [...]}")
        return [FaultRule(r) for r in spec]

    def set(self, spec: Any) -> None:
        rules = self.parse(spec)
        with self._lock:
            self.rules = rules

    def reset_counters(self) -> None:
        with self._lock:
            for rule in self.rules:
                rule.seen = rule.fired = 0

    def pick(self, path: str, query: dict[str, list[str]]) -> FaultRule | None:
        chosen = None
        with self._lock:
            for rule in self.rules:
                if not rule.counts(path, query):
                    continue
                rule.seen += 1
                if chosen is None and rule.fires(rule.seen):
                    rule.fired += 1
                    chosen = rule
        return chosen

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.describe() for r in self.rules]


# ------------------------------------------------------------------------------------------ data
class _Collection:
    def __init__(self, name: str, records: list[dict[str, Any]]) -> None:
        self.name = name
        self.records = records
        self.by_id = {str(r["id"]): r for r in records}


class DummyJSONApp:
    """The routes, independent of the HTTP plumbing."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.collections = {r: _Collection(r, catalog[r]) for r in RESOURCES}
        self.carts_by_user: dict[int, list[dict[str, Any]]] = {}
        for cart in catalog.carts:
            self.carts_by_user.setdefault(cart.get("userId"), []).append(cart)
        self.categories = sorted({p.get("category") for p in catalog.products if p.get("category")})

    # --- parameter parsing (shared by every route) ---
    @staticmethod
    def _one(query: dict[str, list[str]], name: str) -> str | None | list[str]:
        values = query.get(name)
        if values is None:
            return None
        return values[0] if len(values) == 1 else values

    def parse_paging(self, query: dict[str, list[str]]) -> tuple[Any, Any]:
        out = []
        for name, default in (("limit", 30), ("skip", 0)):
            raw = self._one(query, name)
            if raw is None:
                out.append(default)
                continue
            if isinstance(raw, list) or math.isnan(js_number(raw)):
                raise ApiError(400, f"Invalid '{name}' - must be a number")
            out.append(js_parse_int(raw))  # None == NaN
        return out[0], out[1]

    def parse_delay(self, query: dict[str, list[str]]) -> float:
        raw = self._one(query, "delay")
        if raw is None:
            return 0.0
        value = math.nan if isinstance(raw, list) else js_number(raw)
        if math.isnan(value):
            raise ApiError(400, "Delay must be a number in milliseconds")
        if value > 5000:
            raise ApiError(400, "Delay cannot be greater than 5 seconds")
        if value < 0:
            raise ApiError(400, "Delay cannot be less than 0")
        return value / 1000.0

    @staticmethod
    def parse_select(query: dict[str, list[str]]) -> list[str] | None:
        values = query.get("select")
        if not values or not any(values):
            return None
        keys = ["id"]
        for value in values:
            for key in value.split(","):
                key = key.strip()
                if key and key not in keys:
                    keys.append(key)
        return keys

    def parse_sort(self, query: dict[str, list[str]]) -> tuple[str | None, bool]:
        sort_by = self._one(query, "sortBy")
        if not sort_by:
            return None, False
        order = self._one(query, "order") or "asc"
        order = order.lower() if isinstance(order, str) else ""
        if order not in ("asc", "desc"):
            raise ApiError(400, "Order can be: 'asc' or 'desc'")
        return (sort_by if isinstance(sort_by, str) else None), order == "desc"

    # --- list helpers ---
    @staticmethod
    def _sorted(items: list[dict[str, Any]], key: str, desc: bool) -> list[dict[str, Any]]:
        def cmp(a: dict, b: dict) -> int:
            x, y = a.get(key), b.get(key)
            numeric = (int, float)
            if isinstance(x, bool) or isinstance(y, bool):
                return 0
            if not ((isinstance(x, numeric) and isinstance(y, numeric))
                    or (isinstance(x, str) and isinstance(y, str))):
                return 0
            if x < y:
                return 1 if desc else -1
            if x > y:
                return -1 if desc else 1
            return 0

        return sorted(items, key=functools.cmp_to_key(cmp))

    @staticmethod
    def _select(item: dict[str, Any], keys: list[str] | None) -> dict[str, Any]:
        if keys is None:
            return item
        return {k: item[k] for k in keys if k in item}

    def envelope(self, name: str, items: list[dict[str, Any]], query: dict[str, list[str]],
                 *, selectable: bool = True, sortable: bool = True) -> dict[str, Any]:
        limit, skip = self.parse_paging(query)
        sort_by, desc = self.parse_sort(query)  # validated even where sorting is ignored (carts)
        select = self.parse_select(query) if selectable else None
        total = len(items)
        if sortable and sort_by:
            items = self._sorted(items, sort_by, desc)
        if skip is not None and skip > 0:
            items = items[skip:]
        if limit is None:
            items = []
        elif limit != 0:
            items = items[:limit]
        if select is not None:
            items = [self._select(i, select) for i in items]
        return {name: items, "total": total, "skip": skip, "limit": len(items)}

    def _q(self, query: dict[str, list[str]]) -> str:
        bad = [k for k in query if k.startswith("q[")]
        raw = self._one(query, "q")
        if bad or isinstance(raw, list):
            raise ApiError(400, "Invalid 'q' - must be a string")
        return (raw or "").lower()

    def _user(self, raw_id: str) -> dict[str, Any]:
        if math.isnan(js_number(raw_id)):
            raise ApiError(400, f"Invalid user id '{raw_id}'")
        user = self.collections["users"].by_id.get(raw_id)
        if user is None:
            raise ApiError(404, f"User with id '{raw_id}' not found")
        return user

    def _by_id(self, resource: str, raw_id: str) -> dict[str, Any]:
        if resource == "users":
            return self._user(raw_id)
        record = self.collections[resource].by_id.get(raw_id)
        if record is None:
            raise ApiError(404, f"{SINGULAR[resource].capitalize()} with id '{raw_id}' not found")
        return record

    # --- routing ---
    def route(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any] | None:
        """(status, JSON payload) or None when no route matches (HTML 404)."""
        parts = [unquote(p) for p in path.split("/")[1:]]
        if not parts or parts[0] not in PREFIXES:
            if parts == ["test"]:
                return 200, {"status": "ok", "method": "GET"}
            return None
        resource = PREFIXES[parts[0]]
        rest = parts[1:]
        records = self.collections[resource].records
        if not rest:
            return 200, self.envelope(resource, records, query, selectable=resource != "carts",
                                      sortable=resource != "carts")
        if resource == "users":
            if rest == ["search"]:
                q = self._q(query)
                hits = [u for u in records if any(q in str(u.get(k, "")).lower()
                                                  for k in ("firstName", "lastName", "email", "username"))]
                return 200, self.envelope("users", hits, query)
            if rest == ["filter"]:
                key, value = self._one(query, "key"), self._one(query, "value")
                hits = [u for u in records if isinstance(key, str) and _dig(u, key) == value]
                return 200, self.envelope("users", hits, query)
            if len(rest) == 2 and rest[1] == "carts":
                user = self._user(rest[0])
                carts = self.carts_by_user.get(user["id"], [])
                return 200, self.envelope("carts", carts, query, selectable=False, sortable=False)
        if resource == "products":
            if rest == ["search"]:
                q = self._q(query)
                hits = [p for p in records if q in str(p.get("title", "")).lower()
                        or q in str(p.get("description", "")).lower()]
                return 200, self.envelope("products", hits, query)
            if rest == ["categories"]:
                return 200, [{"slug": s, "name": " ".join(w.capitalize() for w in s.split("-")),
                              "url": f"https://dummyjson.com/products/category/{s}"} for s in self.categories]
            if rest == ["category-list"]:
                return 200, list(self.categories)
            if len(rest) == 2 and rest[0] == "category":
                slug = rest[1].lower()
                hits = [p for p in records if str(p.get("category", "")).lower() == slug]
                return 200, self.envelope("products", hits, query)
        if resource == "carts" and len(rest) == 2 and rest[0] == "user":
            user = self._user(rest[1])
            carts = self.carts_by_user.get(user["id"], [])
            return 200, self.envelope("carts", carts, query, selectable=False, sortable=False)
        if len(rest) == 1:
            record = self._by_id(resource, rest[0])
            if resource != "carts":
                record = self._select(record, self.parse_select(query))
            return 200, record
        return None


def _dig(record: dict[str, Any], dotted: str) -> str | None:
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value) if not isinstance(value, (int, float)) \
        else str(value)


# -------------------------------------------------------------------------------------- HTTP layer
def _html_404(method: str, path: str) -> bytes:
    safe = path.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n'
            f"</head>\n<body>\n<pre>Cannot {method} {safe}</pre>\n</body>\n</html>\n").encode()


def _etag(body: bytes) -> str:
    digest = base64.b64encode(hashlib.sha1(body).digest()).decode()[:27]
    return f'W/"{len(body):x}-{digest}"'


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "shopstream-dummyjson/1"
    timeout = 60  # idle keep-alive connections

    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body are separate writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms
        # to every keep-alive response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.owner.access_log:
            sys.stderr.write(f"{self.address_string()} - [{self.log_date_time_string()}] {format % args}\n")

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    # --- plumbing ---
    def _send(self, status: int, body: bytes, content_type: str | None = JSON_TYPE,
              headers: dict[str, str] | None = None, *, compress: bool = True) -> None:
        owner = self.server.owner
        extra = dict(headers or {})
        if (compress and owner.gzip_level and len(body) > 1024
                and "gzip" in (self.headers.get("Accept-Encoding") or "")):
            body = gzip.compress(body, compresslevel=owner.gzip_level, mtime=0)
            extra["Content-Encoding"] = "gzip"
            extra["Vary"] = "Accept-Encoding"
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for key, value in extra.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        owner._count(status)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _client_key(self) -> str:
        forwarded = self.headers.get("X-Forwarded-For")
        if forwarded:
            return forwarded.split(",")[0].strip()
        return self.client_address[0]

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        path, raw_query = split.path or "/", split.query
        query = parse_qs(raw_query, keep_blank_values=True)
        try:
            if path.startswith("/__"):
                self._admin(method, path, query)
                return
            self._serve(method, path, raw_query, query)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # the contract: any unexpected failure is a JSON 500
            log.exception("unexpected error serving %s", self.path)
            try:
                self._send(500, _dumps({"message": f"{type(exc).__name__}: {exc}"}))
            except OSError:
                self.close_connection = True

    def _serve(self, method: str, path: str, raw_query: str, query: dict[str, list[str]]) -> None:
        owner = self.server.owner
        owner._count(None)
        headers: dict[str, str] = {}
        limiter = owner.rate_limiter
        if limiter is not None:
            allowed, headers = limiter.hit(self._client_key())
            if not allowed:
                owner._count_event("rate_limited")
                self._send(429, _dumps({"message": RATE_LIMIT_MESSAGE}),
                           headers={**headers, "Retry-After": str(math.ceil(limiter.window))})
                return
        origin = self.headers.get("Origin")
        if origin:
            headers.update({"Access-Control-Allow-Origin": origin,
                            "Access-Control-Allow-Credentials": "true", "Vary": "Origin"})

        fault = owner.faults.pick(path, query) if method in ("GET", "HEAD") else None
        if fault is not None:
            owner._count_event(f"fault:{fault.kind}")
            if fault.kind == "drop":
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if fault.kind == "slow":
                owner._stopping.wait(float(fault.spec.get("seconds", 2.0)))
            elif fault.kind == "429":
                retry_after = fault.spec.get("retry_after", 10)
                self._send(429, _dumps({"message": RATE_LIMIT_MESSAGE}),
                           headers={**headers, "Retry-After": str(retry_after)})
                return
            elif fault.kind == "status":
                status = int(fault.spec.get("status", 500))
                extra = dict(headers)
                if "retry_after" in fault.spec:
                    extra["Retry-After"] = str(fault.spec["retry_after"])
                message = fault.spec.get("message", f"injected fault: HTTP {status}")
                self._send(status, _dumps({"message": message}), headers=extra)
                return
            elif fault.kind == "html":
                self._send(200, b"<html><body><h1>Service temporarily unavailable</h1></body></html>",
                           HTML_TYPE, headers)
                return

        if method not in ("GET", "HEAD"):
            self._send(404, _html_404(method, path), HTML_TYPE, headers)
            return
        if path != "/" and path.endswith("/"):
            location = path[:-1] + (f"?{raw_query}" if raw_query else "")
            self._send(301, f"Moved Permanently. Redirecting to {location}".encode(),
                       "text/plain; charset=utf-8", {**headers, "Location": location})
            return
        if path == "/":
            self._send(200, b"<html><body><h1>DummyJSON-compatible local server (ShopStream)</h1>"
                            b"<p>/users /products /carts</p></body></html>", HTML_TYPE, headers)
            return
        try:
            delay = owner.app.parse_delay(query) if path.split("/")[1] in PREFIXES else 0.0
            result = owner.app.route(path, query)
        except ApiError as err:
            self._send(err.status, _dumps({"message": err.message}), headers=headers)
            return
        if result is None:
            self._send(404, _html_404(method, path), HTML_TYPE, headers)
            return
        status, payload = result
        if delay:
            owner._stopping.wait(delay)
        if fault is not None and fault.kind in BODY_FAULTS:
            payload = _mutate(payload, fault)
        body = _dumps(payload)
        if fault is not None and fault.kind == "truncate":
            self._send_truncated(body, fault, headers)
            return
        etag = _etag(body)
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            owner._count(304)
            return
        self._send(status, body, headers={**headers, "ETag": etag})

    def _send_truncated(self, body: bytes, fault: FaultRule, headers: dict[str, str]) -> None:
        cut = body[: max(1, int(len(body) * float(fault.spec.get("fraction", 0.5))))]
        mode = fault.spec.get("mode", "cut")
        self.send_response(200)
        self.send_header("Content-Type", JSON_TYPE)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body) if mode == "cut" else len(cut)))
        if mode == "cut":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(cut)
        self.wfile.flush()
        self.server.owner._count(200)
        if mode == "cut":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # --- admin ---
    def _admin(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        owner = self.server.owner
        if not owner.admin:
            self._send(404, _html_404(method, path), HTML_TYPE)
            return
        try:
            if path == "/__health" and method == "GET":
                self._send(200, _dumps(owner.health()))
            elif path == "/__faults" and method == "GET":
                if "spec" in query:
                    owner.set_faults(query["spec"][-1])
                self._send(200, _dumps({"rules": owner.faults.describe()}))
            elif path == "/__faults" and method in ("POST", "PUT"):
                owner.set_faults(self._read_body() or None)
                self._send(200, _dumps({"rules": owner.faults.describe()}))
            elif path == "/__faults" and method == "DELETE":
                owner.set_faults(None)
                self._send(200, _dumps({"rules": []}))
            elif path == "/__stats" and method == "GET":
                self._send(200, _dumps(owner.stats()))
            elif path == "/__reset" and method == "POST":
                owner.reset()
                self._send(200, _dumps(owner.stats()))
            elif path == "/__config" and method == "POST":
                conf = json.loads(self._read_body() or b"{}")
                owner.configure(**{k: conf[k] for k in ("rate_limit", "rate_window") if k in conf})
                self._send(200, _dumps(owner.health()))
            else:
                self._send(404, _html_404(method, path), HTML_TYPE)
        except (ValueError, TypeError) as exc:
            self._send(400, _dumps({"message": str(exc)}))


def _mutate(payload: Any, fault: FaultRule) -> Any:
    """Apply a body fault to an envelope (a shallow copy; shared records are never modified)."""
    if not isinstance(payload, dict):
        return payload
    name = next((r for r in RESOURCES if isinstance(payload.get(r), list)), None)
    if name is None:  # a single record
        if fault.kind == "missing_id":
            return {k: v for k, v in payload.items() if k != "id"}
        return payload
    out = dict(payload)
    items = list(out[name])
    if fault.kind == "total":
        out["total"] = out["total"] + int(fault.spec.get("delta", 1))
    elif fault.kind == "missing_id" and items:
        index = min(int(fault.spec.get("index", 0)), len(items) - 1)
        items[index] = {k: v for k, v in items[index].items() if k != "id"}
    elif fault.kind == "duplicate_id" and len(items) >= 2:
        items[1] = {**items[1], "id": items[0]["id"]}
    elif fault.kind == "envelope":
        variant = fault.spec.get("variant", "rename")
        if variant == "rename":
            out = {"items": items, "total": out["total"], "skip": out["skip"], "limit": out["limit"]}
            return out
        if variant == "total_type":
            out["total"] = str(out["total"])
        elif variant == "no_total":
            out.pop("total")
        elif variant == "limit_mismatch":
            out["limit"] = out["limit"] + 1
        elif variant == "skip_mismatch":
            out["skip"] = (out["skip"] or 0) + 1
        elif variant == "list":
            return items
        else:
            raise ValueError(f"unknown envelope variant {variant!r}")
    out[name] = items
    return out


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], owner: DummyJSONServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, socket.timeout)):
            return
        super().handle_error(request, client_address)


# ------------------------------------------------------------------------------------------ server
def resolve_catalog(
    data_dir: str | os.PathLike[str] | None = None,
    generate: str | dict[str, int] | None = None,
    seed: int = DEFAULT_SEED,
) -> Catalog:
    """Snapshot folder when given (must exist), generated catalogue when sizes are given, else the
    default snapshot folder when present, else a generated catalogue of the snapshot's sizes."""
    if data_dir is not None:
        if not has_snapshot(data_dir):
            raise FileNotFoundError(f"{data_dir}: no users.json, products.json and carts.json there")
        return load_snapshot(data_dir)
    if generate is not None:
        sizes = parse_sizes(generate) if isinstance(generate, str) else {**SNAPSHOT_SIZES, **generate}
        return generate_catalog(seed=seed, **sizes)
    default = snapshot_dir()
    if has_snapshot(default):
        return load_snapshot(default)
    return generate_catalog(seed=seed)


class DummyJSONServer:
    """The HTTP server in a background thread. ``with DummyJSONServer(...) as base_url: ...``."""

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        generate: str | dict[str, int] | None = None,
        seed: int = DEFAULT_SEED,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: int | None = 100,
        rate_window: float = 10.0,
        faults: Any = None,
        clock: Callable[[], float] = time.time,
        gzip_level: int = 1,
        access_log: bool = False,
        admin: bool = True,
    ) -> None:
        self.catalog = catalog if catalog is not None else resolve_catalog(data_dir, generate, seed)
        self.app = DummyJSONApp(self.catalog)
        self.host = host
        self.requested_port = port
        self.clock = clock
        self.rate_limiter: FixedWindowRateLimit | None = None
        self.configure(rate_limit=rate_limit, rate_window=rate_window)
        self.faults = FaultPlan(faults)
        self.gzip_level = int(gzip_level)
        self.access_log = access_log
        self.admin = admin
        self._stopping = threading.Event()
        self._stats_lock = threading.Lock()
        self._stats: dict[str, Any] = {}
        self.reset_stats()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- configuration at runtime ---
    def configure(self, *, rate_limit: int | None = None, rate_window: float | None = None) -> None:
        window = float(rate_window if rate_window is not None else
                       (self.rate_limiter.window if self.rate_limiter else 10.0))
        if window <= 0:
            raise ValueError("rate_window must be > 0")
        self.rate_limiter = FixedWindowRateLimit(rate_limit, window, self.clock) if rate_limit else None

    def set_faults(self, spec: Any) -> None:
        """Replace the fault rules (counters start from zero)."""
        self.faults.set(spec)

    def clear_faults(self) -> None:
        self.faults.set(None)

    def reset_stats(self) -> None:
        with self._stats_lock:
            self._stats = {"requests": 0, "responses": {}, "events": {}}

    def reset(self) -> None:
        self.reset_stats()
        self.faults.reset_counters()
        if self.rate_limiter is not None:
            self.rate_limiter.reset()

    def _count(self, status: int | None) -> None:
        with self._stats_lock:
            if status is None:
                self._stats["requests"] += 1
            else:
                key = str(status)
                self._stats["responses"][key] = self._stats["responses"].get(key, 0) + 1

    def _count_event(self, name: str) -> None:
        with self._stats_lock:
            self._stats["events"][name] = self._stats["events"].get(name, 0) + 1

    def stats(self) -> dict[str, Any]:
        """{"requests": data requests seen, "responses": {status: n}, "events": {"fault:drop": n, ...}}."""
        with self._stats_lock:
            return json.loads(json.dumps(self._stats))

    def health(self) -> dict[str, Any]:
        limiter = self.rate_limiter
        return {"status": "ok", "source": self.catalog.source, "sizes": self.catalog.sizes,
                "rate_limit": limiter.limit if limiter else None,
                "rate_window": limiter.window if limiter else None,
                "faults": len(self.faults.rules)}

    # --- lifecycle ---
    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "", "::") else "127.0.0.1"
        return f"http://{host}:{self.port}"

    def bind(self) -> str:
        self._httpd = _HTTPServer((self.host, self.requested_port), self)
        return self.url

    def start(self) -> str:
        """Bind and serve in a daemon thread; return the base URL."""
        if self._httpd is None:
            self.bind()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"dummyjson-server-{self.port}", daemon=True)
        self._thread.start()
        return self.url

    def serve_forever(self) -> None:
        if self._httpd is None:
            self.bind()
        self._httpd.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            if self._thread is not None:
                self._httpd.shutdown()
                self._thread.join(timeout=5)
            self._httpd.server_close()
            self._httpd = None
            self._thread = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shopstream.dummyjson_stub.server",
        description="Local DummyJSON-compatible API (/users, /products, /carts) with fault injection.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=58080)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", metavar="DIR", help="folder with users.json, products.json, carts.json")
    source.add_argument("--generate", metavar="SIZES",
                        help="generated catalogue, e.g. users=200,products=200,carts=200")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="generator seed (default %(default)s)")
    parser.add_argument("--rate-limit", type=int, default=100,
                        help="requests per window per client IP; 0 disables (default %(default)s)")
    parser.add_argument("--rate-window", type=float, default=10.0, help="seconds (default %(default)s)")
    parser.add_argument("--faults", default=os.environ.get(FAULTS_ENV),
                        help=f"fault spec, JSON or @file (default ${FAULTS_ENV})")
    parser.add_argument("--gzip-level", type=int, default=1, help="0 disables gzip (default %(default)s)")
    parser.add_argument("--access-log", action="store_true", help="log every request to stderr")
    parser.add_argument("--no-admin", action="store_true", help="disable the /__* admin endpoints")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    try:
        catalog = resolve_catalog(args.data, args.generate, args.seed)
        server = DummyJSONServer(catalog, host=args.host, port=args.port, rate_limit=args.rate_limit or None,
                                 rate_window=args.rate_window, faults=args.faults, gzip_level=args.gzip_level,
                                 access_log=args.access_log, admin=not args.no_admin)
        url = server.bind()
    except OSError as exc:
        if getattr(exc, "errno", None) in (98, 48):  # EADDRINUSE (Linux, macOS)
            print(f"error: cannot listen on {args.host}:{args.port}: the port is already in use", file=sys.stderr)
            return 3
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def _stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server._httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    limiter = server.rate_limiter
    log.info("DummyJSON-compatible server on %s (data: %s, sizes %s, rate limit %s, %d fault rule(s))",
             url, catalog.source, catalog.sizes,
             f"{limiter.limit}/{limiter.window:g}s" if limiter else "off", len(server.faults.rules))
    try:
        server.serve_forever()
    finally:
        server._stopping.set()
        if server._httpd is not None:
            server._httpd.server_close()
        log.info("DummyJSON-compatible server stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
