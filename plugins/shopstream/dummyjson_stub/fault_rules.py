"""Deterministic fault injection for the DummyJSON stand-in: the rule language, the per-rule counters that
decide which request a rule hits, and the body faults applied to a response.

Named ``fault_rules`` so it does not read as :mod:`shopstream.faults` (the pipeline's own configured fault
checkpoints); this module only decides how the stand-in server misbehaves towards its client.

A spec is a JSON list of rules, or ``{"rules": [..]}``. Each rule has a ``fault`` and optional selectors,
all of which must hold (no selector: every request):

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

The HTTP handler (:mod:`shopstream.dummyjson_stub.http_handler`) asks :meth:`FaultPlan.pick` which rule
fires for a request and carries out the transport faults (status, 429, slow, truncate, drop, html); the body
faults (:data:`BODY_FAULTS`) change the JSON payload through :func:`apply_body_fault`.

Set faults with the server's ``faults=`` argument, ``--faults JSON|@file`` or ``$SHOPSTREAM_DUMMYJSON_FAULTS``
(:data:`FAULTS_ENV`), or on a running server through the admin endpoints (``/__faults``).
"""

from __future__ import annotations

import json
import random
import threading
from typing import Any

from shopstream.dummyjson_stub.catalog import RESOURCES

FAULTS_ENV = "SHOPSTREAM_DUMMYJSON_FAULTS"
FAULT_KINDS = {"status", "429", "slow", "truncate", "drop", "html", "envelope", "missing_id",
               "duplicate_id", "total"}
BODY_FAULTS = {"envelope", "missing_id", "duplicate_id", "total"}
_SELECTORS = {"on", "first", "after", "every", "rate", "seed", "times", "path", "query"}
_PARAMS = {"status", "retry_after", "seconds", "fraction", "mode", "variant", "index", "delta", "message"}


class FaultRule:
    """One rule of a spec, validated; ``seen`` counts the requests it matched, ``fired`` those it hit."""

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


def apply_body_fault(payload: Any, fault: FaultRule) -> Any:
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
