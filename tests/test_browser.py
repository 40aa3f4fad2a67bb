"""Every page in headless Debian Chromium against a real `streamlit run`."""

import pytest

from tests.support.browser import SHOTS, require_chromium, streamlit_server

PAGES = {"overview": "", "client": "client?client=C0004", "analytics": "analytics",
         "admin": "admin", "audit": "audit", "root-deep-link": "?client=C0002"}

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(demo_db, tmp_path_factory):
    require_chromium()
    with streamlit_server(demo_db, tmp_path_factory.mktemp("streamlit")) as url:
        yield url


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders_without_exception(server, browser, name):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server}/{PAGES[name]}")
    idle = "[data-testid='stApp'][data-test-script-state='notRunning']"
    page.wait_for_selector(idle, timeout=60_000)
    page.wait_for_selector("h1", timeout=30_000)
    page.wait_for_timeout(1500)  # a deep link reruns once more (switch_page)
    page.wait_for_selector(idle, timeout=60_000)
    if page.locator("[data-testid='stDataFrame']").count():
        page.wait_for_selector("[data-testid='stDataFrame'] canvas", timeout=30_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    errors = page.locator("[data-testid='stException']")
    assert errors.count() == 0, errors.first.inner_text()
    heading = page.locator("h1").first.inner_text()
    expected = {"overview": "Token budgets", "analytics": "Analytics", "admin": "Admin",
                "audit": "Audit log"}
    if name in expected:
        assert heading == expected[name]
    else:  # a client page: its headline carries the figures
        assert "Token Usage:" in page.locator("h3").first.inner_text()
    page.close()
