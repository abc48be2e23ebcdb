"""Import, once, in Airflow's long-lived processes what every task and every DAG parse would import again.

Why: the LocalExecutor forks its worker processes from the scheduler, and each task process is forked from a
worker; the DAG processor forks a process per DAG file parse. A module the parent has already imported costs
the child nothing, while importing dbt, its PostgreSQL adapter, Cosmos and our task modules costs every task
~1-2 s of CPU (bench/README.md, "Where a task's time goes"). On a 2-core machine that is most of a short task.

Called from include/airflow/airflow_local_settings.py (Airflow imports that module at start-up in every process)
for the components that fork task or parse processes. An import that fails is logged and skipped: preloading
is an optimisation, never a reason for Airflow not to start.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time

log = logging.getLogger(__name__)

# Heaviest first. All of them are imported by the task code anyway (lazily, inside the task callables).
TASK_MODULES = (
    "dbt.cli.main",
    "dbt.adapters.postgres",
    "cosmos",
    "cosmos.operators.local",
    "shopstream.dbt.build_once",
    "shopstream.dbt.cosmos_config",
    "shopstream.extract.tasks",
    "shopstream.bronze.airflow_entry",
    "shopstream.reconcile.task",
)
# The Airflow commands whose processes fork tasks or DAG parses (argv after `airflow`).
FORKING_COMMANDS = {"scheduler", "dag-processor", "celery"}


def preload(modules: tuple[str, ...] = TASK_MODULES) -> dict[str, float]:
    """Import `modules`; returns the seconds each took (failed ones are left out)."""
    took = {}
    for name in modules:
        started = time.perf_counter()
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - an optimisation only
            log.warning("preload: could not import %s (%s); tasks will import it themselves", name, exc)
            continue
        took[name] = round(time.perf_counter() - started, 3)
    return took


def preload_for_forking_command(argv: list[str] | None = None) -> dict[str, float]:
    """preload() when this process is an Airflow component that forks tasks or parses (see FORKING_COMMANDS)."""
    argv = sys.argv if argv is None else argv
    if len(argv) > 1 and argv[0].endswith("airflow") and argv[1] in FORKING_COMMANDS:
        return preload()
    return {}
