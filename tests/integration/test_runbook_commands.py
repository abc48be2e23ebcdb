"""The runbook's commands, run as written with the roles the project creates (docs/runbook.md, README Operations).

Each shell block's commands that tests/support/runbook.py marks to run are pasted into one bash in the repository
root, in document order, against a fresh database set up like the warehouse (`scripts/postgres.sh secure`: the
owner applied the bronze DDL; the loader, dbt and analyst logins have their grants) and the test broker. Before,
the hand loader of the replay (`python -m shopstream.bronze.cli --topics orders`) logged in as dbt and failed
applying the bronze DDL, and no documented login could rewind the offsets or delete quarantine rows.

Seeded first, as the superuser: a stored offset and a quarantine row whose message is also in raw_events, so the
rewind and the delete have something to do and the test sees that they did it.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from itertools import groupby

import psycopg
import pytest

from tests.support.project_env import ROOT, admin_dsn
from tests.support.runbook import DOCUMENTED, documented_commands

pytestmark = pytest.mark.parametrize("fresh_database", ["least_privilege"], indirect=True)


def _run_block(commands: list[str], env: dict) -> subprocess.CompletedProcess:
    script = "set -euo pipefail\n" + "\n".join(commands) + "\n"
    return subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def test_runbook_commands_run_as_written_with_the_project_roles(fresh_database, kafka_bootstrap):
    db = fresh_database["dbname"]
    seeded_topic = f"runbook-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn(db), autocommit=True) as conn:
        conn.execute("INSERT INTO bronze.consumer_offsets (consumer_group, topic, \"partition\", next_offset) "
                     "VALUES ('shopstream-bronze', 'orders', 2, 5)")
        for table, value in (("raw_events", '{"id": 1}'), ("raw_events_quarantine", None)):
            if value:
                conn.execute(f"INSERT INTO bronze.{table} (topic, record_key, record_value, \"partition\", \"offset\", "
                             "event_ts) VALUES (%s, '1', %s, 0, 7, now())", [seeded_topic, value])
            else:
                conn.execute(f"INSERT INTO bronze.{table} (topic, \"partition\", \"offset\", reason) "
                             "VALUES (%s, 0, 7, 'oversize')", [seeded_topic])
    # The hand loader stores its offsets under its own group here (SHOPSTREAM_BRONZE_GROUP, its --group default),
    # so the shared broker's committed offsets of the real group are left alone.
    env = {**os.environ, "SHOPSTREAM_BRONZE_GROUP": f"runbook-test-{uuid.uuid4().hex[:8]}"}
    runnable = [c for c in documented_commands() if DOCUMENTED.get(c.key, "unlisted") is None]
    assert runnable, "tests/support/runbook.py marks no documented command to run"
    outputs = {}
    for block, group in groupby(runnable, key=lambda c: c.block):
        commands = list(group)
        result = _run_block([c.text for c in commands], env)
        where = ", ".join(c.source for c in commands)
        assert result.returncode == 0, f"{where} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        assert "ERROR" not in result.stderr and "permission denied" not in result.stderr, f"{where}:\n{result.stderr}"
        outputs[block] = result.stdout

    with psycopg.connect(admin_dsn(db)) as conn:
        rewound = conn.execute("SELECT next_offset FROM bronze.consumer_offsets WHERE consumer_group = "
                               "'shopstream-bronze' AND topic = 'orders' AND \"partition\" = 2").fetchone()[0]
        left = conn.execute("SELECT count(*) FROM bronze.raw_events_quarantine WHERE topic = %s",
                            [seeded_topic]).fetchone()[0]
        loaded_offsets = conn.execute("SELECT count(*) FROM bronze.consumer_offsets WHERE consumer_group = %s",
                                      [env["SHOPSTREAM_BRONZE_GROUP"]]).fetchone()[0]
    assert rewound == 1200, "the replay's rewind (as the loader) did not move the stored offset"
    assert left == 0, "the quarantine clean-up (as the owner) did not delete the row already in raw_events"
    loader_out = next(out for out in outputs.values() if out.lstrip().startswith("{"))
    result = json.loads(loader_out)
    assert set(result["topics"]) == {"orders"} and result["consumer_group"] == env["SHOPSTREAM_BRONZE_GROUP"]
    assert loaded_offsets == len(result["partitions"]), "the hand loader did not store its offsets"
    assert any("oversize" in out for out in outputs.values()), "the quarantine query did not show the seeded row"
