"""The fault suite's summary: every fault case records its figures, pytest prints them as one table.

A case calls `fault_report.record("bronze: kill -9 x20", messages_in=..., rows_out=..., duplicates=...,
lost=..., quarantined=..., note="...")` (fixture in tests/faults/conftest.py). At the end of the session the table
is printed under "ShopStream fault summary" and written to artifacts/faults-summary.{md,json}, so `make faults`
and CI both show it. Recording is not asserting: each test still asserts 0 lost / 0 duplicated itself; the
table is the figure the issue asks for, and a row with lost or duplicates > 0 is flagged.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
COLUMNS = ("case", "messages_in", "rows_out", "duplicates", "lost", "quarantined", "note")


@dataclass
class FaultCase:
    case: str
    messages_in: int
    rows_out: int
    duplicates: int
    lost: int
    quarantined: int = 0
    note: str = ""
    test: str = ""


@dataclass
class FaultReport:
    cases: list[FaultCase] = field(default_factory=list)
    current_test: str = ""

    def record(self, case: str, *, messages_in: int, rows_out: int, duplicates: int, lost: int,
               quarantined: int = 0, note: str = "") -> FaultCase:
        row = FaultCase(case, int(messages_in), int(rows_out), int(duplicates), int(lost), int(quarantined),
                        note, self.current_test)
        self.cases.append(row)
        return row

    def table(self) -> str:
        rows = [[str(getattr(c, col)) for col in COLUMNS] for c in self.cases]
        widths = [max([len(col)] + [len(r[i]) for r in rows]) for i, col in enumerate(COLUMNS)]
        line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)) + " |"  # noqa: E731
        out = [line(COLUMNS), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        out += [line(r) for r in rows]
        bad = [c.case for c in self.cases if c.lost or c.duplicates]
        out.append(f"{len(self.cases)} cases; lost > 0 or duplicates > 0 in: {', '.join(bad) or 'none'}")
        return "\n".join(out)

    def write(self) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "faults-summary.json").write_text(json.dumps([asdict(c) for c in self.cases], indent=2))
        path = ARTIFACTS / "faults-summary.md"
        path.write_text("# ShopStream fault summary\n\n" + self.table() + "\n")
        return path


REPORT = FaultReport()
