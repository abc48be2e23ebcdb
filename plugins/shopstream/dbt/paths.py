"""Where the dbt project and its committed manifest live (no heavy imports: safe at DAG parse time)."""

from __future__ import annotations

import os
from pathlib import Path

# plugins/shopstream/dbt/paths.py -> repository root. SHOPSTREAM_ROOT (scripts/common.sh) wins, so a
# deployment that mounts plugins/ elsewhere (docker-compose) can point at the project.
_REPO_ROOT = Path(__file__).resolve().parents[3]
REPO_ROOT = Path(os.environ.get("SHOPSTREAM_ROOT") or _REPO_ROOT)

PROJECT_NAME = "shopstream"
PROJECT_DIR = REPO_ROOT / "include" / "dbt" / PROJECT_NAME
MANIFEST_PATH = PROJECT_DIR / "target" / "manifest.json"
# SQL the dbt models need applied to bronze (indexes); run after include/sql/bronze/*.sql.
BRONZE_SUPPORT_SQL_DIR = REPO_ROOT / "include" / "sql" / "dbt"

SILVER_SELECTOR = "tag:silver"
GOLD_SELECTOR = "tag:gold"
