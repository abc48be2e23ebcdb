"""Helpers of the end-to-end tests: run the real DAGs in-process (dag.test) or through a running Airflow
(REST API), checksum gold, make the warehouse misbehave the real-world way."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shopstream.topics import TOPICS, env_var

ROOT = Path(__file__).resolve().parents[2]
BASES = TOPICS
DAG_IDS = ("shopstream_extract", "shopstream_bronze", "shopstream_dbt")
GOLD_TABLES = ("dim_customers", "dim_products", "fct_orders", "fct_order_items", "agg_orders_daily",
               "agg_events_daily")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pipeline_env(topics: Mapping[str, str], dummyjson_url: str, kafka_bootstrap: str) -> dict[str, str]:
    """The environment that points every stage at this test's topics, DummyJSON server and broker."""
    host, port = dummyjson_url.split("://", 1)[1].rsplit(":", 1)
    env = {env_var(base): name for base, name in topics.items()}
    env["AIRFLOW_CONN_DUMMYJSON_API"] = json.dumps({"conn_type": "http", "host": host, "port": int(port),
                                                    "schema": "http"})
    env["AIRFLOW_CONN_KAFKA_DEFAULT"] = json.dumps({"conn_type": "kafka",
                                                    "extra": {"bootstrap.servers": kafka_bootstrap}})
    return env


def warehouse_env(params: Mapping[str, Any]) -> dict[str, str]:
    """The PostgreSQL connections (dbt's warehouse_db, the loader's bronze_db, the analysts' analyst_db) for one
    database, all logging in as the warehouse role: the single-role set-up of tests/conftest.py's
    fresh_database (that role applies the bronze DDL and writes bronze itself)."""
    conn = json.dumps({"conn_type": "postgres", "host": params["host"], "port": int(params["port"]),
                       "schema": params["dbname"], "login": params["user"], "password": params["password"]})
    return {var: conn for var in ("AIRFLOW_CONN_WAREHOUSE_DB", "AIRFLOW_CONN_BRONZE_DB", "AIRFLOW_CONN_ANALYST_DB")}


def current_hour(margin: timedelta = timedelta(minutes=1)) -> datetime:
    """The current hour, at least `margin` away from its end (the hour must not change during set-up): closer
    to the top of the hour, waits for the next one."""
    now = datetime.now(UTC)
    top = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if top - now < margin:
        time.sleep((top - now).total_seconds() + 2)
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def gold_checksums(conn) -> dict[str, tuple[int, str]]:
    """{gold table: (rows, md5 of every row in a canonical order)} over the spec's columns."""
    from tests.e2e.oracle import GOLD_COLUMNS

    out = {}
    for table, cols in GOLD_COLUMNS.items():
        select = ", ".join(f'"{c}"' for c in cols)
        out[table] = tuple(conn.execute(
            f"select count(*), coalesce(md5(string_agg(r::text, E'\\n' order by r::text)), '') "
            f"from (select {select} from gold.{table}) as r").fetchone())
    return out


# ---------------------------------------------------------------------------------------------- dag.test


_DAGS: dict[str, Any] = {}


def load_dags() -> dict[str, Any]:
    """The project's DAGs parsed from dags/ (once per process)."""
    if not _DAGS:
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(ROOT / "dags"), safe_mode=False)
        assert not bag.import_errors, bag.import_errors
        _DAGS.update({d: bag.dags[d] for d in DAG_IDS if d in bag.dags})
    return _DAGS


@dataclass
class RunResult:
    dag_id: str
    run_id: str
    state: str
    seconds: float
    tasks: dict[str, str] = field(default_factory=dict)  # task_id[map_index] -> state
    xcoms: dict[str, Any] = field(default_factory=dict)  # task_id -> return value (first map index)
    dag_tasks: int = 0  # tasks in the DAG (a run with fewer task instances did not really run)

    def assert_ok(self) -> None:
        failed = {t: s for t, s in self.tasks.items() if s != "success"}
        ran = {t.split("[")[0] for t in self.tasks}
        assert self.state == "success" and not failed and len(ran) == self.dag_tasks, (
            f"{self.dag_id} {self.run_id}: {self.state}, {len(ran)} of {self.dag_tasks} tasks ran, not ok: {failed}")

    def states(self) -> Counter:
        return Counter(self.tasks.values())


def run_dag(dag_id: str, logical_date: datetime, conf: Mapping[str, Any] | None = None,
            xcom_tasks: Iterable[str] = ()) -> RunResult:
    """`dag.test()` one run in this process; returns its final state, task states and some XComs."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    dag = load_dags()[dag_id]
    with create_session() as session:  # a previous session's run at this logical date would collide
        for old in session.scalars(select(DagRun).where(DagRun.dag_id == dag_id,
                                                         DagRun.logical_date == logical_date)):
            session.delete(old)
    started = time.monotonic()
    dr = dag.test(logical_date=logical_date, run_conf=dict(conf) if conf else None)
    seconds = time.monotonic() - started
    with create_session() as session:
        dr = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == dr.run_id))
        tis = dr.get_task_instances(session=session)
        tasks = {f"{ti.task_id}" + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): str(ti.state) for ti in tis}
        xcoms = {}
        for task_id in xcom_tasks:
            ti = next((t for t in tis if t.task_id == task_id), None)
            if ti is not None:
                xcoms[task_id] = ti.xcom_pull(task_ids=task_id, map_indexes=ti.map_index, session=session)
        return RunResult(dag_id, dr.run_id, str(dr.state), seconds, tasks, xcoms, len(dag.task_dict))


# ---------------------------------------------------------------------------------------------- live Airflow


class AirflowError(AssertionError):
    pass


class LiveAirflow:
    """A live Airflow started by scripts/airflow.sh (api-server, scheduler with the LocalExecutor, dag-processor,
    triggerer; PostgreSQL metadata database in the project's cluster) with its own AIRFLOW_HOME, port, log-server
    ports and metadata database, driven through the REST API (token from POST /auth/token). `stop()` stops the
    processes and drops the metadata database."""

    def __init__(self, home: Path, env: Mapping[str, str], port: int | None = None):
        self.home = Path(home)
        self.port = port or free_port()
        self.metadata_db = f"airflow_t_{os.getpid()}_{self.port}"
        self.env = {**os.environ,
                    # every process of this Airflow listens on ports of its own (a developer's `make airflow` or
                    # another test run may hold the defaults)
                    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
                    **env, "AIRFLOW_HOME": str(self.home), "AIRFLOW_WEB_PORT": str(self.port),
                    "AIRFLOW_METADATA_DB": self.metadata_db}
        self.env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)  # scripts/airflow.sh sets it
        if "AIRFLOW__COSMOS__DBT_DOCS_PROJECTS" not in env:  # scripts/common.sh: a docs folder in this AIRFLOW_HOME
            self.env.pop("AIRFLOW__COSMOS__DBT_DOCS_PROJECTS", None)
        self.base = f"http://127.0.0.1:{self.port}"
        self._token: str | None = None
        self._session = None

    # --- process
    def _script(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run([str(ROOT / "scripts" / "airflow.sh"), *args], env=self.env,
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            tails = "".join(f"\n--- {log.name}\n{log.read_text()[-3000:]}"
                            for log in sorted((self.home / "logs").glob("*.log")))
            raise AirflowError(f"scripts/airflow.sh {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}{tails}")
        return result.stdout + result.stderr

    def start(self) -> None:
        self._script("start", timeout=400)

    def stop(self) -> None:
        """Stop every process and drop the metadata database (`scripts/airflow.sh drop-db` stops first)."""
        self._script("drop-db", timeout=200)

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run([str(ROOT / ".venv" / "bin" / "airflow"), *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    # --- REST
    def _http(self):
        if self._session is None:
            import requests

            self._session = requests.Session()
        return self._session

    def token(self) -> str:
        if self._token is None:
            r = self._http().post(f"{self.base}/auth/token", json={
                "username": self.env["AIRFLOW_ADMIN_USER"], "password": self.env["AIRFLOW_ADMIN_PASSWORD"]},
                timeout=30)
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kw) -> Any:
        """One REST call; retried on an expired token and on 503 (the API server briefly unavailable)."""
        for attempt in range(10):
            r = self._http().request(method, f"{self.base}/api/v2{path}",
                                     headers={"Authorization": f"Bearer {self.token()}"}, timeout=60, **kw)
            if r.status_code == 401 and attempt == 0:
                self._token = None
                continue
            if r.status_code == 503 and attempt < 9:
                time.sleep(1 + attempt)
                continue
            if r.status_code >= 400:
                raise AirflowError(f"{method} {path}: {r.status_code} {r.text[:2000]}")
            return r.json() if r.content else None
        raise AirflowError(f"{method} {path}: unauthorised")

    def wait_for_dags(self, dag_ids: Iterable[str] = DAG_IDS, timeout: float = 180) -> None:
        """Until the dag processor has parsed every DAG (the API knows them)."""
        deadline = time.monotonic() + timeout
        missing = set(dag_ids)
        while missing:
            for dag_id in list(missing):
                try:
                    self.api("GET", f"/dags/{dag_id}")
                    missing.discard(dag_id)
                except AirflowError:
                    pass
            if missing and time.monotonic() > deadline:
                errors = self.api("GET", "/importErrors")
                raise AirflowError(f"DAGs not parsed after {timeout} s: {sorted(missing)}; import errors: {errors}")
            if missing:
                time.sleep(2)

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def backfill(self, dag_id: str, start: datetime, end: datetime, reprocess: str = "none",
                 max_active_runs: int = 3) -> dict:
        return self.api("POST", "/backfills", json={
            "dag_id": dag_id, "from_date": iso(start), "to_date": iso(end), "reprocess_behavior": reprocess,
            "max_active_runs": max_active_runs, "run_backwards": False, "dag_run_conf": {}})

    def runs(self, dag_id: str) -> list[dict]:
        """Every run of `dag_id`, oldest first (the API pages by 100: a week's backfill is 168 runs)."""
        out: list[dict] = []
        while True:
            page = self.api("GET", f"/dags/{dag_id}/dagRuns",
                            params={"limit": 100, "offset": len(out), "order_by": "run_after"})
            out += page["dag_runs"]
            if not page["dag_runs"] or len(out) >= page["total_entries"]:
                return out

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                        params={"limit": 200})["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        value = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
                         params={"deserialize": "true"})["value"]
        return json.loads(value) if isinstance(value, str) else value

    def queued_events(self, dag_id: str) -> list[dict]:
        try:
            return self.api("GET", f"/dags/{dag_id}/assets/queuedEvents")["queued_events"]
        except AirflowError as exc:
            if " 404 " in str(exc):
                return []
            raise

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None, logical_date: datetime | None = None) -> dict:
        return self.api("POST", f"/dags/{dag_id}/dagRuns", json={
            "logical_date": iso(logical_date) if logical_date else None, "conf": dict(conf or {})})

    def clear(self, dag_id: str, run_id: str, task_ids: list[str | list], downstream: bool = True,
              only_failed: bool = True) -> list[dict]:
        body = {"dry_run": False, "dag_run_id": run_id, "task_ids": task_ids, "only_failed": only_failed,
                "include_downstream": downstream, "include_upstream": False, "reset_dag_runs": True}
        return self.api("POST", f"/dags/{dag_id}/clearTaskInstances", json=body)["task_instances"]

    def wait(self, condition: Callable[[], Any], timeout: float, what: str, interval: float = 3.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AirflowError(f"timed out after {timeout:.0f} s waiting for {what}; runs: {self.snapshot()}")
            time.sleep(interval)

    def snapshot(self) -> dict[str, list[tuple[str, str]]]:
        return {d: [(r["dag_run_id"], r["state"]) for r in self.runs(d)] for d in DAG_IDS}

    def settled(self, quiet_seconds: float = 5.0, timeout: float = 600) -> dict[str, list[dict]]:
        """Until no run of the three DAGs is queued/running and no asset event waits for the dbt DAG, stable
        for `quiet_seconds` (the scheduler creates asset-triggered runs a moment after the events)."""
        calm_since: float | None = None
        deadline = time.monotonic() + timeout
        while True:
            runs = {d: self.runs(d) for d in DAG_IDS}
            busy = [r for rs in runs.values() for r in rs if r["state"] in ("queued", "running")]
            waiting = self.queued_events("shopstream_dbt")
            if not busy and not waiting:
                calm_since = calm_since or time.monotonic()
                if time.monotonic() - calm_since >= quiet_seconds:
                    return runs
            else:
                calm_since = None
            if time.monotonic() > deadline:
                raise AirflowError(f"pipeline not settled after {timeout:.0f} s: busy {[(r['dag_id'], r['dag_run_id'], r['state']) for r in busy]}, queued events {waiting}")
            time.sleep(2)


def hours(start: datetime, n: int) -> list[datetime]:
    return [start + timedelta(hours=i) for i in range(n)]
