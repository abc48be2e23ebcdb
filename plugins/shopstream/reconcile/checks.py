"""The reconciliation's pure logic: the counts of an hour and of a day, what must add up, and the table.

No I/O: the warehouse queries (`shopstream.reconcile.warehouse`) fill `HourCounts` and `DayCounts`; this module
says which equations hold (see the package docstring), lists the `Mismatch`es, renders the text table that the
task logs and the CLI prints, and builds the summary the task returns (its XCom).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from shopstream.hours import hour_iso


class ReconciliationError(RuntimeError):
    """Counts do not add up between two layers; the message is the full table."""


@dataclass(frozen=True)
class HourCounts:
    hour: str
    entity: str
    published: int | None  # expected keys from the extract stage (None: not known for this entity)
    bronze: int
    bronze_quarantine: int
    silver: int
    silver_quarantine: int
    gold: int | None  # None: no per-key gold table (events)
    # keys whose silver row is not the latest version staging admitted, or whose gold row differs from silver
    wrong_version: int = 0
    wrong_version_keys: tuple[str, ...] = ()  # a few of them, for the message
    silver_quarantine_by_reason: dict[str, int] = field(default_factory=dict, compare=False)  # messages


@dataclass(frozen=True)
class DayCounts:
    day: str
    measure: str  # orders, revenue, events:<type>
    silver: int | Decimal
    gold_fact: int | Decimal | None  # gold.fct_orders (orders/revenue); None for events
    gold_agg: int | Decimal  # gold.agg_orders_daily / gold.agg_events_daily


@dataclass(frozen=True)
class Mismatch:
    where: str  # hour or day
    entity: str
    check: str  # kafka->bronze, bronze->silver, silver->gold, silver->gold_fact, gold_fact->gold_agg
    expected: int | Decimal
    actual: int | Decimal
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.where} {self.entity} {self.check}: expected {self.expected}, found {self.actual}"
        return f"{text} ({self.detail})" if self.detail else text


def check_hour(row: HourCounts) -> list[Mismatch]:
    out = []
    if row.published is not None and row.published != row.bronze + row.bronze_quarantine:
        out.append(Mismatch(row.hour, row.entity, "kafka->bronze", row.published,
                            row.bronze + row.bronze_quarantine))
    if row.bronze != row.silver + row.silver_quarantine:
        out.append(Mismatch(row.hour, row.entity, "bronze->silver", row.bronze, row.silver + row.silver_quarantine))
    if row.gold is not None and row.gold != row.silver:
        out.append(Mismatch(row.hour, row.entity, "silver->gold", row.silver, row.gold))
    if row.wrong_version:
        out.append(Mismatch(row.hour, row.entity, "version", 0, row.wrong_version,
                            "keys not in the latest admitted version, e.g. " + ", ".join(row.wrong_version_keys)))
    return out


def check_day(row: DayCounts) -> list[Mismatch]:
    out = []
    if row.gold_fact is not None and row.gold_fact != row.silver:
        out.append(Mismatch(row.day, row.measure, "silver->gold_fact", row.silver, row.gold_fact))
    reference = row.gold_fact if row.gold_fact is not None else row.silver
    if row.gold_agg != reference:
        check = "gold_fact->gold_agg" if row.gold_fact is not None else "silver->gold_agg"
        out.append(Mismatch(row.day, row.measure, check, reference, row.gold_agg))
    return out


def compare(hours: Iterable[HourCounts], days: Iterable[DayCounts] = ()) -> list[Mismatch]:
    out: list[Mismatch] = []
    for row in hours:
        out.extend(check_hour(row))
    for row in days:
        out.extend(check_day(row))
    return out


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def format_table(hours: Sequence[HourCounts], days: Sequence[DayCounts] = (),
                 mismatches: Sequence[Mismatch] | None = None) -> str:
    """The counts as two text tables; rows with a mismatch are flagged."""
    mismatches = compare(hours, days) if mismatches is None else mismatches
    bad = {(m.where, m.entity) for m in mismatches}
    head = ("hour", "entity", "published", "bronze", "bronze_q", "silver", "silver_q", "gold", "")
    rows = [head] + [
        (r.hour, r.entity, _cell(r.published), str(r.bronze), str(r.bronze_quarantine), str(r.silver),
         str(r.silver_quarantine), _cell(r.gold), "MISMATCH" if (r.hour, r.entity) in bad else "ok")
        for r in hours
    ]
    lines = _render(rows)
    if days:
        drows = [("day", "measure", "silver", "gold_fact", "gold_agg", "")] + [
            (d.day, d.measure, str(d.silver), _cell(d.gold_fact), str(d.gold_agg),
             "MISMATCH" if (d.day, d.measure) in bad else "ok")
            for d in days
        ]
        lines += [""] + _render(drows)
    if mismatches:
        lines += ["", f"{len(mismatches)} mismatch(es):"] + [f"  {m}" for m in mismatches]
    return "\n".join(lines)


def _render(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
                      ).rstrip() for r in rows]


def summarize(hours: Sequence[datetime], hour_rows: Sequence[HourCounts], day_rows: Sequence[DayCounts],
              mismatches: Sequence[Mismatch]) -> dict[str, Any]:
    """The result of a reconciliation as plain JSON-able values (the task's XCom): the hours, ok, the counts,
    the mismatches and the table as text (decimals as strings)."""
    return {
        "hours": [hour_iso(h) for h in hours],
        "ok": not mismatches,
        "counts": [{**asdict(r), "wrong_version_keys": list(r.wrong_version_keys)} for r in hour_rows],
        "days": [{**asdict(d), "silver": str(d.silver), "gold_fact": _cell(d.gold_fact), "gold_agg": str(d.gold_agg)}
                 for d in day_rows],
        "mismatches": [str(m) for m in mismatches],
        "mismatch_rows": [{"where": m.where, "entity": m.entity, "check": m.check, "text": str(m)}
                          for m in mismatches],
        "table": format_table(hour_rows, day_rows, mismatches),
    }
