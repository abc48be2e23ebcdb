"""Cosmos' dbt docs endpoints (`/cosmos/<slug>/...`) sit behind the Airflow login (shopstream.web_auth).

Cosmos' own FastAPI app, configured with a real docs folder, behind RequireLoginMiddleware, with Airflow's
SimpleAuthManager signing and checking the tokens: anonymous requests are refused (401; a browser is sent to the
login page), an invalid token is refused (403), the UI's `_token` cookie or a bearer token gets the docs (200).
The live API server is covered by tests/e2e/test_browser_ui.py.
"""

from __future__ import annotations

import json

import pytest

SLUG = "shopstream"


@pytest.fixture
def client(tmp_path, monkeypatch):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    docs_dir = tmp_path / "docs"
    docs_dir.mkdir()
    (docs_dir / "index.html").write_text("<html><head></head><body>dbt docs</body></html>")
    (docs_dir / "manifest.json").write_text(json.dumps({"nodes": {"model.shopstream.x": {"raw_code": "select 1"}}}))
    (docs_dir / "catalog.json").write_text(json.dumps({"nodes": {}}))
    monkeypatch.setenv("AIRFLOW__COSMOS__DBT_DOCS_PROJECTS", json.dumps({SLUG: {"dir": str(docs_dir)}}))
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "unit-test-secret-" + "x" * 64)
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,nobody:viewer")

    import airflow.api_fastapi.app as airflow_app
    import airflow.api_fastapi.auth.managers.base_auth_manager as base_auth_manager
    import airflow.api_fastapi.core_api.security as security
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
    from cosmos.plugin.airflow3 import create_cosmos_fastapi_app
    from shopstream.web_auth import RequireLoginMiddleware

    manager = SimpleAuthManager()
    # Logged-out tokens live in Airflow's metadata database, which a unit test has not: none is revoked here.
    monkeypatch.setattr(base_auth_manager.RevokedToken, "is_revoked", classmethod(lambda cls, jti: False))
    monkeypatch.setattr(airflow_app, "get_auth_manager", lambda: manager)
    monkeypatch.setattr(security, "get_auth_manager", lambda: manager)

    app = FastAPI()
    app.mount("/cosmos", create_cosmos_fastapi_app())

    @app.get("/api/v2/version")
    def version():  # an Airflow route outside /cosmos: the middleware leaves it alone
        return {"version": "x"}

    app.add_middleware(RequireLoginMiddleware)
    with TestClient(app, follow_redirects=False) as c:
        c.manager = manager
        yield c


def _signed_jwt(client, username="admin", role="admin"):
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return client.manager.generate_jwt(SimpleAuthManagerUser(username=username, role=role))


@pytest.mark.parametrize("path", ["manifest.json", "catalog.json", "dbt_docs_index.html", "dbt_docs"])
def test_anonymous_requests_are_refused(client, path):
    r = client.get(f"/cosmos/{SLUG}/{path}")
    assert r.status_code == 401, r.text
    assert r.json() == {"detail": "Not authenticated"}
    assert "raw_code" not in r.text


def test_a_browser_without_login_is_sent_to_the_login_page(client):
    r = client.get(f"/cosmos/{SLUG}/dbt_docs_index.html", headers={"Accept": "text/html"})
    assert r.status_code == 303
    assert "login" in r.headers["location"] and "next=/cosmos/shopstream/dbt_docs_index.html" in r.headers["location"]


def test_an_invalid_token_is_refused(client):
    r = client.get(f"/cosmos/{SLUG}/manifest.json", headers={"Authorization": "Bearer not-a-jwt"})
    assert r.status_code == 403
    client.cookies.set("_token", "not-a-jwt")
    assert client.get(f"/cosmos/{SLUG}/catalog.json").status_code == 403


def test_the_ui_cookie_or_a_bearer_token_gets_the_docs(client):
    signed = _signed_jwt(client)
    r = client.get(f"/cosmos/{SLUG}/manifest.json", headers={"Authorization": f"Bearer {signed}"})
    assert r.status_code == 200 and "model.shopstream.x" in r.json()["nodes"]
    client.cookies.set("_token", signed)  # what the UI's login sets; the browser sends it to the docs iframe
    assert client.get(f"/cosmos/{SLUG}/catalog.json").status_code == 200
    index = client.get(f"/cosmos/{SLUG}/dbt_docs_index.html")
    assert index.status_code == 200 and "dbt docs" in index.text


def test_a_viewer_may_read_the_docs(client):
    signed = _signed_jwt(client, "nobody", "viewer")
    assert client.get(f"/cosmos/{SLUG}/manifest.json", headers={"Authorization": f"Bearer {signed}"}).status_code == 200


def test_routes_outside_cosmos_are_untouched(client):
    assert client.get("/api/v2/version").status_code == 200


def test_the_plugin_installs_the_middleware_for_cosmos():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "shopstream_ui", Path(__file__).resolve().parents[2] / "plugins" / "shopstream_ui.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (entry,) = module.ShopstreamUiPlugin.fastapi_root_middlewares
    from shopstream.web_auth import RequireLoginMiddleware, is_protected

    assert entry["middleware"] is RequireLoginMiddleware
    prefixes = entry["kwargs"]["prefixes"]
    assert is_protected("/cosmos/shopstream/manifest.json", prefixes) and is_protected("/cosmos", prefixes)
    assert not is_protected("/cosmosx", prefixes) and not is_protected("/api/v2/dags", prefixes)


def test_the_docs_view_is_rendered_inside_the_ui_for_each_configured_project():
    from shopstream.web_auth import embedded_docs_views

    setting = json.dumps({"shopstream": {"dir": "/d", "name": "dbt Docs (ShopStream), new tab"}, "other": {"dir": "/o"}})
    first, second = embedded_docs_views(setting, "http://localhost:8080/airflow/")
    assert first == {"name": "dbt Docs", "category": "Browse", "destination": "nav", "url_route": "dbt-docs",
                     "href": "/airflow/cosmos/shopstream/dbt_docs_index.html"}
    assert second["url_route"] == "dbt-docs-other" and second["name"] == "dbt Docs (other)"
    assert embedded_docs_views("", "http://localhost:8080") == []
    assert embedded_docs_views("{not json", "http://localhost:8080") == []
