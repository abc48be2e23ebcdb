"""The Airflow UI in a real browser: headless Debian Chromium driven by Playwright logs in, sees the
project's DAGs, triggers the extract DAG, waits until the whole chain (extract -> bronze -> dbt, chained by
Assets under a real scheduler) succeeded, and saves a screenshot of the grid view under artifacts/. Then the dbt
docs that the chain's end triggered (shopstream_dbt_docs): refused without a login, opened from the UI's Browse
menu inside the UI, and the lineage graph (bronze source -> staging -> silver -> gold) screenshot under artifacts/.

The Airflow is the one `make airflow` starts (scripts/airflow.sh: api-server, scheduler with the LocalExecutor,
dag-processor, triggerer; PostgreSQL metadata database), with its own AIRFLOW_HOME, port, metadata database,
warehouse database and topics. Marked `browser` (and `slow`): `make test-quick` leaves it out, `make test` (CI)
runs it. The screenshots are written to the git-ignored artifacts/ folder. Chromium is Debian's
package (browsers cannot be downloaded here): the fixture installs it with apt-get when it is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from tests.e2e.harness import (
    DAG_IDS,
    ROOT,
    LiveAirflow,
    pipeline_env,
    warehouse_env,
)
from tests.support.project_env import admin_dsn
from tests.support.throwaway import create_warehouse_and_topics, drop_warehouse_and_topics

pytestmark = [pytest.mark.e2e, pytest.mark.airflow, pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def _ensure_chromium() -> Path:
    if not CHROMIUM.exists():
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, capture_output=True,
                       env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    assert CHROMIUM.exists(), "Debian's chromium package did not install /usr/bin/chromium"
    return CHROMIUM


@pytest.fixture(scope="module")
def live_ui(postgres_service, kafka_bootstrap, dummyjson_api):
    chromium = _ensure_chromium()
    db, topics, admin = create_warehouse_and_topics(admin_dsn(), postgres_service["user"], kafka_bootstrap, "t_ui",
                                                    "ui")
    env = pipeline_env(topics, dummyjson_api.url, kafka_bootstrap)
    env.update(warehouse_env({**postgres_service, "dbname": db}))
    env.update({
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
        # The UI trigger must not race the scheduler's own catch-up run of the current hour.
        "AIRFLOW__SCHEDULER__CATCHUP_BY_DEFAULT": "False",
    })
    home = ROOT / ".local" / "airflow-ui-test"
    shutil.rmtree(home, ignore_errors=True)
    airflow = LiveAirflow(home, env)
    airflow.start()
    try:
        airflow.wait_for_dags()
        yield airflow, chromium, db
    finally:
        airflow.stop()
        drop_warehouse_and_topics(admin_dsn(), db, admin, topics)


def _logged_in_page(p, chromium, airflow):
    """A Chromium page logged in to the Airflow UI with the UI login from .env."""
    from playwright.sync_api import expect

    browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.set_default_timeout(60_000)
    # `expect` has its own timeout (5 s by default): on a loaded 2-core machine the UI's first render (its
    # translations, then the DAG list from the API) can take longer.
    expect.set_options(timeout=60_000)

    page.goto(f"{airflow.base}/")
    page.fill("input[name=username]", airflow.env["AIRFLOW_ADMIN_USER"])
    page.fill("input[name=password]", airflow.env["AIRFLOW_ADMIN_PASSWORD"])
    page.locator("button[type=submit]").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)
    return browser, page


def test_login_see_dags_trigger_and_screenshot_a_green_grid(live_ui, postgres_service):
    from playwright.sync_api import expect, sync_playwright

    airflow, chromium, db = live_ui
    ARTIFACTS.mkdir(exist_ok=True)
    before = {d: {r["dag_run_id"] for r in airflow.runs(d)} for d in DAG_IDS}
    with sync_playwright() as p:
        browser, page = _logged_in_page(p, chromium, airflow)

        # The project's DAGs are listed.
        page.goto(f"{airflow.base}/dags")
        for dag_id in DAG_IDS:
            expect(page.get_by_text(dag_id, exact=True).first).to_be_visible()

        # Trigger the extract DAG from its page (the modal's own Trigger button confirms).
        page.goto(f"{airflow.base}/dags/shopstream_extract")
        page.get_by_role("button", name="Trigger").first.click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_be_visible()
        dialog.get_by_role("button", name="Trigger").last.click()

        new_run = airflow.wait(
            lambda: [r for r in airflow.runs("shopstream_extract") if r["dag_run_id"] not in before["shopstream_extract"]],
            timeout=60, what="the run triggered from the UI")[0]
        assert new_run["run_type"] == "manual"

        # The whole chain settles: extract, then the asset-triggered bronze and dbt runs.
        runs = airflow.settled(timeout=2400)  # generous: minutes when other runs load the 2-core box
        extract = next(r for r in runs["shopstream_extract"] if r["dag_run_id"] == new_run["dag_run_id"])
        assert extract["state"] == "success", airflow.snapshot()
        for dag_id in ("shopstream_bronze", "shopstream_dbt"):
            new = [r for r in runs[dag_id] if r["dag_run_id"] not in before[dag_id]]
            assert new and all(r["state"] == "success" for r in new), (dag_id, airflow.snapshot())

        # The grid view (Airflow 3: the DAG's page, /dags/<id>; there is no /grid route, it answers 404) of the
        # extract and dbt DAGs, all green (the states are checked through the API above; the grid must show the
        # runs: each run's bar links to /dags/<id>/runs/<run_id>).
        for dag_id in ("shopstream_extract", "shopstream_dbt"):
            page.goto(f"{airflow.base}/dags/{dag_id}")
            page.wait_for_load_state("networkidle")
            expect(page.locator(f'a[href*="/dags/{dag_id}/runs/"]').first).to_be_visible()
            assert page.get_by_text("Page Not Found").count() == 0, f"{page.url}: 404"
            time.sleep(2)  # the grid renders its cells after the data arrives
            shot = ARTIFACTS / f"airflow-grid-{dag_id}.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 20_000, f"{shot} looks empty"
        browser.close()

    # What the run wrote is really there.
    params = {**postgres_service, "dbname": db}
    with psycopg.connect(psycopg.conninfo.make_conninfo(**params)) as conn:
        orders = conn.execute("select count(*) from gold.fct_orders").fetchone()[0]
        customers = conn.execute("select count(*) from gold.dim_customers").fetchone()[0]
    assert customers > 0 and orders > 0


DOCS_DAG = "shopstream_dbt_docs"
DOCS = "/cosmos/shopstream"


def test_dbt_docs_behind_the_login_and_their_lineage_graph_in_the_ui(live_ui):
    """Runs after the test above: its pipeline run ended with gold built and reconciled, which triggers DOCS_DAG."""
    import requests
    from playwright.sync_api import expect, sync_playwright

    airflow, chromium, _ = live_ui
    ARTIFACTS.mkdir(exist_ok=True)
    docs_run = airflow.wait(lambda: [r for r in airflow.runs(DOCS_DAG) if r["state"] in ("success", "failed")],
                            timeout=900, what=f"a finished {DOCS_DAG} run (after gold and reconcile)")[-1]
    assert docs_run["state"] == "success", docs_run
    assert docs_run["run_type"] == "asset_triggered", docs_run

    # Cosmos' endpoints answer only a logged-in user, like /api/v2 (shopstream.web_auth).
    for path in ("manifest.json", "catalog.json", "dbt_docs_index.html", "dbt_docs"):
        anonymous = requests.get(f"{airflow.base}{DOCS}/{path}", timeout=60, allow_redirects=False)
        assert anonymous.status_code == 401, (path, anonymous.status_code, anonymous.text[:200])
    browser_visit = requests.get(f"{airflow.base}{DOCS}/dbt_docs_index.html", timeout=60, allow_redirects=False,
                                 headers={"Accept": "text/html"})
    assert browser_visit.status_code == 303 and "/auth/login" in browser_visit.headers["location"]
    assert requests.get(f"{airflow.base}/api/v2/dags", timeout=60).status_code == 401
    auth = {"Authorization": f"Bearer {airflow.token()}"}
    manifest = requests.get(f"{airflow.base}{DOCS}/manifest.json", headers=auth, timeout=60)
    catalog = requests.get(f"{airflow.base}{DOCS}/catalog.json", headers=auth, timeout=60)
    assert manifest.status_code == 200 and catalog.status_code == 200

    # The lineage the graph draws: bronze source -> staging -> silver -> gold.
    parents = manifest.json()["parent_map"]
    assert "source.shopstream.bronze.raw_events" in parents["model.shopstream.stg_orders"]
    assert "model.shopstream.stg_orders" in parents["model.shopstream.orders"]
    assert "model.shopstream.orders" in parents["model.shopstream.fct_orders"]
    assert "model.shopstream.fct_orders" in parents["model.shopstream.agg_orders_daily"]
    assert "model.shopstream.fct_orders" in catalog.json()["nodes"]  # the catalog has gold's columns

    with sync_playwright() as p:
        browser, page = _logged_in_page(p, chromium, airflow)
        # Browse -> dbt Docs: the docs inside the UI's own page (shopstream_ui's external view, /plugin/dbt-docs).
        page.get_by_role("button", name="Browse").click()
        page.get_by_role("menuitem", name="dbt Docs", exact=True).click()
        page.wait_for_url(lambda url: "/plugin/dbt-docs" in url)
        expect(page.locator(f'iframe[src="{DOCS}/dbt_docs_index.html"]')).to_be_visible()
        docs = page.frame_locator("iframe").first
        expect(docs.get_by_text("Welcome!", exact=True)).to_be_visible(timeout=180_000)  # loads manifest+catalog
        docs.locator('[title="View Lineage Graph"]').click()
        expect(docs.get_by_text("Lineage Graph", exact=True)).to_be_visible()
        time.sleep(5)  # the graph lays itself out after it appears
        shot = ARTIFACTS / "airflow-dbt-docs-lineage.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 50_000, f"{shot} looks empty"
        browser.close()
