"""Every shell command of docs/runbook.md and README's Operations section is listed in tests/support/runbook.py with
a decision (run by tests/integration/test_runbook_commands.py, or why not): a new or edited command fails here
until someone decides how it is tested."""

from __future__ import annotations

from tests.support.runbook import DOCUMENTED, commands_of, documented_commands


def test_every_documented_command_has_a_decision():
    missing = [f"{c.source}: {c.key}" for c in documented_commands() if c.key not in DOCUMENTED]
    assert not missing, ("commands in the documents that tests/support/runbook.py DOCUMENTED does not list (add each "
                         "with None = run by tests/integration/test_runbook_commands.py, or the reason it is not "
                         "run):\n" + "\n".join(missing))


def test_every_listed_command_is_still_documented():
    present = {c.key for c in documented_commands()}
    stale = [key for key in DOCUMENTED if key not in present]
    assert not stale, ("tests/support/runbook.py DOCUMENTED lists commands the documents no longer hold (remove or "
                       "update them):\n" + "\n".join(stale))


def test_commands_keep_continuations_and_here_documents_and_drop_comments():
    doc = "\n".join([
        "text", "```bash", "# a comment", "scripts/a.sh x \\", "    --flag", "", "psql <<'SQL'", "select 1;", "SQL",
        "```", "```sql", "select 2;", "```", "1. item", "   ```bash", "   make up", "   ```",
    ])
    commands = commands_of(doc, "doc.md")
    assert [c.key for c in commands] == ["scripts/a.sh x \\ --flag", "psql <<'SQL' select 1; SQL", "make up"]
    assert [c.source for c in commands] == ["doc.md:4", "doc.md:7", "doc.md:16"]
    assert commands[0].block == commands[1].block != commands[2].block
