"""The DummyJSON read routes, independent of HTTP: a path and its query in, ``(status, JSON payload)`` out.

Implements the GET contract of /users, /products and /carts (CONTRACT.md in the shared DummyJSON folder):
list and by-id routes (plural and singular prefixes), the ``{<resource>, total, skip, limit}`` envelope
(default limit 30, ``limit=0`` means all, ``limit`` echoes the number returned, past-the-end gives an empty
200), ``select`` (top-level keys, ``id`` first; ignored on carts), ``sortBy``/``order``, ``delay``,
search/filter/category routes and the documented 400/404 JSON errors (:class:`ApiError`). Query values are
parsed the way DummyJSON's JavaScript does (``Number()``, ``parseInt()``), so odd values answer alike.

What HTTP adds (HTML 404 for unknown paths, 301 for a trailing slash, gzip, ETags, the rate limit, faults)
lives in :mod:`shopstream.dummyjson_stub.http_handler`.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any
from urllib.parse import unquote

from shopstream.dummyjson_stub.catalog import RESOURCES, Catalog

SINGULAR = {"users": "user", "products": "product", "carts": "cart"}
PREFIXES = {"users": "users", "user": "users", "products": "products", "product": "products",
            "carts": "carts", "cart": "carts"}

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
    """A documented DummyJSON error: answered as ``{"message": message}`` with ``status`` (400 or 404)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ---------------------------------------------------------------------------------------- routes
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
