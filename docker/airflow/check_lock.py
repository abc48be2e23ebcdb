"""Fail the image build unless every package pinned in requirements.lock is installed at exactly that version.

The base image (apache/airflow) brings Airflow and its own providers; installing requirements.lock on top must
leave the image on the same versions as the native .venv (scripts/bootstrap.sh: `uv pip sync requirements.lock`).
Usage: python check_lock.py requirements.lock
"""

from __future__ import annotations

import re
import sys
from importlib import metadata

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#]+)\s*(?:;([^#]*))?")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def applies(marker: str | None) -> bool:
    """False for a pin whose environment marker excludes this platform (e.g. `; sys_platform == "win32"`)."""
    if not marker or not marker.strip():
        return True
    from packaging.markers import Marker

    return Marker(marker.strip()).evaluate()


def pins(path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            match = PIN.match(line.strip())
            if match and applies(match.group(3)):
                out[normalise(match.group(1))] = match.group(2)
    return out


def installed() -> dict[str, str]:
    return {normalise(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    wanted = pins(argv[0])
    if not wanted:
        print(f"error: no `name==version` pins found in {argv[0]}", file=sys.stderr)
        return 2
    have = installed()
    bad = [(name, version, have.get(name)) for name, version in sorted(wanted.items())
           if have.get(name) != version]
    for name, version, got in bad:
        print(f"error: {name}=={version} pinned in the lock, {got or 'not installed'} in the image", file=sys.stderr)
    if bad:
        return 1
    print(f"ok: all {len(wanted)} packages of {argv[0]} installed at their pinned versions")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
