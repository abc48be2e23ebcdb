"""Superset in a real browser: headless Debian Chromium (Playwright, as tests/e2e/test_browser_ui.py) logs in to the
Superset that scripts/superset.sh started on a gold warehouse (conftest: gold built by dbt from fixture bronze
rows and the ops rows of those hours, no Airflow), opens each dashboard of include/superset/assets/ (Sales,
Clickstream, Pipeline health), checks that every chart's query answered
with rows and that no chart shows "No results" or an error, and saves a screenshot per dashboard under
artifacts/. Also: a second start imports again without duplicating anything, and SQL Lab on Superset's
warehouse connection cannot read silver or bronze (the analysts' role).

Marked `browser` (and `slow`): `make test-quick` leaves it out, `make test` runs it.
"""

from __future__ import annotations

import subprocess
import time

import pytest
import yaml

from tests.bi.conftest import ASSETS, api_session
from tests.e2e.test_browser_ui import CHROMIUM_ARGS, _ensure_chromium
from tests.support.project_env import ROOT, SCRIPTS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.integration]

ARTIFACTS = ROOT / "artifacts"
NO_DATA = ("No results", "No data", "Unexpected error", "Error:", "permission denied")


def dashboards() -> dict[str, list[str]]:
    """{slug: [chart names]} of the dashboards as code."""
    out = {}
    for path in sorted((ASSETS / "dashboards").glob("*.yaml")):
        d = yaml.safe_load(path.read_text())
        out[d["slug"]] = [v["meta"]["sliceName"] for v in d["position"].values()
                          if isinstance(v, dict) and v.get("type") == "CHART"]
    return out


def test_each_dashboard_renders_every_chart_with_data(superset):
    from playwright.sync_api import expect, sync_playwright

    assert {"sales", "clickstream", "pipeline-health"} <= set(dashboards())  # ops rows: tests/bi/conftest.record_ops
    chromium = _ensure_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        page.set_default_timeout(120_000)
        expect.set_options(timeout=120_000)

        page.goto(f"{superset.url}/login/")
        page.fill("[data-test=username-input]", superset.user)
        page.fill("[data-test=password-input]", superset.password)
        page.locator("[data-test=login-button]").click()
        page.wait_for_url(lambda url: "/login" not in url)

        for slug, charts in dashboards().items():
            answers: list[dict] = []

            def on_response(response, answers=answers):
                if "/api/v1/chart/data" in response.url and response.request.method == "POST":
                    try:
                        body = response.json()
                    except Exception:  # noqa: BLE001 - a non-JSON answer is a failure, recorded as such
                        body = {"error": response.text()[:500]}
                    answers.append({"status": response.status, "body": body})

            page.on("response", on_response)
            page.goto(f"{superset.url}/superset/dashboard/{slug}/")
            expect(page.get_by_text(charts[0]).first).to_be_visible()
            deadline = time.monotonic() + 180
            while len(answers) < len(charts) and time.monotonic() < deadline:
                page.wait_for_timeout(500)
            page.wait_for_load_state("networkidle")
            page.remove_listener("response", on_response)
            assert len(answers) >= len(charts), f"{slug}: {len(answers)} chart queries for {len(charts)} charts"
            for answer in answers:
                assert answer["status"] == 200, (slug, answer)
                results = answer["body"]["result"]
                assert all(r.get("rowcount", len(r.get("data") or [])) > 0 and not r.get("error")
                           for r in results), (slug, answer["body"])
            for name in charts:
                expect(page.get_by_text(name).first).to_be_visible()
            # Charts draw into canvases (ECharts) or text (big numbers); none shows an empty or error state.
            page.wait_for_timeout(1500)
            body = page.locator("body").inner_text()
            for text in NO_DATA:
                assert text not in body, f"{slug}: the page says {text!r}"
            holders = page.locator(".dashboard-component-chart-holder")
            assert holders.count() == len(charts), f"{slug}: {holders.count()} chart holders"
            shot = ARTIFACTS / f"superset-{slug}.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 30_000, f"{shot} looks empty"
        browser.close()


def test_start_again_imports_without_duplicates(superset):
    """`make bi` twice: the second start re-imports the export (overwrite by uuid) and creates nothing new."""
    result = subprocess.run([str(SCRIPTS / "superset.sh"), "start"], env=superset.env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    s, url = api_session(superset)
    expected = {kind: len(list((ASSETS / kind).rglob("*.yaml")))
                for kind in ("databases", "datasets", "charts", "dashboards")}
    seen = {}
    for kind, endpoint in (("databases", "database"), ("datasets", "dataset"), ("charts", "chart"),
                           ("dashboards", "dashboard")):
        r = s.get(f"{url}/api/v1/{endpoint}/", params={"q": "(page_size:100)"}, timeout=60)
        r.raise_for_status()
        seen[kind] = r.json()["count"]
    assert seen == expected


def test_sql_lab_reads_gold_and_is_refused_silver_and_bronze(superset):
    """Superset's warehouse connection is the analysts' role: gold answers, silver and bronze are refused by
    PostgreSQL, and a write is refused."""
    s, url = api_session(superset)
    r = s.get(f"{url}/api/v1/database/", timeout=60)
    r.raise_for_status()
    (database,) = r.json()["result"]

    def run(sql: str) -> dict:
        r = s.post(f"{url}/api/v1/sqllab/execute/", json={
            "database_id": database["id"], "sql": sql, "runAsync": False, "schema": "gold",
            "client_id": f"t{time.monotonic_ns() % 10**9}"}, timeout=120)
        return {**r.json(), "http_status": r.status_code}

    gold = run("SELECT count(*) AS n FROM gold.fct_orders")
    assert gold["http_status"] == 200 and gold["data"][0]["n"] > 0, gold
    for table in ("silver.orders", "silver.events", "bronze.raw_events", "staging.stg_orders"):
        answer = run(f"SELECT * FROM {table} LIMIT 1")
        assert answer["http_status"] != 200 and f"permission denied for schema {table.split('.')[0]}" in str(answer), (
            table, answer)
    # Superset itself refuses writes on this connection (allow_dml: false), before PostgreSQL would.
    assert run("DELETE FROM gold.fct_orders")["http_status"] != 200
    assert run("SELECT count(*) AS n FROM gold.fct_orders")["data"] == gold["data"]
