"""Airflow plugin: the Airflow login in front of Cosmos' dbt docs (`/cosmos/...`), which Cosmos serves without it.

Loaded from the plugins folder by the API server (the shopstream package itself is not a plugin: plugins/.airflowignore);
the logic is shopstream.web_auth.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from shopstream.web_auth import PROTECTED_PREFIXES, RequireLoginMiddleware


class ShopstreamUiPlugin(AirflowPlugin):
    name = "shopstream_ui"
    fastapi_root_middlewares = [
        {"middleware": RequireLoginMiddleware, "kwargs": {"prefixes": PROTECTED_PREFIXES},
         "name": "Airflow login for Cosmos' dbt docs"},
    ]
