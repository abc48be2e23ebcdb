"""Offsets and partition planning for the bronze loader (pure, no I/O).

- ``plan_partition``: where a partition's load starts and where this run stops (the high watermark seen at
  start: a bounded drain, so every run ends and its scope is clear).
- ``split_groups``: topic-partitions split into N groups of similar pending work (one mapped Airflow task
  per group).
- ``format_tp``/``parse_tp``: the "topic:partition" text form used on the CLI and in XCom.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PartitionPlan:
    topic: str
    partition: int
    low: int  # first offset still in Kafka
    high: int  # high watermark at start = this run's target (exclusive)
    stored: int | None  # next_offset in bronze.consumer_offsets, None when the partition was never loaded
    start: int  # first offset this run reads
    note: str | None = None  # something an operator should know (data lost to retention, log truncated)

    @property
    def target(self) -> int:
        return self.high

    @property
    def pending(self) -> int:
        return max(0, self.high - self.start)


def plan_partition(topic: str, partition: int, stored: int | None, low: int, high: int) -> PartitionPlan:
    """Start at the stored offset (PostgreSQL is the source of truth), else at the beginning of the log."""
    if low < 0 or high < low:
        raise ValueError(f"{topic}:{partition}: bad watermarks low={low} high={high}")
    note = None
    if stored is None:
        start = low
    elif stored < low:
        # Kafka deleted [stored, low) before it was loaded (retention): nothing to read there any more.
        note = f"offsets {stored}..{low - 1} are no longer in Kafka (retention); they were never loaded"
        start = low
    elif stored > high:
        note = (f"stored offset {stored} is beyond the end of the log ({high}): topic re-created or log "
                f"truncated? Nothing is loaded until the log passes {stored}")
        start = stored
    else:
        start = stored
    return PartitionPlan(topic, partition, low, high, stored, start, note)


def split_groups(items: Iterable[tuple[str, int, int]], n_groups: int) -> list[list[str]]:
    """Split (topic, partition, pending) into at most n_groups non-empty groups of similar total pending.

    Longest-processing-time first: biggest partitions first, each to the currently lightest group (ties: the
    lower group index). Deterministic for the same input. Each group is sorted; groups are listed in order.
    """
    if n_groups < 1:
        raise ValueError("n_groups must be >= 1")
    ordered = sorted(items, key=lambda it: (-max(0, it[2]), it[0], it[1]))
    if not ordered:
        return []
    n = min(n_groups, len(ordered))
    groups: list[list[tuple[str, int]]] = [[] for _ in range(n)]
    loads = [0] * n
    counts = [0] * n
    for topic, partition, pending in ordered:
        i = min(range(n), key=lambda g: (loads[g], counts[g], g))
        groups[i].append((topic, partition))
        loads[i] += max(0, pending)
        counts[i] += 1
    return [[format_tp(t, p) for t, p in sorted(g)] for g in groups if g]


def format_tp(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


def parse_tp(text: str) -> tuple[str, int]:
    """'orders:2' -> ('orders', 2). Kafka topic names cannot contain ':'."""
    topic, sep, part = text.strip().rpartition(":")
    if not sep or not topic or not part.isdigit():
        raise ValueError(f"not a topic:partition: {text!r}")
    return topic, int(part)


def parse_tps(texts: Sequence[str] | str) -> list[tuple[str, int]]:
    if isinstance(texts, str):
        texts = [t for t in texts.split(",") if t.strip()]
    out = [parse_tp(t) for t in texts]
    if len(set(out)) != len(out):
        raise ValueError(f"duplicate partitions in {list(texts)}")
    return out
