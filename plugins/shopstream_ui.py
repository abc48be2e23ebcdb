"""Airflow plugin: the dbt docs inside the Airflow UI, behind the Airflow login.

- Cosmos' plugin serves the docs under `/cosmos/<slug>/` ([cosmos] dbt_docs_projects) without any authentication,
  and its *Browse* entry opens them in a new browser tab. This plugin puts the Airflow login in front of
  `/cosmos/...` (a root middleware, shopstream.web_auth) and adds a *Browse* entry with a `url_route`, which the UI
  renders inside its own page (`/plugin/dbt-docs`: the navigation stays, the docs fill the rest).
- Loaded from the plugins folder by the API server (the shopstream package itself is no plugin: plugins/.airflowignore).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from shopstream.web_auth import PROTECTED_PREFIXES, RequireLoginMiddleware, embedded_docs_views


class ShopstreamUiPlugin(AirflowPlugin):
    name = "shopstream_ui"
    fastapi_root_middlewares = [
        {"middleware": RequireLoginMiddleware, "kwargs": {"prefixes": PROTECTED_PREFIXES},
         "name": "Airflow login for Cosmos' dbt docs"},
    ]
    external_views = embedded_docs_views()
