"""Least privilege on the real PostgreSQL: each role can do its job and nothing it must not.

The database is set up by the project's own setup (`scripts/postgres.sh secure DB`: include/sql/security, the
bronze DDL applied as the owner role) through conftest's fresh_database("least_privilege"). Roles:
  loader  (AIRFLOW_CONN_BRONZE_DB)   appends to bronze; no DDL, no UPDATE/DELETE of raw events, nothing else;
  dbt     (AIRFLOW_CONN_WAREHOUSE_DB) owns staging/silver/gold, reads bronze, cannot write it;
  analyst (AIRFLOW_CONN_ANALYST_DB)  reads gold only.
The full dbt build under these roles runs in tests/integration/test_pii.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
least_privilege = pytest.mark.parametrize("fresh_database", ["least_privilege"], indirect=True)


def connect(params: dict) -> psycopg.Connection:
    return psycopg.connect(**{k: params[k] for k in ("host", "port", "user", "password", "dbname")},
                           autocommit=True)


def denied(conn: psycopg.Connection, sql: str) -> None:
    """`sql` fails with a privilege error (or "must be owner"), whatever the role."""
    with pytest.raises((errors.InsufficientPrivilege, errors.ReadOnlySqlTransaction)):
        conn.execute(sql)


def seed_dbt_objects(dbt: psycopg.Connection) -> None:
    """What a dbt run leaves behind: a table in each of its schemas, created by the dbt role after the setup."""
    for schema in ("staging", "silver", "gold"):
        dbt.execute(f"CREATE TABLE {schema}.t_role_check AS SELECT 1 AS id, 'x'::text AS v")


@least_privilege
def test_loader_appends_to_bronze_and_nothing_else(fresh_database):
    roles = fresh_database.roles
    with connect(roles["dbt"]) as dbt:
        seed_dbt_objects(dbt)
    with connect(roles["loader"]) as loader:
        assert loader.execute("SELECT current_user").fetchone()[0] == os.environ["BRONZE_PGUSER"]
        # can: append, read, move its offsets, quarantine
        loader.execute("""INSERT INTO bronze.raw_events (topic, record_key, record_value, "partition", "offset",
                          event_ts) VALUES ('t', 'k', '{"a":1}', 0, 0, now())""")
        assert loader.execute("SELECT count(*) FROM bronze.raw_events").fetchone()[0] == 1
        loader.execute("""INSERT INTO bronze.consumer_offsets (consumer_group, topic, "partition", next_offset)
                          VALUES ('g', 't', 0, 1)""")
        loader.execute("""UPDATE bronze.consumer_offsets SET next_offset = 2 WHERE consumer_group = 'g'""")
        loader.execute("""INSERT INTO bronze.raw_events_quarantine (topic, "partition", "offset", reason)
                          VALUES ('t', 0, 5, 'tombstone')""")
        loader.execute("CREATE TEMP TABLE bronze_stage (x int)")  # the COPY staging table
        assert loader.execute("SELECT bronze.stable_high_watermark()").fetchone()[0] >= 1
        # cannot: rewrite history, DDL on bronze, anything in dbt's schemas
        denied(loader, "UPDATE bronze.raw_events SET record_key = 'x'")
        denied(loader, "DELETE FROM bronze.raw_events")
        denied(loader, "TRUNCATE bronze.raw_events")
        denied(loader, "DELETE FROM bronze.raw_events_quarantine")
        denied(loader, "DELETE FROM bronze.consumer_offsets")
        denied(loader, "DROP TABLE bronze.raw_events")
        denied(loader, "DROP TABLE bronze.consumer_offsets")
        denied(loader, "DROP SCHEMA bronze CASCADE")
        denied(loader, "ALTER TABLE bronze.raw_events ADD COLUMN x int")
        denied(loader, "CREATE TABLE bronze.x (id int)")
        denied(loader, "CREATE INDEX ON bronze.raw_events (record_key)")
        denied(loader, "CREATE OR REPLACE FUNCTION bronze.stable_high_watermark() RETURNS BIGINT "
                       "LANGUAGE sql AS 'SELECT 0::bigint'")
        denied(loader, "CREATE SCHEMA x")
        for schema in ("staging", "silver", "gold"):
            denied(loader, f"SELECT * FROM {schema}.t_role_check")
            denied(loader, f"INSERT INTO {schema}.t_role_check VALUES (2, 'y')")
            denied(loader, f"DROP TABLE {schema}.t_role_check")
            denied(loader, f"CREATE TABLE {schema}.x (id int)")


@least_privilege
def test_dbt_owns_its_schemas_reads_bronze_and_cannot_write_it(fresh_database):
    roles = fresh_database.roles
    with connect(roles["loader"]) as loader:
        loader.execute("""INSERT INTO bronze.raw_events (topic, record_key, record_value, "partition", "offset",
                          event_ts) VALUES ('t', 'k', '{"a":1}', 0, 0, now())""")
    with connect(roles["dbt"]) as dbt:
        assert dbt.execute("SELECT current_user").fetchone()[0] == os.environ["PGUSER"]
        # can: read bronze (and its stable watermark), create/replace/drop in staging/silver/gold
        assert dbt.execute("SELECT count(*) FROM bronze.raw_events").fetchone()[0] == 1
        assert dbt.execute("SELECT bronze.stable_high_watermark()").fetchone()[0] == 1
        seed_dbt_objects(dbt)
        for schema in ("staging", "silver", "gold"):
            dbt.execute(f"INSERT INTO {schema}.t_role_check VALUES (2, 'y')")
            dbt.execute(f"ALTER TABLE {schema}.t_role_check RENAME TO t_role_check_old")
            dbt.execute(f"DROP TABLE {schema}.t_role_check_old")
        dbt.execute("CREATE SCHEMA dbt_scratch")  # dbt creates the schemas it is missing
        # cannot: write or change bronze in any way
        denied(dbt, """INSERT INTO bronze.raw_events (topic, record_key, record_value, "partition", "offset",
                       event_ts) VALUES ('t', 'k', '{}', 0, 1, now())""")
        denied(dbt, "UPDATE bronze.raw_events SET record_key = 'x'")
        denied(dbt, "DELETE FROM bronze.raw_events")
        denied(dbt, "TRUNCATE bronze.raw_events")
        denied(dbt, "UPDATE bronze.consumer_offsets SET next_offset = 0")
        denied(dbt, "INSERT INTO bronze.raw_events_quarantine (topic, \"partition\", \"offset\", reason) "
                    "VALUES ('t', 0, 9, 'x')")
        denied(dbt, "DROP TABLE bronze.raw_events")
        denied(dbt, "ALTER TABLE bronze.raw_events ADD COLUMN x int")
        denied(dbt, "CREATE TABLE bronze.x (id int)")
        denied(dbt, "CREATE INDEX ON bronze.raw_events (record_key)")


@least_privilege
def test_analyst_reads_gold_only(fresh_database):
    roles = fresh_database.roles
    with connect(roles["dbt"]) as dbt:
        seed_dbt_objects(dbt)  # created after the setup: readable through the dbt role's default privileges
        dbt.execute("CREATE VIEW gold.v_role_check AS SELECT * FROM silver.t_role_check")
    with connect(roles["analyst"]) as analyst:
        assert analyst.execute("SELECT current_user").fetchone()[0] == os.environ["ANALYST_PGUSER"]
        assert analyst.execute("SELECT count(*) FROM gold.t_role_check").fetchone()[0] == 1
        assert analyst.execute("SELECT count(*) FROM gold.v_role_check").fetchone()[0] == 1  # a view over silver
        for table in ("bronze.raw_events", "bronze.consumer_offsets", "bronze.raw_events_quarantine",
                      "silver.t_role_check", "staging.t_role_check"):
            denied(analyst, f"SELECT * FROM {table}")
        denied(analyst, "SELECT bronze.stable_high_watermark()")
        denied(analyst, "INSERT INTO gold.t_role_check VALUES (2, 'y')")
        denied(analyst, "UPDATE gold.t_role_check SET v = 'z'")
        denied(analyst, "DELETE FROM gold.t_role_check")
        denied(analyst, "TRUNCATE gold.t_role_check")
        denied(analyst, "DROP TABLE gold.t_role_check")
        denied(analyst, "CREATE TABLE gold.x (id int)")
        denied(analyst, "CREATE TEMP TABLE x (id int)")
        denied(analyst, "CREATE SCHEMA x")


@least_privilege
def test_bronze_dag_tasks_run_as_the_loader(fresh_database, kafka_bootstrap, unique_topics, monkeypatch):
    """The bronze DAG's task functions with AIRFLOW_CONN_BRONZE_DB: `apply_ddl` verifies the DDL the owner role
    applied (the loader may not run it), the loads append rows, quarantine poison and store offsets."""
    from shopstream.bronze import airflow_entry, schema

    from tests.support.bronze_messages import event_messages, produce

    names = unique_topics("customers", "products", "orders", "events")
    topics = list(names.values())
    produce(kafka_bootstrap, [*event_messages(topics, 200),
                              (topics[0], 0, b"poison", b"not json", 1_748_782_800_000)])
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT",
                       json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": kafka_bootstrap}}))
    for base, name in names.items():
        monkeypatch.setenv(f"SHOPSTREAM_TOPIC_{base.upper()}", name)

    assert airflow_entry.apply_ddl() == sorted(schema.LOADER_NEEDS)  # verified, not applied
    for _ in range(2):  # the second round finds nothing new
        groups = airflow_entry.plan(None, 2, "g-roles")
        results = [airflow_entry.load(g, "g-roles", max_seconds=60) for g in groups]
    with connect(fresh_database.roles["dbt"]) as dbt:
        assert dbt.execute("SELECT count(*) FROM bronze.raw_events").fetchone()[0] == 200
        assert dbt.execute("SELECT count(*) FROM bronze.raw_events_quarantine").fetchone()[0] == 1
        owners = dbt.execute("SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class "
                             "WHERE relnamespace = 'bronze'::regnamespace").fetchall()
    assert owners == [(os.environ["SHOPSTREAM_PG_OWNER_ROLE"],)]
    assert sum(r["totals"]["inserted"] for r in results) == 0  # the second round


def test_setup_upgrades_a_single_role_database_and_is_idempotent(fresh_database):
    """A database from before the roles (the warehouse role created and filled bronze): the setup hands bronze
    to the owner role, keeps the data, and running it again changes nothing."""
    from shopstream.bronze.schema import apply_ddl

    legacy = connect(fresh_database)
    apply_ddl(psycopg.conninfo.make_conninfo(**fresh_database))
    legacy.execute("""INSERT INTO bronze.raw_events (topic, record_key, record_value, "partition", "offset",
                      event_ts) VALUES ('t', 'k', '{"a":1}', 0, 0, now())""")
    legacy.execute("CREATE SCHEMA gold")
    legacy.execute("CREATE TABLE gold.kept AS SELECT 1 AS id")
    legacy.close()
    # The roles of .env (fresh_database points all three connections at the warehouse role in this mode).
    env = {k: v for k, v in os.environ.items() if k not in ("AIRFLOW_CONN_BRONZE_DB", "AIRFLOW_CONN_ANALYST_DB")}
    for _ in range(2):
        result = subprocess.run([str(ROOT / "scripts" / "postgres.sh"), "secure", fresh_database["dbname"]],
                                capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr
    # A single-role configuration is refused: the setup would give one role two jobs.
    result = subprocess.run([str(ROOT / "scripts" / "postgres.sh"), "secure", fresh_database["dbname"]],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "must be four" in result.stderr
    analyst = {**fresh_database, "user": os.environ["ANALYST_PGUSER"], "password": os.environ["ANALYST_PGPASSWORD"]}
    with connect(fresh_database) as dbt, connect(analyst) as reader:
        assert dbt.execute("SELECT count(*) FROM bronze.raw_events").fetchone()[0] == 1
        denied(dbt, "DELETE FROM bronze.raw_events")
        assert reader.execute("SELECT id FROM gold.kept").fetchall() == [(1,)]
        owner = dbt.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'bronze'").fetchone()
    assert owner == (os.environ["SHOPSTREAM_PG_OWNER_ROLE"],)


def test_roles_are_not_superusers_and_the_owner_cannot_log_in(postgres_service):
    from tests.support.project_env import admin_dsn

    with psycopg.connect(admin_dsn()) as admin:
        rows = dict((r[0], r[1:]) for r in admin.execute(
            "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles WHERE rolname = ANY(%s)",
            [[os.environ["PGUSER"], os.environ["BRONZE_PGUSER"], os.environ["ANALYST_PGUSER"],
              os.environ["SHOPSTREAM_PG_OWNER_ROLE"]]]).fetchall())
    assert rows[os.environ["SHOPSTREAM_PG_OWNER_ROLE"]] == (False, False, False, False)
    for role in ("BRONZE_PGUSER", "ANALYST_PGUSER"):
        assert rows[os.environ[role]] == (False, False, False, True)
