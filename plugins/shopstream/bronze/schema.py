"""The bronze schema: apply include/sql/bronze/*.sql, or verify that the loader's role may use what is there.

Where least privilege is set up (scripts/postgres.sh, include/sql/security/), bronze belongs to an owner role that
applied the DDL at setup; the loader's role cannot run DDL, so ``apply_or_verify`` only verifies that the tables
are there and that the role may append to them. A role that owns bronze (a single-role database, e.g. a test
database) applies the DDL itself: idempotent, serialised between loaders starting together.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import psycopg

log = logging.getLogger("shopstream.bronze")

# Serialises DDL application between loaders starting together. b"cbronzeD" as a bigint.
DDL_LOCK_KEY = int.from_bytes(b"cbronzeD", "big")

# Can the connected role apply the DDL itself (it owns bronze, or bronze does not exist and it may create it)?
_MAY_APPLY_DDL = """
SELECT CASE WHEN n.oid IS NULL THEN has_database_privilege(current_database(), 'CREATE')
            ELSE pg_has_role(current_user, n.nspowner, 'USAGE') END
  FROM (SELECT 1) AS one LEFT JOIN pg_namespace n ON n.nspname = 'bronze'
"""
# What the loader needs when the DDL is managed by the owner role.
LOADER_NEEDS = {
    "bronze.raw_events": ("SELECT", "INSERT"),
    "bronze.raw_events_quarantine": ("SELECT", "INSERT"),
    "bronze.consumer_offsets": ("SELECT", "INSERT", "UPDATE"),
}


def sql_dir() -> Path:
    """include/sql/bronze of this checkout (SHOPSTREAM_BRONZE_SQL_DIR or SHOPSTREAM_ROOT override it)."""
    if os.environ.get("SHOPSTREAM_BRONZE_SQL_DIR"):
        return Path(os.environ["SHOPSTREAM_BRONZE_SQL_DIR"])
    root = os.environ.get("SHOPSTREAM_ROOT")
    base = Path(root) if root else Path(__file__).resolve().parents[3]
    return base / "include" / "sql" / "bronze"


def apply_ddl(conn: psycopg.Connection | str) -> list[str]:
    """Apply include/sql/bronze/*.sql in name order, in one transaction, serialised between loaders."""
    files = sorted(sql_dir().glob("*.sql"))
    if not files:
        raise FileNotFoundError(f"no bronze DDL in {sql_dir()}")
    own = isinstance(conn, str)
    c = psycopg.connect(conn) if own else conn
    try:
        with c.transaction():
            c.execute("SELECT pg_advisory_xact_lock(%s)", [DDL_LOCK_KEY])
            for path in files:
                c.execute(path.read_text())
    finally:
        if own:
            c.close()
    return [p.name for p in files]


def may_apply_ddl(conninfo: str) -> bool:
    """Whether the connected role owns bronze (or may create it): then it applies the DDL itself."""
    with psycopg.connect(conninfo) as conn:
        return bool(conn.execute(_MAY_APPLY_DDL).fetchone()[0])


def verify_ddl(conninfo: str) -> list[str]:
    """The bronze tables exist and the connected role may append to them; else a message with the fix."""
    problems = []
    with psycopg.connect(conninfo) as conn:
        role = conn.execute("SELECT current_user").fetchone()[0]
        for table, privileges in LOADER_NEEDS.items():
            if conn.execute("SELECT to_regclass(%s)", [table]).fetchone()[0] is None:
                problems.append(f"{table} does not exist")
                continue
            missing = [p for p in privileges
                       if not conn.execute("SELECT has_table_privilege(%s, %s)", [table, p]).fetchone()[0]]
            if missing:
                problems.append(f"role {role} lacks {', '.join(missing)} on {table}")
    if problems:
        raise RuntimeError(
            "bronze is not set up for the loader: " + "; ".join(problems) + ". The bronze DDL and the grants are "
            "applied by the owner role at setup: run `scripts/postgres.sh apply-ddl` (warehouse database) or "
            "`scripts/postgres.sh apply-ddl DATABASE`; with Docker, docker/postgres-init does it.")
    return sorted(LOADER_NEEDS)


def apply_or_verify(conninfo: str) -> list[str]:
    """Apply the DDL when the role owns bronze (the files applied), else verify it (the tables verified)."""
    if may_apply_ddl(conninfo):
        files = apply_ddl(conninfo)
        log.info("bronze DDL applied: %s", ", ".join(files))
        return files
    tables = verify_ddl(conninfo)
    log.info("bronze DDL is managed by the owner role (least privilege); verified %s", ", ".join(tables))
    return tables
