"""The one DagBag of the DAG tests: every file under dags/ parsed once per session, the way Airflow's DAG
processor parses it, with no connection defined, no network and no dbt.

Airflow and Cosmos are imported before the parse, as in the DAG processor, which
preloads both (shopstream.preload, via include/airflow/airflow_local_settings.py), and the refusal of `dbt ls`
needs Cosmos' graph class. A DAG file that opens a connection or runs `dbt ls` while it is parsed shows up as an
import error of that file (tests/dags/test_dag_integrity.py). A test module that sets DAG_ID gets that DAG from
the bag as the fixture `dag`.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


class NetworkAtImport(RuntimeError):
    pass


class DbtAtImport(RuntimeError):
    pass


@pytest.fixture(scope="session")
def dagbag():
    """The DagBag of dags/."""
    import airflow  # noqa: F401
    import airflow.sdk  # noqa: F401
    import cosmos.dbt.graph as graph
    from airflow.dag_processing.dagbag import DagBag

    def refuse_connect(sock, address):
        raise NetworkAtImport(f"DAG file opened a network connection to {address} at import time")

    def refuse_create_connection(address, *args, **kwargs):
        raise NetworkAtImport(f"DAG file opened a network connection to {address} at import time")

    def refuse_dbt_ls(*args, **kwargs):
        raise DbtAtImport("the DAG file ran dbt ls at parse time")

    mp = pytest.MonkeyPatch()
    try:
        for key in [k for k in os.environ if k.startswith("AIRFLOW_CONN_")]:
            mp.delenv(key)
        mp.setattr(socket.socket, "connect", refuse_connect)
        mp.setattr(socket, "create_connection", refuse_create_connection)
        mp.setattr(graph.DbtGraph, "load_via_dbt_ls", refuse_dbt_ls)
        mp.setattr(graph.DbtGraph, "load_via_dbt_ls_without_cache", refuse_dbt_ls)
        bag = DagBag(dag_folder=str(DAGS_FOLDER), safe_mode=False)
    finally:
        mp.undo()
    return bag


@pytest.fixture(scope="module")
def dag(request, dagbag):
    """The DAG named by the test module's DAG_ID, from the shared DagBag."""
    dag_id = request.module.DAG_ID
    assert dag_id in dagbag.dags, f"{dag_id} not in the DagBag; import errors: {dagbag.import_errors}"
    return dagbag.dags[dag_id]
