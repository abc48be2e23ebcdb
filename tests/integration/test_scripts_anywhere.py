"""The service scripts work from any checkout path and serialize concurrent starts.

A copy of this checkout (its tracked files as they are now) in a folder whose path needs quoting - spaces, a
single quote, a `$` - with its own ports and a fresh .local: two `scripts/services.sh up` at once must both exit 0
and leave one PostgreSQL cluster, one broker and one DummyJSON server running (before, pg_ctl handed the path to
/bin/sh and PostgreSQL did not start; the DummyJSON server split its data folder at the spaces; two starts at once
raced on initdb and pg_ctl and one failed on PostgreSQL's lock file); then `status` and `down` work there too.
Airflow's start is not run here (the Airflow tests start it: tests/e2e).

The copy shares this checkout's virtualenv (a symlink), and its lock files are the ones that virtualenv was synced
to, so `scripts/bootstrap.sh` finds it current and never re-syncs the shared virtualenv.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.private_services import free_port
from tests.support.project_env import ROOT

pytestmark = pytest.mark.slow

QUOTED_FOLDER = "shop stream's $dir"
# What the copy's environment keeps from ours: nothing of the project's own configuration (.env, common.sh's exports).
KEPT = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "JAVA_HOME", "M2_HOME", "MAVEN_OPTS")


def _copy_checkout(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name, follow_symlinks=False)
    venv = (ROOT / ".venv").resolve()
    (dest / ".venv").symlink_to(venv)
    stamps = sorted(venv.glob(".installed-*.lock"))
    assert stamps, f"{venv} has no .installed-*.lock stamp: run `make venv` (scripts/bootstrap.sh) in {ROOT} first"
    for stamp in stamps:
        shutil.copy(stamp, dest / stamp.name.removeprefix(".installed-"))


def _environment(dest: Path) -> dict[str, str]:
    ports: set[int] = set()
    for _ in range(5):
        ports.add(free_port(exclude=ports))
    pg, kafka, controller, api, web = sorted(ports)

    def postgres(login: str) -> str:
        return json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": pg, "schema": "shopstream",
                           "login": login, "password": secrets.token_urlsafe(12)})

    env = {k: os.environ[k] for k in KEPT if k in os.environ}
    env.update({
        "AIRFLOW_CONN_WAREHOUSE_DB": postgres("shopstream"),
        "AIRFLOW_CONN_BRONZE_DB": postgres("shopstream_loader"),
        "AIRFLOW_CONN_ANALYST_DB": postgres("shopstream_analyst"),
        "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps({"conn_type": "kafka",
                                                  "extra": {"bootstrap.servers": f"127.0.0.1:{kafka}"}}),
        "AIRFLOW_CONN_DUMMYJSON_API": json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": api,
                                                  "schema": "http"}),
        "SHOPSTREAM_KAFKA_CONTROLLER_PORT": str(controller),
        "AIRFLOW_WEB_PORT": str(web),
        "SHOPSTREAM_PG_SSL": "off",
    })
    # The DummyJSON snapshot, when this checkout has one, served from a folder whose path needs quoting as well.
    snapshot = Path(os.environ.get("SHOPSTREAM_DUMMYJSON_DATA") or "../shared/dummyjson")
    snapshot = snapshot if snapshot.is_absolute() else ROOT / snapshot
    if all((snapshot / f).is_file() for f in ("users.json", "products.json", "carts.json")):
        data = dest / "snapshot $x 'q'"
        data.mkdir()
        for f in ("users.json", "products.json", "carts.json"):
            (data / f).symlink_to((snapshot / f).resolve())
        env["SHOPSTREAM_DUMMYJSON_DATA"] = data.name
    return env


@pytest.fixture(scope="module")
def elsewhere():
    """(root, env) of the copy; its services are stopped and the copy deleted afterwards."""
    base = Path(tempfile.mkdtemp(prefix="shopstream-anywhere-"))
    base.chmod(0o755)  # as root, the `postgres` OS user must reach the cluster's folder under it
    root = base / QUOTED_FOLDER
    root.mkdir()
    env = None
    try:
        _copy_checkout(root)
        env = _environment(root)
        yield root, env
    finally:
        if env is not None:
            subprocess.run([str(root / "scripts" / "services.sh"), "down"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


def _script(root: Path, env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(root / "scripts" / "services.sh"), *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _processes_with(*needles: str) -> list[int]:
    """Pids whose command line holds every needle."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if all(n in cmdline for n in needles):
                found.append(int(proc.name))
    return found


def test_two_starts_at_once_in_a_path_that_needs_quoting_both_succeed(elsewhere):
    root, env = elsewhere
    assert not (root / ".local").exists()
    cmd = [str(root / "scripts" / "services.sh"), "up"]
    first, second = (subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True) for _ in range(2))
    outputs = [p.communicate(timeout=300)[0] for p in (first, second)]
    for proc, out in zip((first, second), outputs, strict=True):
        assert proc.returncode == 0, f"services.sh up exited {proc.returncode}:\n{out}"
    both = "\n".join(outputs)
    assert "PostgreSQL already running" in both, both
    assert "Kafka already running" in both, both
    assert "DummyJSON server already running" in both, both
    pg_port = json.loads(env["AIRFLOW_CONN_WAREHOUSE_DB"])["port"]
    postmasters = [pid for pid in _processes_with(f"-p {pg_port} ", "listen_addresses")
                   if Path(f"/proc/{pid}/exe").resolve().name == "postgres"]
    assert len(postmasters) == 1, f"expected one PostgreSQL cluster on port {pg_port}, found pids {postmasters}"
    assert len(_processes_with("kafka.Kafka", str(root / ".local" / "kafka" / "server.properties"))) == 1


def test_status_and_down_in_a_path_that_needs_quoting(elsewhere):
    root, env = elsewhere
    up = _script(root, env, "up")  # idempotent: also when this test runs alone
    assert up.returncode == 0, up.stdout + up.stderr
    status = _script(root, env, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    for service in ("postgres", "kafka", "dummyjson"):
        assert f"{service}: running" in status.stdout, status.stdout
    if "SHOPSTREAM_DUMMYJSON_DATA" in env:
        assert "snapshot $x 'q'" in status.stdout, status.stdout  # the snapshot's folder, not a generated one
    down = _script(root, env, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    after = _script(root, env, "status")
    assert after.returncode == 1 and "postgres: stopped" in after.stdout, after.stdout
