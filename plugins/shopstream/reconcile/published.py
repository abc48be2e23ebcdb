"""What extract published in given hours (the `published` column), for hours no asset event recorded.

On the scheduled path the counts come with the asset events: the extract tasks record them, the bronze run
carries them (`shopstream.reconcile.windows`). Hours named by hand - `python -m shopstream.reconcile --hour`,
or a dbt run with conf `{"reconcile_hours": [...]}` - have no such record, and `published_counts` re-derives
them: the DummyJSON catalogue fetched now, run through the extract derivation (`shopstream.extract`) with the
default settings or the run's `seed`/`order_rate`/`events_per_hour`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from shopstream.hours import hour_iso, to_utc_hour
from shopstream.topics import TOPICS


def published_counts(hours: Iterable[datetime], dummyjson: Any, settings: Any = None) -> dict[str, dict[str, int]]:
    """{hour: {base topic / 'order_items': distinct keys}} that extract published in `hours`.

    Today re-derived: the catalogue fetched again through `dummyjson` (a DummyJSONClient; the caller opens and
    closes it), then `expected_from_derivation`. That is right only while DummyJSON still serves the catalogue
    the hour was extracted from and the hour was produced with `settings`. Reading what extract recorded as
    published instead (its asset-event extras, Kafka offsets; issue #13) is a change of this function: its two
    callers (`shopstream.reconcile.task`, `shopstream.reconcile.cli`) use the result as it is and change at most
    in what they pass in (the source to read instead of a DummyJSON client).
    """
    return expected_from_derivation(dummyjson.fetch_catalog(), hours, settings)


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
