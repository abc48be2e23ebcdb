"""docker-compose.yaml (the Docker path) stays valid and in step with the native path.

Static checks parse the file with PyYAML: the services, healthchecks and depends_on conditions, that every
${VAR} it reads is defined in .env.example (and every .env.example variable is used or declared native-only),
that no password is written in it, that its services match what `make up` / `make airflow` run natively.
The helpers under docker/ are run for real: the connection rewrite, the lock check, the entrypoint (the
PostgreSQL init script runs against the project's own PostgreSQL in tests/integration/test_docker_postgres_init.py).

The last tests run the real Docker Compose v2 (`docker compose config`); they never skip. When the plugin
is missing they fail with the command that installs it (scripts/install-compose.sh builds it from the Go module
proxy: ~5 min with cold Go caches on 2 cores, once), or install it themselves when SHOPSTREAM_INSTALL_COMPOSE=1.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKER_DIR = ROOT / "docker"
INSTALL_COMPOSE = ROOT / "scripts" / "install-compose.sh"

AIRFLOW_SERVICES = {"airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-triggerer", "airflow-worker"}
# Native component -> its compose service. `airflow standalone` runs the four long-running components.
NATIVE_TO_COMPOSE = {
    "postgres": "postgres", "kafka": "kafka", "dummyjson": "dummyjson",
    "api-server": "airflow-apiserver", "scheduler": "airflow-scheduler",
    "dag-processor": "airflow-dag-processor", "triggerer": "airflow-triggerer",
    "superset": "superset",
}
# Services only the Docker path has, and why.
DOCKER_ONLY = {
    "redis": "Celery broker (natively `airflow standalone` runs tasks in-process)",
    "airflow-worker": "Celery worker, scaled with --scale",
    "airflow-init": "one-shot: airflow.cfg, db migrate, UI passwords file (natively scripts/airflow.sh init)",
    "kafka-init": "one-shot: topics (natively scripts/kafka.sh creates them on start)",
    "preflight": "one-shot: refuses a .env that still holds change-me (natively common.sh generates secrets)",
}
ONE_SHOT = {"preflight", "kafka-init", "airflow-init"}
# .env.example variables the Docker path does not read, and why.
NATIVE_ONLY_VARIABLES = {
    "KAFKA_START_TIMEOUT": "scripts/kafka.sh start-up wait; the kafka healthcheck plays that role here",
    "DUMMYJSON_START_TIMEOUT": "scripts/dummyjson.sh start-up wait; the dummyjson healthcheck plays that role here",
    "AIRFLOW_METADATA_DB": "scripts/airflow.sh's metadata database name; compose has its own airflow database",
    "AIRFLOW__COSMOS__DBT_DOCS_PROJECTS": "scripts/airflow.sh's dbt docs folder; compose sets its own on the dbt-docs "
                                          "volume",
}
TOPICS = ["customers", "products", "orders", "events"]


# ---------------------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def env_example_vars() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line.strip())
        if match:
            value = match.group(2)
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            out[match.group(1)] = value
    return out


def compose_variables(text: str) -> set[str]:
    """Variables compose interpolates: ${VAR...} and $VAR, but not the escaped $${VAR} / $$VAR."""
    text = text.replace("$$", "")
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text)) | set(
        re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", text))


def environment(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


def load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def container_env():
    return load_module("shopstream_container_env", DOCKER_DIR / "airflow" / "container_env.py")


def example_environ(**overrides) -> dict:
    env = {k: v for k, v in env_example_vars().items()}
    env["SHOPSTREAM_CONTAINER_HOSTS"] = "warehouse_db=postgres:5432,kafka_default=kafka:9092,dummyjson_api=dummyjson:58080"
    env.update(overrides)
    return env


# ---------------------------------------------------------------------------------------------- structure
def test_services_are_the_native_ones_plus_the_docker_only_ones(services):
    services_sh = (ROOT / "scripts" / "services.sh").read_text()
    native = set(re.findall(r'"\$S/([a-z]+)\.sh" start', services_sh))
    assert native == {"postgres", "kafka", "dummyjson"}, f"scripts/services.sh starts {native}: update this test"
    airflow_sh = (ROOT / "scripts" / "airflow.sh").read_text()
    components = re.search(r"starting Airflow \(([^)]*)\)", airflow_sh)
    assert components, "scripts/airflow.sh no longer names the components it starts"
    native |= {c.strip() for c in components.group(1).split(",")}
    # `make bi` starts Superset natively (scripts/superset.sh).
    assert re.search(r"^bi:.*\n\t.*scripts/superset\.sh start|^bi:.*\n\t@\$\(S\)/superset\.sh start",
                     (ROOT / "Makefile").read_text(), re.M), "make bi no longer starts scripts/superset.sh"
    native.add("superset")
    unmapped = native - NATIVE_TO_COMPOSE.keys()
    assert not unmapped, f"native components without a compose service: {unmapped}"
    expected = {NATIVE_TO_COMPOSE[n] for n in native} | DOCKER_ONLY.keys()
    assert set(services) == expected


def test_long_running_services_have_healthchecks_and_one_shots_do_not_restart(services):
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", name
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable"), name
        assert service.get("restart") in {"always", "unless-stopped"}, name


def test_depends_on_uses_conditions_that_can_be_met(services):
    for name, service in services.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            condition = spec.get("condition")
            if condition == "service_healthy":
                assert services[dep].get("healthcheck"), f"{name} waits for {dep} to be healthy: no healthcheck"
            elif condition == "service_completed_successfully":
                assert dep in ONE_SHOT, f"{name} waits for long-running {dep} to complete"
            else:
                pytest.fail(f"{name} -> {dep}: condition {condition!r}")
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        deps = services[name]["depends_on"]
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
    worker = services["airflow-worker"]["depends_on"]
    assert worker["kafka-init"]["condition"] == "service_completed_successfully"
    assert worker["dummyjson"]["condition"] == "service_healthy"
    assert services["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["postgres"]["depends_on"]["preflight"]["condition"] == "service_completed_successfully"


def test_airflow_services_share_the_image_mounts_and_settings(compose, services):
    for name in AIRFLOW_SERVICES | {"dummyjson", "preflight"}:
        build = services[name]["build"]
        assert build == {"context": ".", "dockerfile": "docker/airflow.Dockerfile"}, name
        assert services[name]["image"] == "shopstream-airflow:3.3.2", name
    for name in AIRFLOW_SERVICES:
        service = services[name]
        volumes = service["volumes"]
        for folder in ("dags", "plugins", "include"):
            assert f"./{folder}:/opt/airflow/{folder}" in volumes, (name, folder)
        env = environment(service)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
        assert env["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] == "False"
        assert env["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "False"
        assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].startswith("${AIRFLOW_ADMIN_USER:?")
        assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].startswith("/opt/airflow/config/")
        for var in ("AIRFLOW_CONN_WAREHOUSE_DB", "AIRFLOW_CONN_KAFKA_DEFAULT", "AIRFLOW_CONN_DUMMYJSON_API"):
            assert env[var].startswith("${" + var + ":?"), (name, var)
        hosts = dict(item.split("=") for item in env["SHOPSTREAM_CONTAINER_HOSTS"].split(","))
        assert hosts == {"warehouse_db": "postgres:5432", "kafka_default": "kafka:9092",
                         "dummyjson_api": "dummyjson:58080"}
        # Only the init job sees the UI password.
        assert ("AIRFLOW_ADMIN_PASSWORD" in env) == (name == "airflow-init"), name
    assert environment(services["airflow-init"])["AIRFLOW_ADMIN_PASSWORD"].startswith("${AIRFLOW_ADMIN_PASSWORD:?")
    init_script = "\n".join(services["airflow-init"]["command"])
    for step in ("airflow db migrate", "passwords-file", "check-warehouse"):
        assert step in init_script
    assert services["airflow-apiserver"]["ports"] == ["${AIRFLOW_WEB_PORT:-8080}:8080"]
    assert services["airflow-worker"]["command"] == "celery worker"
    # Nothing but the two UIs (Airflow, Superset) is published on the host (the native services keep their ports
    # to themselves).
    published = {n for n, s in services.items() if s.get("ports")}
    assert published == {"airflow-apiserver", "superset"}


def test_superset_service_runs_the_bi_lock_and_the_analysts_connection(services):
    """The superset service: the image of requirements-bi.lock (as .venv-bi), the provisioning of scripts/superset.sh
    (migrate, admin, import of include/superset/assets), its own port, the postgres service's metadata database."""
    service = services["superset"]
    assert service["build"] == {"context": ".", "dockerfile": "docker/superset.Dockerfile"}
    dockerfile = (DOCKER_DIR / "superset.Dockerfile").read_text()
    assert "uv pip install --system --no-cache -r /opt/shopstream/requirements-bi.lock" in dockerfile
    entrypoint = (DOCKER_DIR / "superset" / "entrypoint.sh").read_text()
    assert "container_env.py exports" in entrypoint and "include/superset/provision.py" in entrypoint
    assert "gunicorn --bind 0.0.0.0:8088" in entrypoint
    assert service["ports"] == ["${SUPERSET_PORT:-8088}:8088"]
    assert "./include/superset:/opt/shopstream/include/superset:ro" in service["volumes"]
    env = environment(service)
    for var in ("SUPERSET_ADMIN_USER", "SUPERSET_ADMIN_PASSWORD", "SUPERSET_SECRET_KEY", "AIRFLOW_CONN_ANALYST_DB",
                "AIRFLOW_CONN_WAREHOUSE_DB"):
        assert env[var].startswith("${" + var + ":?"), var
    assert environment(services["postgres"])["SUPERSET_METADATA_DB"] == env["SUPERSET_METADATA_DB"]
    assert services["superset"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_kafka_and_its_topics(services):
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:${SHOPSTREAM_KAFKA_VERSION")
    env = environment(kafka)
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert "${SHOPSTREAM_KAFKA_CONTROLLER_PORT" in env["KAFKA_LISTENERS"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    init = services["kafka-init"]
    assert init["image"] == kafka["image"]
    script = "\n".join(init["command"])
    assert "--if-not-exists" in script and "--partitions \"${SHOPSTREAM_KAFKA_PARTITIONS" in script
    assert re.search(r"for topic in ([a-z ]+); do", script).group(1).split() == TOPICS
    contracts = (ROOT / "docs" / "contracts.md").read_text()
    assert all(f"`{t}`" in contracts for t in TOPICS)


def test_dummyjson_service_runs_the_project_server(services):
    service = services["dummyjson"]
    assert service["entrypoint"] == ["python", "-m", "shopstream.dummyjson_stub"]
    args = service["command"]
    assert args[args.index("--port") + 1] == "58080" and args[args.index("--host") + 1] == "0.0.0.0"
    env = environment(service)
    assert env["PYTHONPATH"] == "/opt/airflow/plugins"
    assert env["SHOPSTREAM_DUMMYJSON_DATA"] == "/data/dummyjson"
    assert any(v.startswith("${SHOPSTREAM_DUMMYJSON_DATA") and v.endswith(":/data/dummyjson:ro")
               for v in service["volumes"])
    assert (ROOT / "plugins" / "shopstream" / "dummyjson_stub" / "__main__.py").is_file()


def test_postgres_service_initialises_from_the_warehouse_connection(services):
    service = services["postgres"]
    assert service["image"] == "postgres:15"
    assert "./docker/postgres-init:/docker-entrypoint-initdb.d:ro" in service["volumes"]
    assert environment(service)["AIRFLOW_CONN_WAREHOUSE_DB"].startswith("${AIRFLOW_CONN_WAREHOUSE_DB:?")
    assert "POSTGRES_PASSWORD" not in environment(service)
    assert os.access(DOCKER_DIR / "postgres-init" / "10-shopstream.sh", os.X_OK)


# ---------------------------------------------------------------------------------------------- variables
def test_every_variable_is_defined_in_env_example():
    used = compose_variables(COMPOSE_FILE.read_text())
    missing = used - env_example_vars().keys()
    assert not missing, f"docker-compose.yaml reads variables .env.example does not define: {sorted(missing)}"


def test_every_env_example_variable_is_used_or_native_only():
    used = compose_variables(COMPOSE_FILE.read_text())
    unused = env_example_vars().keys() - used - NATIVE_ONLY_VARIABLES.keys()
    assert not unused, (f".env.example variables docker-compose.yaml ignores: {sorted(unused)}; "
                        "use them or add them to NATIVE_ONLY_VARIABLES with the reason")


def test_required_secrets_fail_loudly_when_unset():
    text = COMPOSE_FILE.read_text().replace("$$", "")  # $${VAR} is the container's shell, not compose
    for var in ("AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_ADMIN_USER", "AIRFLOW_CONN_WAREHOUSE_DB"):
        refs = re.findall(r"\$\{" + var + r"([^}]*)\}", text)
        assert refs and all(r.startswith(":?") for r in refs), (var, refs)


def test_no_password_literal_in_the_file(compose):
    text = json.dumps(compose)  # the content, not the comments
    assert "change-me" not in text
    assert not re.search(r"://[^/\s:@${}]+:[^@\s${}]+@", text), "credentials written into a URL"
    secret_key = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|API_KEY|_CONN$|_CONN_", re.I)

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, str) and secret_key.search(key) and value is not None:
                    value = str(value)
                    ok = (re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:[?-][^}]*)?\}", value)
                          or key.endswith("_CMD") or key.endswith("_FILE") or key == "SHOPSTREAM_CONTAINER_HOSTS")
                    assert ok, f"{key} has a literal value: {value!r}"
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(compose)


# ---------------------------------------------------------------------------------------------- image
def test_dockerfile_extends_the_official_image_with_the_lock():
    dockerfile = (DOCKER_DIR / "airflow.Dockerfile").read_text()
    lock = (ROOT / "requirements.lock").read_text()
    airflow = re.search(r"^apache-airflow==(\S+)$", lock, re.M).group(1)
    python = re.search(r'requires-python = ">=(3\.\d+)', (ROOT / "pyproject.toml").read_text()).group(1)
    assert re.search(rf"^FROM apache/airflow:{re.escape(airflow)}-python{re.escape(python)}$", dockerfile, re.M)
    assert re.search(r"^RUN uv pip install .*-r /opt/shopstream/requirements\.lock", dockerfile, re.M)
    assert "check_lock.py /opt/shopstream/requirements.lock" in dockerfile
    copied = re.findall(r"^COPY (.+)$", dockerfile, re.M)
    for line in copied:
        for folder in ("dags", "plugins", "include", "tests"):
            assert not re.search(rf"(^|\s){folder}(/|\s|$)", line), f"{folder}/ is mounted, not copied: {line}"


def test_dockerignore_keeps_secrets_and_local_state_out():
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    for entry in (".venv", ".local", ".git", "bench/results", "artifacts", ".env", "dags", "plugins", "include"):
        assert entry in lines, entry
    assert "requirements.lock" not in lines and not any(line.startswith("docker") for line in lines)


def test_check_lock_accepts_the_pins_it_finds_and_rejects_the_rest(tmp_path):
    from importlib import metadata

    pytest_version = metadata.version("pytest")
    yaml_version = metadata.version("PyYAML")
    script = DOCKER_DIR / "airflow" / "check_lock.py"
    good = tmp_path / "good.lock"
    good.write_text(f"# header\npytest=={pytest_version}\n    # via -r requirements.txt\n"
                    f"PyYAML=={yaml_version}\n"
                    'pywin32==311 ; sys_platform == "win32"\n')
    result = subprocess.run([sys.executable, str(script), str(good)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "all 2 packages" in result.stdout
    bad = tmp_path / "bad.lock"
    bad.write_text(f"pytest==0.0.1\nno-such-package-shopstream==1.0\npyyaml=={yaml_version}\n")
    result = subprocess.run([sys.executable, str(script), str(bad)], capture_output=True, text=True)
    assert result.returncode == 1
    assert f"pytest==0.0.1 pinned in the lock, {pytest_version} in the image" in result.stderr
    assert "no-such-package-shopstream==1.0 pinned in the lock, not installed" in result.stderr


# ---------------------------------------------------------------------------------------------- container env
def test_loopback_hosts_become_compose_services(container_env):
    conns = container_env.container_connections(example_environ())
    native = {k: json.loads(v) for k, v in env_example_vars().items() if k.startswith("AIRFLOW_CONN_")}
    pg = conns["warehouse_db"]
    assert (pg["host"], pg["port"]) == ("postgres", 5432)
    expected_pg = native["AIRFLOW_CONN_WAREHOUSE_DB"]
    assert {k: pg[k] for k in ("login", "password", "schema")} == {
        k: expected_pg[k] for k in ("login", "password", "schema")}
    assert conns["kafka_default"]["extra"]["bootstrap.servers"] == "kafka:9092"
    assert (conns["dummyjson_api"]["host"], conns["dummyjson_api"]["port"]) == ("dummyjson", 58080)


def test_remote_hosts_are_kept(container_env):
    real_api = '{"conn_type":"http","host":"dummyjson.com","schema":"https"}'
    remote_kafka = '{"conn_type":"kafka","extra":{"bootstrap.servers":"b1.example:9092,127.0.0.1:29092","group.id":"g"}}'
    conns = container_env.container_connections(
        example_environ(AIRFLOW_CONN_DUMMYJSON_API=real_api, AIRFLOW_CONN_KAFKA_DEFAULT=remote_kafka))
    assert conns["dummyjson_api"] == json.loads(real_api)
    assert conns["kafka_default"]["extra"] == {"bootstrap.servers": "b1.example:9092,kafka:9092", "group.id": "g"}


def test_metadata_db_url_quotes_the_credentials(container_env):
    conn = '{"conn_type":"postgres","host":"127.0.0.1","port":25432,"schema":"wh","login":"u@x","password":"p:/@%"}'  # test-credential
    env = example_environ(AIRFLOW_CONN_WAREHOUSE_DB=conn)
    assert container_env.sql_alchemy_conn(env) == "postgresql+psycopg2://u%40x:p%3A%2F%40%25@postgres:5432/airflow"  # test-credential
    assert container_env.result_backend(env) == "db+postgresql://u%40x:p%3A%2F%40%25@postgres:5432/airflow"  # test-credential


def test_preflight_refuses_placeholders(container_env):
    problems = container_env.preflight(example_environ())
    assert any("AIRFLOW_ADMIN_PASSWORD" in p for p in problems)
    assert any("AIRFLOW_CONN_WAREHOUSE_DB" in p for p in problems)
    filled = example_environ(AIRFLOW_ADMIN_PASSWORD="s3cret", AIRFLOW_CONN_WAREHOUSE_DB=env_example_vars()[  # test-credential
        "AIRFLOW_CONN_WAREHOUSE_DB"].replace("change-me", "s3cret"))
    assert container_env.preflight(filled) == []
    broken = example_environ(AIRFLOW_CONN_KAFKA_DEFAULT="{not json")
    assert any("AIRFLOW_CONN_KAFKA_DEFAULT is not valid JSON" in p for p in container_env.preflight(broken))


def test_passwords_file_is_private(container_env, tmp_path):
    path = tmp_path / "passwords.json"
    container_env.write_passwords_file(str(path), {"AIRFLOW_ADMIN_USER": "ada", "AIRFLOW_ADMIN_PASSWORD": "pw"})
    assert json.loads(path.read_text()) == {"ada": "pw"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(container_env.ConfigError):
        container_env.write_passwords_file(str(path), {"AIRFLOW_ADMIN_USER": "ada"})


def test_entrypoint_exports_the_rewritten_connections(tmp_path):
    """docker/airflow/entrypoint.sh, run by bash as the image runs it (with a stand-in for /entrypoint)."""
    next_entrypoint = tmp_path / "entrypoint"
    next_entrypoint.write_text("#!/usr/bin/env bash\nenv\n")
    next_entrypoint.chmod(0o755)
    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HOME": str(tmp_path),
           "SHOPSTREAM_DOCKER_DIR": str(DOCKER_DIR / "airflow"), "SHOPSTREAM_NEXT_ENTRYPOINT": str(next_entrypoint),
           **example_environ()}
    result = subprocess.run(["bash", str(DOCKER_DIR / "airflow" / "entrypoint.sh"), "scheduler"], env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    seen = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert json.loads(seen["AIRFLOW_CONN_WAREHOUSE_DB"])["host"] == "postgres"
    assert (seen["PGHOST"], seen["PGPORT"], seen["KAFKA_BOOTSTRAP"]) == ("postgres", "5432", "kafka:9092")
    assert (seen["DUMMYJSON_HOST"], seen["DUMMYJSON_PORT"]) == ("dummyjson", "58080")
    # `shopstream-env CMD` (the symlink the image installs) runs CMD instead of the next entrypoint.
    link = tmp_path / "shopstream-env"
    link.symlink_to(DOCKER_DIR / "airflow" / "entrypoint.sh")
    result = subprocess.run(["bash", str(link), "bash", "-c", 'echo "$PGHOST $KAFKA_BOOTSTRAP"'], env=env,
                            capture_output=True, text=True)
    assert (result.returncode, result.stdout.strip()) == (0, "postgres kafka:9092"), result.stderr


# ---------------------------------------------------------------------------------------------- real compose
def _compose_command() -> list[str]:
    """`docker compose` (or the plugin binary itself when there is no docker CLI); never a skip."""
    def works(cmd: list[str]) -> bool:
        try:
            return subprocess.run([*cmd, "version"], capture_output=True, timeout=60).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    plugin = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "cli-plugins" / "docker-compose"
    candidates = ([["docker", "compose"]] if shutil.which("docker") else []) + [[str(plugin)]]
    for cmd in candidates:
        if works(cmd):
            return cmd
    if os.environ.get("SHOPSTREAM_INSTALL_COMPOSE") != "1":
        pytest.fail(
            "Docker Compose v2 is not installed (`docker compose version` fails), so docker-compose.yaml cannot "
            "be validated.\nInstall it once with `scripts/install-compose.sh` (builds it from the Go module "
            "proxy: ~5 min with cold Go caches on 2 cores, seconds when warm), or run the tests with "
            "SHOPSTREAM_INSTALL_COMPOSE=1 to let them install it.", pytrace=False)
    result = subprocess.run(["bash", str(INSTALL_COMPOSE)], capture_output=True, text=True, timeout=1500)
    if result.returncode != 0:
        pytest.fail(f"Docker Compose v2 is not installed and scripts/install-compose.sh failed "
                    f"({result.returncode}):\n{result.stdout}\n{result.stderr[-4000:]}")
    for cmd in candidates:
        if works(cmd):
            return cmd
    pytest.fail(f"scripts/install-compose.sh succeeded but neither `docker compose` nor {plugin} works")


@pytest.fixture(scope="module")
def compose_cmd() -> list[str]:
    return _compose_command()


def run_compose(cmd: list[str], *args: str, env_file: Path = ENV_EXAMPLE) -> subprocess.CompletedProcess:
    # A clean environment: values exported by conftest (the real .env) would override --env-file.
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "DOCKER_CONFIG", "TMPDIR"}}
    return subprocess.run([*cmd, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.timeout(1800)
def test_docker_compose_config_is_valid(compose_cmd):
    result = run_compose(compose_cmd, "config", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # no warnings (e.g. an unset variable)


@pytest.mark.timeout(1800)
def test_docker_compose_renders_every_service_from_env_example(compose_cmd, services):
    result = run_compose(compose_cmd, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    rendered = json.loads(result.stdout)
    assert set(rendered["services"]) == set(services)
    example = env_example_vars()
    assert rendered["services"]["kafka"]["image"] == f"apache/kafka:{example['SHOPSTREAM_KAFKA_VERSION']}"
    ports = rendered["services"]["airflow-apiserver"]["ports"]
    assert [(p["published"], p["target"]) for p in ports] == [(example["AIRFLOW_WEB_PORT"], 8080)]
    worker_env = rendered["services"]["airflow-worker"]["environment"]
    assert worker_env["AIRFLOW_CONN_WAREHOUSE_DB"] == example["AIRFLOW_CONN_WAREHOUSE_DB"]
    assert worker_env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == f"{example['AIRFLOW_ADMIN_USER']}:admin"
    init_env = rendered["services"]["airflow-init"]["environment"]
    assert init_env["AIRFLOW_ADMIN_PASSWORD"] == example["AIRFLOW_ADMIN_PASSWORD"]
    data = [v for v in rendered["services"]["dummyjson"]["volumes"] if v["target"] == "/data/dummyjson"][0]
    assert data["read_only"] is True
    assert Path(data["source"]) == (ROOT / example["SHOPSTREAM_DUMMYJSON_DATA"]).resolve()


@pytest.mark.timeout(1800)
def test_docker_compose_refuses_a_missing_password(compose_cmd, tmp_path):
    env_file = tmp_path / "no-password.env"
    env_file.write_text("\n".join(line for line in ENV_EXAMPLE.read_text().splitlines()
                                  if not line.startswith("AIRFLOW_ADMIN_PASSWORD=")))
    result = run_compose(compose_cmd, "config", "--quiet", env_file=env_file)
    assert result.returncode != 0
    assert "AIRFLOW_ADMIN_PASSWORD" in result.stderr and "set it in .env" in result.stderr
