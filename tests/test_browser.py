"""Every page in headless Debian Chromium against a real `streamlit run`: each renders
without an exception, and the figures a user reads are the service's."""

import re

import pytest
from playwright.sync_api import expect

from budget import views
from tests.support.browser import (
    IDLE,
    grid_rows,
    open_page,
    screenshot,
)

PAGES = {"overview": "", "client": "client?client=C0004", "analytics": "analytics",
         "savings": "savings", "batch-edit": "batch_edit", "admin": "admin",
         "scheduled-pass": "scheduled_pass", "audit": "audit", "root-deep-link": "?client=C0002"}
HEADINGS = {"overview": "Token budgets", "analytics": "Analytics",
            "savings": "Savings that keep the meaning", "batch-edit": "Batch edit",
            "admin": "Admin", "scheduled-pass": "Scheduled pass", "audit": "Audit log"}
HEADLINE = re.compile(r"Token Usage: ([\d,]+) / ([\d,]+) tokens \(([\d.]+)% used\)")

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders_without_exception(server, browser, svc, name):
    page = open_page(browser, server, PAGES[name])
    heading = page.locator("h1").first
    client_id = PAGES[name].partition("client=")[2]
    # a client page's heading is its client's name (the root deep link switches page first)
    expect(heading).to_have_text(svc.client(client_id).name if client_id else HEADINGS[name],
                                 timeout=30_000)
    page.wait_for_selector(IDLE)
    if page.locator("[data-testid='stDataFrame']").count():
        page.wait_for_selector("[data-testid='stDataFrame'] canvas", timeout=30_000)
    screenshot(page, name)
    errors = page.locator("[data-testid='stException']")
    assert errors.count() == 0, errors.first.inner_text()
    page.close()


def test_client_deep_link_headline_is_the_services_figure(server, browser, svc):
    usage = svc.client_usage("C0004")
    assert usage.usage > 0
    page = open_page(browser, server, "client?client=C0004")
    expect(page.locator("h1").first).to_have_text(usage.client.name)
    headline = page.locator("h3").first.inner_text()
    figures = HEADLINE.fullmatch(headline)
    assert figures, headline
    assert figures.groups()[:2] == (f"{usage.usage:,}", f"{usage.budget:,}")
    assert headline == views.headline(usage)  # the percentage too, as the service words it
    page.close()


def test_overview_table_shows_each_clients_usage(server, browser, svc):
    page = open_page(browser, server, "")
    rows = {r["Client"]: r for r in grid_rows(page, "clients")}
    report = {u.client.name: u for u in svc.usage_report()}
    top = max(report.values(), key=lambda u: u.usage / u.budget)  # the first row
    assert top.client.name in rows, sorted(rows)
    assert rows[top.client.name]["Used / budget"] == f"{top.usage:,} / {top.budget:,}"
    assert len(rows) >= 5 and all(rows[n]["Used / budget"].startswith(
        f"{report[n].usage:,} / ") for n in rows)
    page.close()
