"""What a bronze load reports: per-topic counts, one load's result, the merge over the mapped load tasks, and the
one log format both are written in."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger("shopstream.bronze")

# The per-topic counts that add up over partitions, loads and topics.
COUNT_KEYS = ("read", "inserted", "already_present", "quarantined", "remaining_lag")
# The per-load counters that add up over loads.
LOAD_COUNTERS = ("batches", "safety_net_batches", "rejected_by_postgres", "offset_conflicts", "db_reconnects")


@dataclass
class TopicCounts:
    read: int = 0  # messages of committed batches (= inserted + already_present + quarantined)
    inserted: int = 0
    already_present: int = 0  # stored by an earlier load (UNIQUE safety net)
    quarantined: int = 0
    remaining_lag: int = 0  # high watermark at the end - stored next offset, over the topic's partitions
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)


@dataclass
class LoadResult:
    topics: dict[str, TopicCounts]
    partitions: list[dict[str, Any]]
    consumer_group: str
    stopped_by: str  # drained | max_messages | max_seconds
    seconds: float
    batches: int = 0
    safety_net_batches: int = 0  # batches redone through staging + ON CONFLICT DO NOTHING
    rejected_by_postgres: int = 0  # rows isolated by bisection after PostgreSQL refused a batch
    offset_conflicts: int = 0  # times another loader had moved one of our partitions (CAS lost)
    db_reconnects: int = 0

    def totals(self) -> dict[str, int]:
        return _totals(vars(c) for c in self.topics.values())

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["totals"] = self.totals()
        return out


def _totals(topic_counts: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    totals = dict.fromkeys(COUNT_KEYS, 0)
    for counts in topic_counts:
        for k in COUNT_KEYS:
            totals[k] += counts[k]
    return totals


def merge_results(results: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Totals per topic (and overall) over several LoadResult.as_dict() outputs (e.g. the mapped tasks)."""
    topics: dict[str, dict[str, Any]] = {}
    extra = Counter()
    n = 0
    for r in results:
        n += 1
        for topic, c in r["topics"].items():
            t = topics.setdefault(topic, dict.fromkeys(COUNT_KEYS, 0) | {"quarantined_by_reason": {}})
            for k in COUNT_KEYS:
                t[k] += c[k]
            for reason, m in c.get("quarantined_by_reason", {}).items():
                t["quarantined_by_reason"][reason] = t["quarantined_by_reason"].get(reason, 0) + m
        for k in LOAD_COUNTERS:
            extra[k] += r.get(k, 0)
    return {"loads": n, "topics": dict(sorted(topics.items())), "totals": _totals(topics.values()), **dict(extra)}


def log_load(result: LoadResult) -> None:
    """One load: how it ended, then a line per topic."""
    log.info("bronze load %s in %.1f s: %d batches, %d via safety net, %d offset conflicts",
             result.stopped_by, result.seconds, result.batches, result.safety_net_batches,
             result.offset_conflicts)
    _log_topics({topic: vars(c) for topic, c in result.topics.items()})


def log_merged(merged: dict[str, Any]) -> None:
    """The merge of several loads (merge_results): the totals, then a line per topic."""
    t = merged["totals"]
    log.info("bronze totals over %d loads: read %d, inserted %d, already present %d, quarantined %d, "
             "remaining lag %d", merged["loads"], t["read"], t["inserted"], t["already_present"],
             t["quarantined"], t["remaining_lag"])
    _log_topics(merged["topics"])


def _log_topics(topics: Mapping[str, Mapping[str, Any]]) -> None:
    for topic, c in sorted(topics.items()):
        log.info("  %-24s read %9d  inserted %9d  already present %8d  quarantined %6d  remaining lag %8d%s",
                 topic, c["read"], c["inserted"], c["already_present"], c["quarantined"], c["remaining_lag"],
                 f"  {c['quarantined_by_reason']}" if c["quarantined_by_reason"] else "")
