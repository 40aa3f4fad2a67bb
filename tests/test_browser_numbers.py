"""The numbers a person reads, in headless Debian Chromium against a real `streamlit run`:
one percent per client on every page, bars in the status colours, the key columns in view
on a laptop screen, a client one click away, an unknown deep link left as it was."""

import io
import re

import pandas as pd
import pytest
from playwright.sync_api import expect

from budget import views
from tests.support.browser import (
    IDLE,
    SHOTS,
    grid_rows,
    open_page,
    screenshot,
)

pytestmark = pytest.mark.browser
KEY_COLUMNS = ["Client", "Status", "Used / budget", "Remaining (tokens)", "% used"]


def at_width(page, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 1000})
    page.wait_for_timeout(800)  # the grid redraws at the new size
    page.wait_for_selector(IDLE)


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def pixels_near(png: bytes, colour: str, tolerance: int = 8) -> int:
    from PIL import Image
    image = Image.open(io.BytesIO(png)).convert("RGB")
    want = rgb(colour)
    return sum(1 for p in image.getdata()
               if all(abs(a - b) <= tolerance for a, b in zip(p, want, strict=True)))


def test_overview_csv_and_client_headlines_show_one_percent(server, browser, svc):
    page = open_page(browser, server, "")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    table = pd.read_csv(download.value.path())
    assert len(table) == 40
    for row in table.itertuples(index=False):
        assert f"({row.percent_used}% used)" in views.headline(svc.client_usage(row.client_id))
    # the client whose exact share has the largest fraction: where rounding twice showed
    u = max(svc.usage_report(), key=lambda u: (100 * u.usage / u.budget) % 1)
    shown = table.set_index("client_id").loc[u.client.id, "percent_used"]
    client = open_page(browser, server, f"client?client={u.client.id}")
    expect(client.locator("h1").first).to_have_text(u.client.name)
    assert client.locator("h3").first.inner_text().endswith(f"({shown}% used)")
    page.close()
    client.close()


@pytest.mark.parametrize(("width", "in_view"), [(1280, KEY_COLUMNS), (1024, KEY_COLUMNS[:4])])
def test_key_columns_are_in_view(server, browser, svc, width, in_view):
    """All five key columns at 1280 px; at 1024 px (the sidebar takes a third) the four
    that say how a client stands, Remaining among them, in full; the bar scrolls."""
    page = open_page(browser, server, "")
    at_width(page, width)
    headers: list[str] = []
    for _ in range(40):  # on a loaded machine the grid may take a while to redraw
        headers = page.locator(".st-key-clients [role=columnheader]").all_inner_texts()
        if headers:
            break
        page.wait_for_timeout(500)
    assert headers[:len(in_view)] == in_view, headers
    # the grid draws its headers on a canvas: the columns in view must fit its width in
    # full (the row-selection box, then the widths app_pages/overview.py gives them)
    grid = page.locator(".st-key-clients [data-testid='stDataFrame']").bounding_box()
    widths = {"Client": 150, "Status": 100, "Used / budget": 135,
              "Remaining (tokens)": 120, "% used": 115}
    assert 35 + sum(widths[h] for h in in_view) <= grid["width"], grid
    assert not any(raw in headers for raw in ("client_id", "service_level", "percent_used"))
    rows = grid_rows(page, "clients")
    report = {u.client.name: u for u in svc.usage_report()}
    for r in rows:
        u = report[r["Client"]]
        assert r["Used / budget"] == views.usage_figure(u.usage, u.budget)
        assert r.get("Remaining (tokens)", views.remaining_text(u.remaining)) == (
            views.remaining_text(u.remaining))
        assert "None" not in r.values()
    if "Remaining (tokens)" in in_view:
        assert any(r["Remaining (tokens)"].startswith("over by ") for r in rows)
    screenshot(page, f"numbers-overview-{width}")
    page.close()


def test_overview_bars_are_in_the_status_colour(server, browser):
    page = open_page(browser, server, "")
    at_width(page, 1280)
    page.get_by_test_id("stMultiSelect").nth(1).click()  # the status filter
    page.get_by_role("option", name=views.STATUS_LABELS["warning"]).click()
    page.keyboard.press("Escape")
    page.wait_for_selector(IDLE)
    page.wait_for_timeout(800)
    grid = page.locator(".st-key-clients [data-testid='stDataFrame']")
    png = grid.screenshot(path=str(SHOTS / "numbers-overview-warning-bars.png"))
    assert pixels_near(png, views.STATUS_COLOURS["warning"]) > 200  # orange bars
    assert pixels_near(png, views.STATUS_COLOURS["exceeded"]) == 0  # and no red at 73%
    page.close()


def test_client_bar_is_red_over_budget(server, browser, svc):
    over = next(u for u in svc.usage_report() if u.status == "exceeded")
    page = open_page(browser, server, f"client?client={over.client.id}")
    at_width(page, 1280)
    bar = page.locator("[data-testid='stMain'] [role=progressbar]").first
    fill = bar.locator("div").first
    assert fill.evaluate("e => getComputedStyle(e).backgroundColor") == (
        "rgb({}, {}, {})".format(*rgb(views.STATUS_COLOURS["exceeded"])))
    page.locator("h3").first.screenshot(path=str(SHOTS / "numbers-client-headline.png"))
    screenshot(page, "numbers-client-over-budget")
    page.close()


def test_one_click_opens_the_client_in_the_same_tab(server, browser, svc):
    first = views.usage_frame(svc.usage_report(), svc.tiers()).iloc[0]
    page = open_page(browser, server, "")
    at_width(page, 1280)
    grid = page.locator(".st-key-clients [data-testid='stDataFrame']")
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 15, box["y"] + 35 + 17)  # the first row's selection box
    page.wait_for_url(re.compile(rf"/client\?client={first['client_id']}$"), timeout=30_000)
    expect(page.locator("h1").first).to_have_text(first["client"], timeout=30_000)
    assert len(page.context.pages) == 1
    page.close()


def test_unknown_deep_link_keeps_its_error_and_its_url(server, browser):
    page = open_page(browser, server, "?client=DOES_NOT_EXIST")
    expect(page.locator("h1").first).to_have_text("Token budgets")
    error = page.get_by_test_id("stAlertContentError")
    expect(error).to_contain_text("DOES_NOT_EXIST")
    page.wait_for_timeout(2_000)
    page.wait_for_selector(IDLE)
    assert page.url.endswith("?client=DOES_NOT_EXIST")
    expect(error).to_contain_text("DOES_NOT_EXIST")
    expect(page.locator("h1").first).to_have_text("Token budgets")
    page.close()


def test_analytics_at_a_laptop_width(server, browser):
    page = open_page(browser, server, "analytics")
    at_width(page, 1280)
    page.get_by_role("tab", name="Approaching limits").click()
    expect(page.get_by_text("not enough history yet").first).to_be_attached(timeout=30_000)
    screenshot(page, "numbers-analytics-1280")
    page.close()


def pick_client(page, name: str) -> None:
    box = page.locator("[data-testid='stSelectbox']").filter(has_text="Client").first
    box.click()
    page.keyboard.type(name)
    page.keyboard.press("Enter")


def test_back_returns_to_the_previous_client(server, browser, svc):
    first, second = svc.client("C0001"), svc.client("C0002")
    page = open_page(browser, server, "client?client=C0001")
    expect(page.locator("h1").first).to_have_text(first.name)
    pick_client(page, second.name)
    expect(page.locator("h1").first).to_have_text(second.name, timeout=30_000)
    page.wait_for_selector(IDLE)
    assert page.url.endswith("client?client=C0002")
    page.go_back()
    expect(page.locator("h1").first).to_have_text(first.name, timeout=30_000)
    page.wait_for_selector(IDLE)
    assert page.url.endswith("client?client=C0001")
    page.go_forward()
    expect(page.locator("h1").first).to_have_text(second.name, timeout=30_000)
    page.close()
