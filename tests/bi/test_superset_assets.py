"""The dashboards as code and Superset's warehouse connection, without starting Superset (fast).

- The export under include/superset/assets/ is consistent: unique uuids, every chart on a dashboard, every
  chart's dataset and every dataset's database in the export, physical datasets are gold models or ops tables,
  virtual ones read only those, and no password or real URI is in git.
- The URI Superset gets (include/superset/provision.py) is the analysts' login: the owner's, dbt's or the
  superuser's is refused; and through exactly that URI PostgreSQL answers gold and refuses silver, staging and
  bronze (a least-privilege database set up by `scripts/postgres.sh secure`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from urllib.parse import urlsplit

import psycopg
import pytest
import yaml
from psycopg import errors

from tests.bi.conftest import ASSETS
from tests.support.project_env import ROOT

GOLD_MODELS = {p.stem for p in (ROOT / "include" / "dbt" / "shopstream" / "models" / "gold").glob("*.sql")}
#: the ops schema's tables (include/sql/ops: the tasks' run records, which the Pipeline health dashboard reads)
OPS_TABLES = {t for p in (ROOT / "include" / "sql" / "ops").glob("*.sql")
              for t in re.findall(r"CREATE TABLE IF NOT EXISTS ops\.([a-z_]+)", p.read_text())}
READABLE = {"gold": GOLD_MODELS, "ops": OPS_TABLES}
least_privilege = pytest.mark.parametrize("fresh_database", ["least_privilege"], indirect=True)


def load_provision():
    spec = importlib.util.spec_from_file_location("shopstream_superset_provision",
                                                  ROOT / "include" / "superset" / "provision.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def export(kind: str) -> dict[str, dict]:
    return {str(p.relative_to(ASSETS)): yaml.safe_load(p.read_text()) for p in sorted((ASSETS / kind).rglob("*.yaml"))}


def test_the_export_is_consistent_and_holds_no_secret():
    databases, datasets, charts, dashboards = (export(k) for k in ("databases", "datasets", "charts", "dashboards"))
    assert yaml.safe_load((ASSETS / "metadata.yaml").read_text())["version"] == "1.0.0"
    every = [c["uuid"] for group in (databases, datasets, charts, dashboards) for c in group.values()]
    assert len(every) == len(set(every)), "a uuid is used twice"
    (database,) = databases.values()
    uri = urlsplit(database["sqlalchemy_uri"])
    assert uri.password is None, "a password in the export"
    assert database["allow_dml"] is False and database["allow_file_upload" if "allow_file_upload" in database
                                                        else "allow_csv_upload"] is False
    for name, ds in datasets.items():
        assert ds["database_uuid"] == database["uuid"], name
        assert ds["schema"] in READABLE, name
        if ds["sql"]:
            relations = set(re.findall(r"\b(?:from|join)\s+([a-z_]+)\.([a-z_]+)", ds["sql"], re.I))
            assert relations and all(t in READABLE.get(s, ()) for s, t in relations), (name, relations)
        else:
            assert ds["table_name"] in READABLE[ds["schema"]], name
    dataset_uuids = {ds["uuid"] for ds in datasets.values()}
    on_dashboards = [v["meta"]["uuid"] for d in dashboards.values() for v in d["position"].values()
                     if isinstance(v, dict) and v.get("type") == "CHART"]
    assert sorted(on_dashboards) == sorted(c["uuid"] for c in charts.values()), "a chart on no dashboard, or twice"
    for name, chart in charts.items():
        assert chart["dataset_uuid"] in dataset_uuids, name
    assert {d["slug"] for d in dashboards.values()} == {"sales", "clickstream", "pipeline-health"}
    assert OPS_TABLES == {"extract_published", "bronze_loads", "reconcile_results"}


def test_superset_refuses_any_login_but_the_analysts(monkeypatch):
    provision = load_provision()
    analyst = json.loads(os.environ["AIRFLOW_CONN_ANALYST_DB"])
    for login in (json.loads(os.environ["AIRFLOW_CONN_WAREHOUSE_DB"])["login"],
                  os.environ.get("SHOPSTREAM_PG_OWNER_ROLE", "shopstream_owner"), "postgres"):
        monkeypatch.setenv("AIRFLOW_CONN_ANALYST_DB", json.dumps({**analyst, "login": login}))
        with pytest.raises(SystemExit, match="read-only analyst role"):
            provision.analyst_uri()


@pytest.mark.integration
@least_privilege
def test_superset_connection_reads_gold_and_is_refused_silver_staging_bronze(fresh_database):
    provision = load_provision()
    uri = provision.analyst_uri()  # fresh_database pointed AIRFLOW_CONN_ANALYST_DB at its analysts' login
    contents = provision.bundle(provision.ASSETS, uri)
    (database,) = [yaml.safe_load(text) for name, text in contents.items() if name.startswith("databases/")]
    assert database["sqlalchemy_uri"] == uri
    parts = urlsplit(uri)
    assert parts.username == os.environ["ANALYST_PGUSER"] and parts.path == f"/{fresh_database['dbname']}"
    dbt = fresh_database.roles["dbt"]
    with psycopg.connect(**{k: dbt[k] for k in ("host", "port", "user", "password", "dbname")},
                         autocommit=True) as conn:
        for schema in ("staging", "silver", "gold"):
            conn.execute(f"CREATE TABLE {schema}.t_bi_check AS SELECT 1 AS id")
    # Exactly the URI Superset uses (libpq reads the same URL without SQLAlchemy's driver suffix).
    with psycopg.connect(uri.replace("postgresql+psycopg2://", "postgresql://"), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM gold.t_bi_check").fetchone()[0] == 1
        for table in ("silver.t_bi_check", "staging.t_bi_check", "bronze.raw_events", "bronze.consumer_offsets"):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(f"SELECT * FROM {table}")
        with pytest.raises((errors.InsufficientPrivilege, errors.ReadOnlySqlTransaction)):
            conn.execute("INSERT INTO gold.t_bi_check VALUES (2)")
        # the Pipeline health datasets over the ops schema answer through the same login (read-only)
        for ds in export("datasets").values():
            if ds["schema"] == "ops":
                conn.execute(f"SELECT * FROM ({ds['sql'] or 'SELECT * FROM ops.' + ds['table_name']}) AS t LIMIT 1")
        with pytest.raises((errors.InsufficientPrivilege, errors.ReadOnlySqlTransaction)):
            conn.execute("DELETE FROM ops.reconcile_results")
