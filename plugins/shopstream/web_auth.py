"""The Airflow login in front of plugin pages that Airflow itself leaves open.

Cosmos' plugin mounts a FastAPI app under `/cosmos/` (the dbt docs: index.html, manifest.json with every model's
SQL, catalog.json with the warehouse's columns) whose routes carry no authentication: an anonymous request got
them all, while `/api/v2/...` answers 401. `RequireLoginMiddleware`, installed as a root middleware by the plugin
in plugins/shopstream_ui.py, asks for what Airflow's own API asks for - a valid Airflow JWT, from the
`Authorization: Bearer` header or the UI's `_token` cookie (set at login, sent by the browser to the docs iframe)
- and a user the auth manager lets see the UI (AccessView.WEBSITE). Without one: 401 (403 for an invalid token or
a user without that right), or, for a browser asking for a page, a redirect to the login page and back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import quote

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

PROTECTED_PREFIXES = ("/cosmos",)


def is_protected(path: str, prefixes: Iterable[str] = PROTECTED_PREFIXES) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def wants_html(scope: Scope) -> bool:
    """A browser navigating (GET, accepts text/html) rather than a script fetching JSON."""
    if scope.get("method") not in ("GET", "HEAD"):
        return False
    accept = next((v for k, v in scope.get("headers", []) if k == b"accept"), b"").decode("latin-1")
    return "text/html" in accept


async def authorized_user(request: Any) -> Any:
    """The request's Airflow user, as /api/v2 resolves it (bearer token first, else the `_token` cookie), allowed
    to see the UI. Raises fastapi.HTTPException 401 (no or expired token) or 403 (invalid token, no right)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import resolve_user_from_token
    from fastapi import HTTPException, status

    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    token = credentials.strip() if scheme.lower() == "bearer" else request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    user = await resolve_user_from_token(token)
    if not get_auth_manager().is_authorized_view(access_view=AccessView.WEBSITE, user=user):
        raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail="Forbidden")
    return user


class RequireLoginMiddleware:
    """ASGI middleware: requests under `prefixes` need an authorized Airflow user (see the module docstring)."""

    def __init__(self, app: ASGIApp, prefixes: Iterable[str] = PROTECTED_PREFIXES) -> None:
        self.app = app
        self.prefixes = tuple(prefixes)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not is_protected(self._path(scope), self.prefixes):
            await self.app(scope, receive, send)
            return
        from fastapi import HTTPException
        from starlette.requests import Request

        try:
            await authorized_user(Request(scope))
        except HTTPException as exc:
            await self._refuse(exc, scope)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _path(scope: Scope) -> str:
        path, root = scope.get("path", ""), scope.get("root_path", "")
        return path[len(root):] if root and path.startswith(root) else path

    @staticmethod
    def _refuse(exc: Any, scope: Scope) -> ASGIApp:
        from starlette.responses import JSONResponse, RedirectResponse

        if exc.status_code == 401 and wants_html(scope):
            from airflow.api_fastapi.app import get_auth_manager

            here = scope.get("root_path", "") + RequireLoginMiddleware._path(scope)
            if scope.get("query_string"):
                here += "?" + scope["query_string"].decode("latin-1")
            login = get_auth_manager().get_url_login()
            return RedirectResponse(f"{login}{'&' if '?' in login else '?'}next={quote(here, safe='/')}",
                                    status_code=303)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers={"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None)


DOCS_URL_ROUTE = "dbt-docs"


def embedded_docs_views(raw_projects: str | None = None, base_url: str | None = None) -> list[dict[str, Any]]:
    """An external view per `[cosmos] dbt_docs_projects` project, shown inside the Airflow UI (Cosmos' own entries,
    named by the setting's "name", open a new tab): *dbt Docs* at `/plugin/dbt-docs` for the first project,
    *dbt Docs (<slug>)* at `/plugin/dbt-docs-<slug>` for any other. Empty when no project is configured (or the
    setting is not JSON: Cosmos' plugin reports that itself)."""
    import json
    from urllib.parse import urlsplit

    if raw_projects is None or base_url is None:
        from airflow.configuration import conf

        raw_projects = conf.get("cosmos", "dbt_docs_projects", fallback=None) if raw_projects is None else raw_projects
        base_url = conf.get("api", "base_url", fallback="") if base_url is None else base_url
    try:
        projects = json.loads(raw_projects or "{}")
    except ValueError:
        return []
    base_path = urlsplit(base_url).path.rstrip("/")
    views = []
    for i, slug in enumerate(projects if isinstance(projects, dict) else []):
        views.append({"name": "dbt Docs" if i == 0 else f"dbt Docs ({slug})", "category": "Browse", "destination": "nav",
                      "url_route": DOCS_URL_ROUTE if i == 0 else f"{DOCS_URL_ROUTE}-{slug}",
                      "href": f"{base_path}/cosmos/{slug}/dbt_docs_index.html"})
    return views
