"""Superset's configuration for ShopStream (SUPERSET_CONFIG_PATH points here: scripts/superset.sh, docker-compose).

Everything comes from the environment that scripts/common.sh builds from .env, never from literals:
- the metadata database: SUPERSET_METADATA_DB on the server of AIRFLOW_CONN_WAREHOUSE_DB, with that connection's
  login (as Airflow's metadata database; the warehouse role owns it);
- SECRET_KEY: SUPERSET_SECRET_KEY (generated into .env; it signs sessions and encrypts the stored database
  passwords, so changing it makes the stored analyst password unreadable until the next `make bi` re-imports it).
The warehouse connection Superset queries is the analysts' (AIRFLOW_CONN_ANALYST_DB), set by the import
(include/superset/provision.py), not here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(os.environ.get("SHOPSTREAM_ROOT") or Path(__file__).resolve().parents[2])
sys.path.insert(0, str(ROOT / "plugins"))

from shopstream.connections import WAREHOUSE_DB, sqlalchemy_url_from_env  # noqa: E402 - stdlib only

SECRET_KEY = os.environ.get("SUPERSET_SECRET_KEY") or sys.exit(
    "error: SUPERSET_SECRET_KEY is not set; run through `make bi` (scripts/common.sh generates it into .env)")
SQLALCHEMY_DATABASE_URI = sqlalchemy_url_from_env(WAREHOUSE_DB, os.environ.get("SUPERSET_METADATA_DB") or "superset")
# Superset's own data directory (uploads, the local cache): under .local/, never the home directory.
DATA_DIR = os.environ.get("SUPERSET_HOME") or str(ROOT / ".local" / "superset")

# No outbound calls (the machine is offline), no example data, no telemetry.
SUPERSET_LOAD_EXAMPLES = False
FEATURE_FLAGS = {"DASHBOARD_RBAC": False, "ALERT_REPORTS": False, "EMBEDDED_SUPERSET": False}
# Local use over plain HTTP: the session cookie must not be Secure-only, and CSRF stays on for the UI forms.
SESSION_COOKIE_SECURE = False
SESSION_COOKIE_SAMESITE = "Lax"
TALISMAN_ENABLED = False
WTF_CSRF_ENABLED = True
# Charts run their queries in the web process (no Celery here); one simple cache in the process.
CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300}
DATA_CACHE_CONFIG = CACHE_CONFIG
# Rate limiting needs a shared store in production; a single local process keeps it in memory.
RATELIMIT_STORAGE_URI = "memory://"
