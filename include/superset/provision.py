"""Prepares Superset for ShopStream in one process (run by scripts/superset.sh and the docker-compose service with
Superset's own Python, .venv-bi): migrate the metadata database, sync roles and permissions (`--init`, what
`superset init` does; once per lock), create or update the admin login from the environment, and import the
dashboards as code from include/superset/assets/ with Superset's import command (ImportDashboardsCommand, the
one behind `superset import-dashboards`).

The import is idempotent: every object in the export carries a uuid and is overwritten in place, never
duplicated. The database's `sqlalchemy_uri` in the export is a placeholder: it is replaced here by the analysts'
connection (AIRFLOW_CONN_ANALYST_DB: read-only, gold only), so no password is in git; the owner's or the dbt
role's login is refused.

Usage: python include/superset/provision.py [--init] [--assets DIR]
One process instead of four `superset` CLI calls: each CLI call costs ~10 s of start-up on 2 cores.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("SHOPSTREAM_ROOT") or HERE.parents[1])
sys.path.insert(0, str(ROOT / "plugins"))

from shopstream.connections import (  # noqa: E402 - stdlib only
    ANALYST_DB,
    WAREHOUSE_DB,
    connection_from_env,
    sqlalchemy_url_from_env,
)

ASSETS = HERE / "assets"
log = logging.getLogger("shopstream.superset")


def analyst_uri(environ=None) -> str:
    """The SQLAlchemy URL Superset queries the warehouse with: the analysts' login, never the owner's or dbt's."""
    env = os.environ if environ is None else environ
    analyst = connection_from_env(ANALYST_DB, env).login
    forbidden = {connection_from_env(WAREHOUSE_DB, env).login: "the dbt role (AIRFLOW_CONN_WAREHOUSE_DB)",
                 env.get("SHOPSTREAM_PG_OWNER_ROLE") or "shopstream_owner": "the owner role",
                 "postgres": "the superuser"}
    if not analyst or analyst in forbidden:
        raise SystemExit(f"error: AIRFLOW_CONN_ANALYST_DB logs in as {analyst!r}, which is "
                         f"{forbidden.get(analyst, 'no login')}: Superset must use the read-only analyst role. "
                         "Fix the login in .env (see .env.example).")
    return sqlalchemy_url_from_env(ANALYST_DB, environ=env)


def bundle(assets: Path, uri: str) -> dict[str, str]:
    """The export under `assets` as the importer's {path: YAML} contents, each database's URI set to `uri`."""
    contents: dict[str, str] = {}
    for path in sorted(assets.rglob("*.yaml")):
        name = str(path.relative_to(assets))
        text = path.read_text()
        if name.startswith("databases/"):
            config = yaml.safe_load(text)
            config["sqlalchemy_uri"] = uri
            text = yaml.safe_dump(config, sort_keys=False)
        contents[name] = text
    if "metadata.yaml" not in contents:
        raise SystemExit(f"error: {assets}/metadata.yaml is missing: the directory is not a Superset export")
    return contents


def ensure_admin(security_manager, username: str, password: str) -> None:
    """The admin login of .env: created once, its password reset to .env's on every start."""
    user = security_manager.find_user(username=username)
    role = security_manager.find_role("Admin")
    if user is None:
        user = security_manager.add_user(username, "ShopStream", "Admin", f"{username}@shopstream.local", role,
                                         password=password)
        if not user:
            raise SystemExit(f"error: Superset could not create the admin user {username!r}; see the log above")
        log.info("created the admin user %s", username)
    else:
        security_manager.reset_password(user.id, password)
        if role not in user.roles:
            user.roles.append(role)
            security_manager.update_user(user)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", action="store_true", help="also sync roles and permissions (superset init)")
    parser.add_argument("--assets", type=Path, default=ASSETS, help="the Superset export to import")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    username = os.environ.get("SUPERSET_ADMIN_USER") or sys.exit("error: SUPERSET_ADMIN_USER is not set (.env)")
    password = os.environ.get("SUPERSET_ADMIN_PASSWORD") or sys.exit("error: SUPERSET_ADMIN_PASSWORD is not set (.env)")
    uri = analyst_uri()
    contents = bundle(args.assets, uri)

    from flask_migrate import upgrade
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset import appbuilder, security_manager
        from superset.commands.chart.importers.v1 import ImportChartsCommand
        from superset.commands.dashboard.importers.v1 import ImportDashboardsCommand
        from superset.commands.database.importers.v1 import ImportDatabasesCommand
        from superset.commands.dataset.importers.v1 import ImportDatasetsCommand
        from superset.extensions import db
        from superset.utils.core import override_user

        upgrade()  # Flask-Migrate: a no-op when the metadata database is current
        if args.init:
            appbuilder.add_permissions(update_perms=True)
            security_manager.sync_role_definitions()
        ensure_admin(security_manager, username, password)
        db.session.commit()
        # The database password goes in through the importer's `passwords` too (what the UI's import asks for).
        passwords = {name: connection_from_env(ANALYST_DB).password or "" for name in contents
                     if name.startswith("databases/")}
        # One command per kind, parents first: a dashboard's import creates its charts, datasets and database
        # but never overwrites them, so a changed chart or a new warehouse URI would not reach an existing
        # instance. metadata.yaml without its `type` serves every command (as `superset import-directory` does).
        meta = yaml.safe_load(contents["metadata.yaml"])
        meta.pop("type", None)
        contents["metadata.yaml"] = yaml.safe_dump(meta)
        with override_user(security_manager.find_user(username=username)):
            for command in (ImportDatabasesCommand, ImportDatasetsCommand, ImportChartsCommand,
                            ImportDashboardsCommand):
                command(contents, overwrite=True, passwords=passwords).run()
        db.session.commit()
        counts = {kind: sum(name.startswith(f"{kind}/") for name in contents)
                  for kind in ("databases", "datasets", "charts", "dashboards")}
        print(f"imported {', '.join(f'{n} {k}' for k, n in counts.items())} from {args.assets}", file=sys.stderr)


if __name__ == "__main__":
    main()
