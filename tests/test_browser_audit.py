"""The audit log in headless Chromium: words for each action, client names, the
changed field as before -> after, a filter, the CSV of what the filters show, and one
entry's full diff."""

import sqlite3

import pandas as pd
import pytest
from playwright.sync_api import expect

from budget.model import Change
from tests.support.browser import IDLE, grid_rows, open_page, require_chromium, screenshot, \
    streamlit_server
from tests.support.factories import ADMIN, make_service

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def edited(demo_db, tmp_path_factory):
    """The demo data with an edit, a deactivation and a budget override made."""
    path = tmp_path_factory.mktemp("audit") / "demo.db"
    with sqlite3.connect(demo_db) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    svc = make_service(path)
    attr = next(a for a in svc.attributes("C0003") if a.active)
    svc.apply(ADMIN, Change("C0003", fields={attr.id: {"Signals": attr.signals + " New."}}))
    svc.apply(ADMIN, Change("C0003", active={attr.id: False}))
    svc.set_budget_override(ADMIN, "C0005", 9_000)
    return path, svc, attr


@pytest.fixture(scope="module")
def audit_server(edited, tmp_path_factory):
    require_chromium()
    with streamlit_server(edited[0], tmp_path_factory.mktemp("streamlit")) as url:
        yield url


def test_audit_log_reads_as_words_and_exports_what_it_shows(audit_server, browser, edited):
    _, svc, attr = edited
    name = svc.client("C0003").name
    page = open_page(browser, audit_server, "audit")
    rows = grid_rows(page, "audit_table")
    assert [r["What"] for r in rows[:3]] == ["Budget override", "Attribute deactivated",
                                             "Attribute text edited"]
    assert rows[1]["Client"] == f"{name} (C0003)"
    assert "Budget override: — → 9,000" in rows[0]["What changed (before → after)"]
    assert rows[1]["What changed (before → after)"] == f"{attr.name} · Active: yes → no"
    assert rows[2]["What changed (before → after)"].endswith("New.")
    assert "{" not in " ".join(r["What changed (before → after)"] for r in rows)
    screenshot(page, "audit-log")
    page.get_by_label("Client").first.click()
    page.keyboard.type("C0003")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    expect(page.get_by_text(f"2 of {len(svc.audit()):,} entries,")).to_be_visible(
        timeout=30_000)
    page.wait_for_selector(IDLE)  # the download button gets the filtered file in this run
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    table = pd.read_csv(download.value.path())
    assert list(table["action"]) == ["attribute.deactivate", "attribute.edit"]
    assert list(table["client"]) == [f"{name} (C0003)"] * 2
    # one entry in full: select its row
    grid = page.locator(".st-key-audit_table [data-testid='stDataFrame']")
    grid.locator("[role=gridcell]").nth(1).wait_for(state="attached")
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)  # the selection box of row 1
    expect(page.locator("[data-testid='stCode']")).to_contain_text(
        f"{attr.name} · Active: yes → no", timeout=30_000)
    screenshot(page, "audit-log-entry")
    page.close()
