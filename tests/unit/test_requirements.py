"""Runtime and development dependencies stay apart, and the two locks agree.

requirements.lock is what runs the pipeline (the native venv of `make demo`, the Airflow image);
requirements-dev.lock adds the test and development tools on top, constrained by the runtime lock. These
tests fail when a test tool slips into the runtime set, when the two locks pin a shared package differently
(one re-pinned without the other: `make lock` re-pins both), or when code that runs in production imports a
package that only the dev lock installs (the image would fail with ModuleNotFoundError).
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", re.M)
# Test and development tools: requirements-dev.txt names them, the runtime lock must not hold them.
DEV_TOOLS = {"pytest", "pytest-timeout", "ruff", "kafka-python", "playwright"}
# Code that runs where only the runtime lock is installed: the package and DAGs Airflow loads, the image's
# helpers, and the scripts and tools of the native stack (`make demo`, `make up`, `make airflow`).
SHIPPED = ("plugins", "dags", "include", "docker", "scripts", "tools")
# Superset's code runs in its own venv (.venv-bi, requirements-bi.lock), never in Airflow's.
OWN_VENV = ("include/superset",)


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: Path) -> dict[str, str]:
    return {normalise(name): version for name, version in PIN.findall(lock.read_text())}


def test_dev_lock_pins_every_runtime_package_at_its_runtime_version():
    runtime, dev = pins(RUNTIME_LOCK), pins(DEV_LOCK)
    differ = {name: (version, dev.get(name)) for name, version in runtime.items() if dev.get(name) != version}
    assert not differ, f"requirements.lock vs requirements-dev.lock (run `make lock`): {differ}"


def test_test_tools_are_in_the_dev_lock_only():
    runtime, dev = pins(RUNTIME_LOCK), pins(DEV_LOCK)
    assert not DEV_TOOLS & set(runtime), f"test tools in the runtime lock: {sorted(DEV_TOOLS & set(runtime))}"
    assert DEV_TOOLS <= set(dev), f"missing from the dev lock: {sorted(DEV_TOOLS - set(dev))}"


def test_the_image_installs_the_runtime_lock_only():
    instructions = [line for line in (ROOT / "docker" / "airflow.Dockerfile").read_text().splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
    assert not [line for line in instructions if "requirements-dev" in line]


def _imported_top_levels(path: Path) -> set[str]:
    """Top-level names of every absolute import in a file, function-level imports included."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_shipped_code_imports_only_runtime_packages():
    runtime = set(pins(RUNTIME_LOCK))
    distributions = metadata.packages_distributions()
    problems = []
    for folder in SHIPPED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "target" in path.parts or "dbt_packages" in path.parts:
                continue
            if any(path.relative_to(ROOT).as_posix().startswith(f"{own}/") for own in OWN_VENV):
                continue
            for name in sorted(_imported_top_levels(path)):
                local = (path.parent / f"{name}.py").exists() or (path.parent / name).is_dir()
                if name in sys.stdlib_module_names or local or (ROOT / "plugins" / name).is_dir():
                    continue
                owners = {normalise(d) for d in distributions.get(name, [])}
                if not owners & runtime:
                    where = ", ".join(sorted(owners)) or "no installed distribution"
                    problems.append(f"{path.relative_to(ROOT)} imports {name} ({where}): not in requirements.lock")
    assert not problems, "\n".join(problems)
