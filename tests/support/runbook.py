"""The shell commands the operators' documents give (docs/runbook.md, README's Operations section), and what the
tests do with each.

A command is what an on-call engineer pastes: one line of a ```bash fenced block, with its `\\` continuation lines
and its here-document. `DOCUMENTED` lists every such command with a decision: run against the test services
(tests/integration/test_runbook_commands.py), or not, and why. tests/unit/test_runbook_coverage.py fails when a
document gains, loses or changes a command that this list does not hold, so the list stays in step with the
documents and no command is left untested by oversight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.support.project_env import ROOT

RUNBOOK = ROOT / "docs" / "runbook.md"
README = ROOT / "README.md"
SHELL_LANGUAGES = ("bash", "sh", "shell", "console")
_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[A-Za-z]*)\s*$")
_HEREDOC = re.compile(r"<<-?\s*'?\"?(?P<word>[A-Za-z_]+)'?\"?")


@dataclass(frozen=True)
class Command:
    """One documented command: its text as pasted (continuations and here-document included), where it is."""

    text: str
    source: str  # "docs/runbook.md:302"
    block: str  # "docs/runbook.md:321", its block's opening fence: the commands of one block run in one shell

    @property
    def key(self) -> str:
        """The text with runs of white space collapsed: how DOCUMENTED names it."""
        return " ".join(self.text.split())


def shell_blocks(text: str) -> list[tuple[int, list[str]]]:
    """(first line number, lines) of each shell fenced block, the fence's indentation removed (a block inside a
    list item is pasted without it)."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang, body, start = len(m.group("indent")), m.group("lang"), [], i + 2
        i += 1
        while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        i += 1
        if lang in SHELL_LANGUAGES:
            blocks.append((start, body))
    return blocks


def commands_of(text: str, source: str, first_line: int = 1) -> list[Command]:
    """The commands of every shell block of `text` (whose first line is line `first_line` of `source`): comment
    and blank lines dropped, continuation lines and here-documents kept with their command."""
    out: list[Command] = []
    for start, body in shell_blocks(text):
        start += first_line - 1
        i = 0
        while i < len(body):
            line, first = body[i], i
            i += 1
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = [line]
            while parts[-1].rstrip().endswith("\\") and i < len(body):
                parts.append(body[i])
                i += 1
            heredoc = _HEREDOC.search(" ".join(parts))
            if heredoc:
                while i < len(body):
                    parts.append(body[i])
                    i += 1
                    if body[i - 1].strip() == heredoc.group("word"):
                        break
            out.append(Command("\n".join(parts), f"{source}:{start + first}", f"{source}:{start - 1}"))
    return out


def readme_operations() -> tuple[str, int]:
    """README's "## Operations" section (up to the next second-level heading) and the line it starts on."""
    text = README.read_text()
    m = re.search(r"^## Operations\n(.*?)(?=^## )", text, re.S | re.M)
    assert m, "README.md has no '## Operations' section"
    return m.group(1), text.count("\n", 0, m.start(1)) + 1


def documented_commands() -> list[Command]:
    """Every command of docs/runbook.md's and README Operations' shell blocks, in document order."""
    section, line = readme_operations()
    return commands_of(RUNBOOK.read_text(), "docs/runbook.md") + commands_of(section, "README.md", line)


NEEDS_AIRFLOW = ("not run: needs a running Airflow (`make airflow`), which these tests do not start; "
                 "tests/e2e drives the same clears and backfills through Airflow's REST API")

# Every documented command (its key) -> None when tests/integration/test_runbook_commands.py runs it, else why not.
DOCUMENTED: dict[str, str | None] = {
    # Clearing safely
    "scripts/airflow.sh run tasks clear shopstream_bronze -t '^load$' -d -f -y \\ "
    "-s 2026-11-27T13:00:00+00:00 -e 2026-11-27T13:59:59+00:00 # -d downstream, -f only failed": NEEDS_AIRFLOW,
    # Backfilling (runbook) and README's "Backfill an hour range"
    "scripts/airflow.sh run backfill create --dag-id shopstream_extract \\ "
    "--from-date 2026-11-26T00:00:00+00:00 --to-date 2026-11-26T05:00:00+00:00 \\ "
    "--reprocess-behavior completed --max-active-runs 4": NEEDS_AIRFLOW,
    "scripts/airflow.sh run backfill create --dag-id shopstream_extract \\ "
    "--from-date 2026-11-26T00:00:00+00:00 --to-date 2026-11-26T23:00:00+00:00 \\ "
    "--reprocess-behavior completed --max-active-runs 4": NEEDS_AIRFLOW,
    # Replaying Kafka from stored offsets
    "scripts/postgres.sh psql --as loader <<'SQL' -- what is stored "
    "select * from bronze.consumer_offsets where consumer_group = 'shopstream-bronze' order by topic, partition; "
    "-- rewind one partition (only while no bronze run is active: pause shopstream_bronze first) "
    "update bronze.consumer_offsets set next_offset = 1200, updated_at = now() at time zone 'utc' "
    "where consumer_group = 'shopstream-bronze' and topic = 'orders' and \"partition\" = 2; SQL": None,
    "source scripts/common.sh": None,
    "python -m shopstream.bronze.cli --topics orders": None,
    # Reprocessing quarantined records
    "scripts/postgres.sh psql -c \"select reason, topic, count(*) from bronze.raw_events_quarantine "
    "group by 1, 2;\"": None,
    "scripts/postgres.sh psql --as owner <<'SQL' delete from bronze.raw_events_quarantine q using bronze.raw_events r "
    "where r.topic = q.topic and r.\"partition\" = q.\"partition\" and r.\"offset\" = q.\"offset\"; SQL": None,
}
