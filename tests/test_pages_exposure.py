"""Without a login, only a server that listens on a loopback address trusts its visitor
as the local admin. On any other address (0.0.0.0, unset, a LAN address) every visitor
could be anyone, so the app starts read-only, says why in a banner naming the address and
the settings to configure a login, and the sidebar states the address it really has."""

from __future__ import annotations

import pytest
from streamlit import config

from tests.support.apptest import opens, signed_in, text_of
from tests.support.browser import IDLE, require_chromium, streamlit_server

ADMIN_PAGES = ["app_pages/admin.py", "app_pages/scheduled_pass.py"]
REVIEW_PAGES = ["app_pages/savings.py", "app_pages/batch_edit.py"]


@pytest.fixture
def listening():
    """Sets Streamlit's `server.address` option as `--server.address` would."""
    before = config.get_option("server.address")

    def listen(address: str | None) -> None:
        config.set_option("server.address", address)
    yield listen
    config.set_option("server.address", before)


@pytest.mark.parametrize("address, said", [
    ("0.0.0.0", "0.0.0.0 (every network interface)"),
    (None, "every network interface (server.address is not set)"),
    ("10.1.2.3", "10.1.2.3"),
    ("::", ":: (every network interface)"),
])
def test_no_login_on_a_public_address_is_read_only(app, small, listening, address, said):
    listening(address)
    at = app(small.store.path)
    banner = [w.value for w in at.warning]
    assert len(banner) == 1, text_of(at)
    assert f"listens on {said}" in banner[0]
    assert "[auth]" in banner[0] and "TOKENBUDGET_ROLES" in banner[0]
    sidebar = text_of(at.sidebar)
    assert "**Read-only**" in sidebar and said in sidebar and "127.0.0.1" not in sidebar
    assert not [p for p in ADMIN_PAGES + REVIEW_PAGES if opens(at, p)]
    assert opens(at, "app_pages/client.py")
    at.switch_page("app_pages/client.py").run()
    assert not at.exception


@pytest.mark.parametrize("address", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_no_login_on_loopback_is_the_local_admin(app, small, listening, address):
    listening(address)
    at = app(small.store.path)
    assert not at.warning, text_of(at)
    sidebar = text_of(at.sidebar)
    assert "you are the local **admin**" in sidebar
    assert f"the server listens on {address} only" in sidebar
    assert all(opens(at, p) for p in ADMIN_PAGES + REVIEW_PAGES)


def test_a_login_is_trusted_on_any_address(app, small, listening, monkeypatch):
    listening("0.0.0.0")
    monkeypatch.setenv("TOKENBUDGET_ROLES", "ada@example.com:admin")
    at = app(small.store.path, **signed_in("ada@example.com"))
    assert not at.warning
    assert all(opens(at, p) for p in ADMIN_PAGES)


def test_loopback_addresses():
    from ui.session import loopback_only
    assert all(map(loopback_only, ["127.0.0.1", "127.8.9.10", "::1", "localhost",
                                   "LOCALHOST"]))
    assert not any(map(loopback_only, ["", "0.0.0.0", "::", "10.0.0.1", "192.168.1.5",
                                       "example.com", "127.0.0.1.example.com"]))


@pytest.mark.parametrize("address", ["0.0.0.0", "127.0.0.1"])
def test_streamlit_run_in_the_browser(browser, demo_copy, tmp_path, address):
    require_chromium()
    with streamlit_server(demo_copy, tmp_path, address=address) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.wait_for_selector("h1", timeout=90_000)
        page.wait_for_selector(IDLE, timeout=90_000)
        nav = page.locator("[data-testid='stSidebarNav']")
        nav.get_by_text("Audit log").wait_for(timeout=90_000)
        sidebar = page.locator("[data-testid='stSidebar']").inner_text()
        banners = page.locator("[data-testid='stAlertContentWarning']").all_inner_texts()
        pages = nav.inner_text()
        page.close()
    if address == "0.0.0.0":
        assert any("listens on 0.0.0.0 (every network interface)" in b for b in banners)
        assert "Admin" not in pages and "Scheduled pass" not in pages and "Savings" not in pages
        assert "Read-only" in sidebar and "127.0.0.1" not in sidebar
    else:
        assert not banners
        assert "Admin" in pages and "Scheduled pass" in pages
        assert "listens on 127.0.0.1 only" in sidebar
