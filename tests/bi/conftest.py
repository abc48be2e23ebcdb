"""Fixtures of the BI tests: a least-privilege warehouse with gold built by dbt from fixture bronze rows (no Kafka,
no Airflow: the cheapest way the dbt integration tests build gold), and Superset started on it by the project's
own script (scripts/superset.sh, as `make bi` does) on a free port, with its own SUPERSET_HOME and metadata DB."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest

from tests.e2e.harness import free_port
from tests.support.contract_messages import base_hour, customer, event, hour_messages, message
from tests.support.project_env import ROOT, SCRIPTS, admin_dsn, run_script
from tests.support.warehouse import BronzeWriter, published_results

# Events per funnel step and day (a shrinking funnel, so the funnel chart has a shape and the rate is < 100 %).
FUNNEL = {"page_view": 40, "product_view": 24, "add_to_cart": 12, "checkout_start": 8, "checkout_complete": 5}
DAYS = 5


@pytest.fixture(scope="session", autouse=True)
def _project_env(project_env):
    """Every BI test runs with the project's environment (.env: the roles' logins, Superset's settings)."""


def analyst_connection(params: dict) -> str:
    """AIRFLOW_CONN_ANALYST_DB (Airflow's JSON form) for the analysts' login on `params`' database."""
    return json.dumps({"conn_type": "postgres", "host": params["host"], "port": params["port"],
                       "schema": params["dbname"], "login": os.environ["ANALYST_PGUSER"],
                       "password": os.environ["ANALYST_PGPASSWORD"]})


def fixture_days(first_hour) -> list:
    """Bronze messages of DAYS days (one hour each): snapshots, orders with items, and funnel-shaped events."""
    msgs = []
    for day in range(DAYS):
        hour = first_hour + timedelta(days=day)
        msgs += hour_messages(hour, n_orders=4 + 2 * day, n_events=0)
        n = 0
        for step, (event_type, count) in enumerate(FUNNEL.items()):
            for _ in range(count + day * (len(FUNNEL) - step)):
                cid = str(1 + n % 6)
                ts = hour + timedelta(minutes=n % 60, seconds=(7 * n) % 60)
                extra = {}
                if event_type in ("product_view", "add_to_cart"):
                    extra = {"product_id": str(1 + n % 6), "page": f"/products/{1 + n % 6}"}
                eid = f"e-{hour:%Y%m%d%H}-{step}{n:05d}"
                msgs.append(message("events", event(eid, event_type, cid, ts, **extra), ts))
                n += 1
        # one customer silver quarantines (invalid_email), for the Pipeline health dashboard's reasons
        msgs.append(message("customers", customer(90 + day, "Bad", "Email", "not-an-email"), hour))
    return msgs


def record_ops(params: dict, msgs: list) -> None:
    """The ops rows the tasks would have written for the fixture's hours, the cheapest way: what extract published
    (from the messages), one bronze load per topic (as the loader's role) and the reconciliation of every hour
    (the real `shopstream.reconcile` on the built warehouse, as the dbt role)."""
    from shopstream import ops
    from shopstream.reconcile.published import expected_counts
    from shopstream.reconcile.warehouse import reconcile

    topics = {t: t for t in ("customers", "products", "orders", "events")}
    published = published_results(msgs)
    hours = sorted(datetime.fromisoformat(h.replace("Z", "+00:00")) for h in published)
    with psycopg.connect(**params, autocommit=True) as conn:
        for results in published.values():
            ops.record_extract(conn, results, "bi-fixture")
        summary = reconcile(conn, hours, expected_counts(conn, hours, topics), topics, raise_on_mismatch=False)
        assert summary["ok"], summary["table"]
        ops.record_reconciliation(conn, summary, topics, "bi-fixture")
    loader = {**params, "user": os.environ["BRONZE_PGUSER"], "password": os.environ["BRONZE_PGPASSWORD"]}
    with psycopg.connect(**loader, autocommit=True) as conn:
        for n, hour in enumerate(published):
            inserted = {t: c["published"] for t, c in published[hour].items()}
            merged = {"topics": {t: {"inserted": k, "quarantined": 0, "remaining_lag": 0} for t, k in inserted.items()}}
            ops.record_bronze_loads(conn, merged, f"bi-fixture-{n}", [hour])
            # as if each hour had been loaded five minutes after it ended (the lag chart's time axis)
            conn.execute("update ops.bronze_loads set loaded_at = %s where dag_run_id = %s",
                         [datetime.fromisoformat(hour.replace("Z", "")) + timedelta(minutes=65), f"bi-fixture-{n}"])


class RunningWarehouse(SimpleNamespace):
    def __repr__(self) -> str:
        return f"RunningWarehouse({self.params['dbname']})"


@pytest.fixture(scope="session")
def gold_warehouse(postgres_service, tmp_path_factory):
    """A new database secured like the real one (`scripts/postgres.sh secure`): bronze written by the loader's
    role, silver and gold built by `dbt run` as the dbt role, the ops rows of those hours (`record_ops`); the
    analysts' role reads gold and ops only. Dropped after."""
    from shopstream.dbt.runner import run_dbt

    name = f"t_bi_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{postgres_service["user"]}"')
    params = {**postgres_service, "dbname": name}
    try:
        run_script("postgres.sh", "secure", name)
        loader = {**params, "user": os.environ["BRONZE_PGUSER"], "password": os.environ["BRONZE_PGPASSWORD"]}
        msgs = fixture_days(base_hour(days_ago=DAYS + 1, hour=10))
        with psycopg.connect(**loader) as conn:
            BronzeWriter(conn).insert(msgs)
        run_dbt(["run"], params, target_path=tmp_path_factory.mktemp("dbt-target"))
        record_ops(params, msgs)
        yield RunningWarehouse(params=params, analyst_conn=analyst_connection(params))
    finally:
        with psycopg.connect(admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def superset(gold_warehouse):
    """Superset on the gold warehouse, started by scripts/superset.sh (the venv, the metadata database
    `superset_test`, the admin login from .env, the dashboards' import); stopped at the end of the session.
    Yields url, user, password, env (to run the script again) and the start-up seconds."""
    env = {**os.environ, "AIRFLOW_CONN_ANALYST_DB": gold_warehouse.analyst_conn,
           "SUPERSET_PORT": str(free_port()), "SUPERSET_HOME": str(ROOT / ".local" / "superset-test"),
           "SUPERSET_METADATA_DB": "superset_test"}
    started = time.perf_counter()
    result = subprocess.run([str(SCRIPTS / "superset.sh"), "start"], env=env, capture_output=True, text=True,
                            timeout=900)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        subprocess.run([str(SCRIPTS / "superset.sh"), "stop"], env=env, capture_output=True)
        pytest.fail(f"scripts/superset.sh start failed ({result.returncode}):\n{result.stdout}\n{result.stderr[-6000:]}")
    try:
        yield RunningSuperset(url=f"http://127.0.0.1:{env['SUPERSET_PORT']}", user=env["SUPERSET_ADMIN_USER"],
                              password=env["SUPERSET_ADMIN_PASSWORD"], env=env, start_seconds=seconds,
                              warehouse=gold_warehouse)
    finally:
        subprocess.run([str(SCRIPTS / "superset.sh"), "stop"], env=env, capture_output=True, text=True)


class RunningSuperset(SimpleNamespace):
    """What the `superset` fixture yields; its repr names the URL only (a failing test must not print .env's
    secrets into the log)."""

    def __repr__(self) -> str:
        return f"RunningSuperset({self.url})"


def api_session(superset) -> tuple:
    """A requests session logged in to Superset's REST API (JWT + CSRF token); returns (session, base URL)."""
    import requests

    s = requests.Session()
    r = s.post(f"{superset.url}/api/v1/security/login", json={
        "username": superset.user, "password": superset.password, "provider": "db", "refresh": False}, timeout=60)
    r.raise_for_status()
    s.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    r = s.get(f"{superset.url}/api/v1/security/csrf_token/", timeout=60)
    r.raise_for_status()
    s.headers["X-CSRFToken"] = r.json()["result"]
    s.headers["Referer"] = superset.url
    return s, superset.url


ASSETS = Path(ROOT / "include" / "superset" / "assets")
