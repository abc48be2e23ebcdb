"""PII policy for the `customers` topic: what leaves the extractor of a DummyJSON user.

Policy (schema_version 1) - *drop, never mask*:

* Removed entirely before anything is serialised, logged or published:
  - credentials: `password`;
  - government ids: `ssn`, `ein`;
  - payment data: `bank.cardNumber`, `bank.iban`, `bank.cardExpire`;
  - device / network identifiers: `ip`, `macAddress`;
  - `crypto.wallet`.
* Everything else is kept as served (names, `email`, `phone`, address, `username`, avatar `image`, ...):
  silver needs `id`, `firstName`, `lastName`, `email`, and the rest is ordinary customer-profile data
  that the bronze layer keeps "as received".

Why drop rather than mask to the last 4 characters: nothing downstream uses these fields, a masked
value still leaks part of the secret, and a missing key cannot be mistaken for real data. The
remaining non-secret parts of the nested objects (`bank.cardType`, `bank.currency`, `crypto.coin`,
`crypto.network`) stay.

This is a deny-list applied to a copy of each user: fields DummyJSON adds later pass through, so
extend `DROPPED_FIELDS` (and bump `schema_version`) when the source schema grows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

PII_POLICY_VERSION = 1

#: Dotted paths removed from every user (nested paths address keys of nested objects).
DROPPED_FIELDS: tuple[str, ...] = (
    "password",
    "ssn",
    "ein",
    "bank.cardNumber",
    "bank.iban",
    "bank.cardExpire",
    "ip",
    "macAddress",
    "crypto.wallet",
)


def scrub_user(user: Mapping[str, Any]) -> dict[str, Any]:
    """`user` without the `DROPPED_FIELDS` paths (missing paths are fine). The input is never modified:
    the record and every object on a dropped path are copied; other nested values are shared with it."""
    out = dict(user)
    copied = {id(out)}
    for path in DROPPED_FIELDS:
        *parents, leaf = path.split(".")
        node: dict[str, Any] | None = out
        for part in parents:
            child = node.get(part)
            if not isinstance(child, Mapping):
                node = None
                break
            if id(child) not in copied:  # copy-on-write
                child = dict(child)
                node[part] = child
                copied.add(id(child))
            node = child
        if node is not None:
            node.pop(leaf, None)
    return out


def scrub_users(users: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [scrub_user(u) for u in users]


def sensitive_values(user: Mapping[str, Any]) -> list[str]:
    """The string values `scrub_user` removes from `user` (for tests and audits)."""
    found: list[str] = []
    for path in DROPPED_FIELDS:
        node: Any = user
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, str) and node:
            found.append(node)
    return found
