"""The Docker path's PostgreSQL init script (docker/postgres-init/10-shopstream.sh), run for real against the
project's own PostgreSQL (the static checks of the Docker path are in tests/unit/test_docker_compose.py)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = ROOT / "docker"


@pytest.mark.integration
def test_postgres_init_script_creates_role_and_databases(postgres_service):
    """docker/postgres-init/10-shopstream.sh against the project's PostgreSQL 15 (twice: it is idempotent)."""
    import psycopg

    socket_dir = ROOT / ".local" / "pg" / "run"  # the superuser's way in, as in tests/conftest.py
    admin = f"host={socket_dir} port={postgres_service['port']} user=postgres dbname=postgres"
    suffix = uuid.uuid4().hex[:8]
    role, db, meta = f"dock_{suffix}", f"dock_wh_{suffix}", f"dock_af_{suffix}"
    password = "p'w\"d $x"
    conn = json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": postgres_service["port"],
                       "schema": db, "login": role, "password": password})
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
           "PGHOST": str(socket_dir), "PGPORT": str(postgres_service["port"]),
           "POSTGRES_USER": "postgres", "AIRFLOW_CONN_WAREHOUSE_DB": conn, "SHOPSTREAM_METADATA_DB": meta}
    script = DOCKER_DIR / "postgres-init" / "10-shopstream.sh"
    try:
        for _ in range(2):
            result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
            assert result.returncode == 0, result.stderr
        for dbname in (db, meta):
            with psycopg.connect(host=postgres_service["host"], port=postgres_service["port"], user=role,
                                 password=password, dbname=dbname) as c:
                owner = c.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                                  (dbname,)).fetchone()[0]
                assert owner == role
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            for dbname in (db, meta):
                c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            c.execute(f'DROP ROLE IF EXISTS "{role}"')
