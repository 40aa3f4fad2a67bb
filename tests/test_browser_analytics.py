"""The analytics and batch edit pages in headless Debian Chromium against a real
`streamlit run`: a screenshot of every chart under test-output/screenshots/."""

import csv
import io
import sqlite3
from datetime import timedelta

import pytest

from budget.model import Change
from tests.support.apptest import TABS
from tests.support.browser import (
    IDLE,
    SHOTS,
    open_page,
    require_chromium,
    screenshot,
    streamlit_server,
)
from tests.support.factories import ADMIN, NOW, Clock, make_service

pytestmark = pytest.mark.browser


def grow_history(path) -> None:
    """Six daily snapshots for a few clients: their largest attribute grows back to its
    current text a sentence group at a time, so usage rises towards today's figure."""
    svc = make_service(path)
    within = [u.client.id for u in svc.usage_report() if u.status != "exceeded"]
    for cid in within[:8]:  # growing back is refused once a client is over its budget
        costs = [c for c in svc.costs(cid) if c.active]
        big = max(costs, key=lambda c: c.total)
        text = next(a for a in svc.attributes(cid) if a.id == big.id).examples
        lines = text.split("\n")
        for day in range(6):
            svc.clock = Clock(NOW - timedelta(days=5 - day))
            part = "\n".join(lines[:max(1, len(lines) * (day + 1) // 6)])
            assert svc.apply(ADMIN, Change(cid, {big.id: {"Examples": part}})).allowed


@pytest.fixture(scope="module")
def server(demo_db, tmp_path_factory):
    require_chromium()
    work = tmp_path_factory.mktemp("analytics")
    db = work / "demo.db"
    with sqlite3.connect(demo_db) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    grow_history(db)
    with streamlit_server(db, work, TOKENBUDGET_TIER_REVENUE="1:99,2:299,3:999,4:2499") as url:
        yield url


def test_every_analytics_chart_renders_with_its_title(server, browser):  # noqa: F811
    page = open_page(browser, server, "analytics")
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert page.locator("h1").first.inner_text() == "Analytics"
    # every tab, then back to the first (its CSV is downloaded below)
    for i, (tab, keys) in enumerate([*TABS.items(), ("Top attributes", TABS["Top attributes"])]):
        page.get_by_role("tab", name=tab).click()
        page.wait_for_selector(IDLE)
        assert tab in page.url.replace("+", " ").replace("%20", " ") or tab == "Top attributes"
        for key in sorted(keys | ({"roi"} if tab == "Prompt cost" else set())):
            box = page.locator(f".st-key-{key}")
            box.scroll_into_view_if_needed()
            box.locator(".main-svg").first.wait_for(timeout=30_000)
            title = box.locator(".gtitle").first.text_content()
            assert title, key
            assert box.locator(".xtitle").first.text_content(), key  # axis titles drawn
            page.wait_for_timeout(300)  # let the bars finish their transition
            box.screenshot(path=str(SHOTS / f"analytics-{key}.png"))
        errors = page.locator("[data-testid='stException']")
        assert errors.count() == 0, errors.first.inner_text()
        if i < len(TABS):
            screenshot(page, f"analytics-tab-{i + 1}")
            page.set_viewport_size({"width": 1400, "height": 1000})
    # the table behind a chart downloads as CSV
    with page.expect_download() as got:
        page.locator(".st-key-csv_top-attributes button").click()
    rows = list(csv.DictReader(io.StringIO(open(got.value.path()).read())))
    assert len(rows) == 20 and int(rows[0]["tokens"]) >= int(rows[-1]["tokens"])
    page.close()


def test_batch_edit_page_renders(server, browser):  # noqa: F811
    page = open_page(browser, server, "batch_edit")
    assert page.locator("h1").first.inner_text() == "Batch edit"
    page.wait_for_timeout(1000)  # a wrong URL path shows its dialog after the first run
    assert page.get_by_text("Page not found").count() == 0
    page.wait_for_selector("[data-testid='stDataFrame'] canvas", timeout=30_000)
    screenshot(page, "batch-edit-page")
    assert page.locator("[data-testid='stException']").count() == 0
    page.close()


def test_savings_page_chart_and_suggestions(server, browser):  # noqa: F811
    page = open_page(browser, server, "savings")
    assert page.locator("h1").first.inner_text() == "Savings that keep the meaning"
    box = page.locator(".st-key-savings")
    box.locator(".main-svg").first.wait_for(timeout=30_000)
    assert box.locator(".gtitle").first.text_content().startswith("Tokens saved")
    page.wait_for_timeout(300)
    box.screenshot(path=str(SHOTS / "savings-chart.png"))
    assert page.get_by_text("saves", exact=False).count() > 0  # the cards under the chart
    assert page.locator("[data-testid='stException']").count() == 0
    screenshot(page, "savings-page")
    page.close()
