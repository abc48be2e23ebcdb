"""What extract published in given hours (the `published` column): what it *recorded*, never a re-derivation.

The extract task records, per logical hour and Kafka topic, the messages it delivered and their distinct keys
(orders: and items) in `ops.extract_published` (`shopstream.ops`); the bronze Asset events carry the message
counts too (`shopstream.reconcile.windows`). `expected_counts` reads the record for any hour - scheduled, named
by hand (`python -m shopstream.reconcile --hour`, a dbt run with conf `{"reconcile_hours": [...]}`), produced by
the generator or by anything else that extract published - and falls back to the asset events' counts for an
hour the table does not hold. An hour nothing recorded has no `published` entry: its kafka->bronze check is
skipped (the table shows `-`) instead of comparing with what the generator would produce today, which raised
false alarms for every hour produced otherwise (another catalogue, other settings, hand-made messages).

`expected_from_derivation` is the generator's side, kept for the tests' oracle: the counts the extract stage
*would* publish from a catalogue.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from shopstream.hours import hour_iso, to_utc_hour
from shopstream.topics import TOPICS


def expected_counts(conn: Any, hours: Iterable[datetime], topics: Mapping[str, str],
                    asset_events: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, dict[str, int]]:
    """{hour: {base topic / 'order_items': distinct keys}} extract recorded as published in `hours` on the Kafka
    topics `topics` ({base: name}): `ops.extract_published` (psycopg 3 connection `conn`), else the messages of
    the asset events' record (`asset_events`: {hour: {base topic: messages}}) per hour and topic."""
    from shopstream.ops import published_counts

    recorded = published_counts(conn, hours, topics)
    for hour, counts in (asset_events or {}).items():
        for base, n in counts.items():
            recorded.setdefault(hour, {}).setdefault(base, int(n))
    return recorded


def expected_from_derivation(catalog: Mapping[str, Sequence[Mapping[str, Any]]], hours: Iterable[datetime],
                             settings: Any = None) -> dict[str, dict[str, int]]:
    """{hour: {base topic / 'order_items': distinct keys}} the extract stage publishes (deterministic)."""
    from shopstream.extract.derive import DEFAULT_SETTINGS
    from shopstream.extract.messages import Snapshot, build_messages

    snapshot = Snapshot(users=catalog.get("users", ()), products=catalog.get("products", ()),
                        carts=catalog.get("carts", ()))
    out: dict[str, dict[str, int]] = {}
    for hour in sorted({to_utc_hour(h) for h in hours}):
        counts: dict[str, int] = {}
        for topic in TOPICS:
            msgs = build_messages(topic, snapshot, hour, settings or DEFAULT_SETTINGS)
            counts[topic] = len({m.key for m in msgs})
            if topic == "orders":
                counts["order_items"] = sum(len(json.loads(m.value)["items"]) for m in msgs)
        out[hour_iso(hour)] = counts
    return out
