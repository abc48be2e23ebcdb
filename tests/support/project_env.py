"""The environment of tests and benchmarks that use the project's real services, and the way in as superuser.

`load_project_env()` imports what scripts/common.sh builds (.env, the ports derived from its connections, PG*,
KAFKA_BOOTSTRAP, SHOPSTREAM_PG_ROOT...) into this process, once; variables already set win, as in common.sh.
Only tests that need the real services call it (through the `project_env` fixture of tests/conftest.py), so
pure unit tests never depend on .env. bench/ calls it directly.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
LOADED_FLAG = "SHOPSTREAM_ENV_LOADED"


def load_project_env() -> None:
    """Source scripts/common.sh (which creates or completes .env) and copy its environment into os.environ."""
    if os.environ.get(LOADED_FLAG) == "1":
        return
    result = subprocess.run(["bash", "-c", f'source "{SCRIPTS / "common.sh"}" && env -0'], capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"sourcing scripts/common.sh failed ({result.returncode}); fix .env as it says:\n"
                           f"{result.stderr.decode(errors='replace')}")
    for item in result.stdout.split(b"\0"):
        if b"=" in item:
            key, _, value = item.partition(b"=")
            os.environ.setdefault(key.decode(), value.decode())
    os.environ[LOADED_FLAG] = "1"


def run_script(name: str, *args: str) -> None:
    """Run scripts/<name> (start a service...); a failure raises with the script's output."""
    result = subprocess.run([str(SCRIPTS / name), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"scripts/{name} {' '.join(args)} failed ({result.returncode}):\n"
                           f"{result.stdout}\n{result.stderr}")


def admin_dsn(dbname: str = "postgres") -> str:
    """Superuser of the project's cluster over its private Unix socket (trust auth; only the local OS can reach
    it). Needs load_project_env() (SHOPSTREAM_PG_ROOT, PGPORT)."""
    return (f"host={Path(os.environ['SHOPSTREAM_PG_ROOT']) / 'run'} port={os.environ['PGPORT']} user=postgres "
            f"dbname={dbname}")
