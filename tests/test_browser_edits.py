"""The Client and Admin pages' edits in headless Chromium against a real `streamlit
run` on a copy of the demo data: what a user types is refused in place when the
service refuses it (never a traceback), an overtaken draft stays in its box, and every
write says what it changed."""


import pytest
from playwright.sync_api import expect

from tests.support.browser import IDLE, open_page, require_chromium, screenshot, streamlit_server
from tests.support.factories import make_service

pytestmark = pytest.mark.browser
EXCEPTION = "[data-testid='stException']"


@pytest.fixture(scope="module")
def db(module_demo_copy):
    return module_demo_copy


@pytest.fixture(scope="module")
def server(db, tmp_path_factory):
    require_chromium()
    with streamlit_server(db, tmp_path_factory.mktemp("streamlit")) as url:
        yield url


@pytest.fixture(scope="module")
def svc(db):
    return make_service(db)


def idle(page) -> None:
    page.wait_for_timeout(300)  # the rerun a change starts
    page.wait_for_selector(IDLE, timeout=60_000)


def commit(page, label: str, text: str) -> None:
    """Types `text` into the text area `label` as a paste would, and submits it."""
    box = page.get_by_label(label, exact=True)
    box.fill(text)
    box.press("Control+Enter")
    idle(page)


def test_text_over_the_limit_is_a_message_not_a_traceback(server, browser, svc):
    page = open_page(browser, server, "client?client=C0004")
    # the live boxes mount after the script run: on a busy machine that takes seconds
    expect(page.get_by_text("/ 100,000 characters").first).to_be_visible(timeout=30_000)
    commit(page, "Examples", "x" * 200_000)
    expect(page.get_by_text("Examples: 200,000 characters is over the limit of 100,000")
           ).to_be_visible(timeout=30_000)
    expect(page.get_by_text("200,000 / 100,000 characters")).to_be_visible()
    assert page.locator(EXCEPTION).count() == 0
    assert page.locator(".st-key-save button").count() == 0
    expect(page.get_by_text("Bulk activate or deactivate")).to_be_visible()
    expect(page.get_by_text("Suggestions for reducing usage")).to_be_visible()
    screenshot(page, "client-text-over-limit")
    page.close()


def test_concurrent_edit_keeps_the_overtaken_text(server, browser, svc):
    client_id = "C0007"
    before = svc.audit(client_id)
    # Browser.new_page opens each page in a browser context of its own: two sessions
    tabs = [open_page(browser, server, f"client?client={client_id}") for _ in range(2)]
    a, b = tabs
    commit(a, "Signals", "Mine: prefer firms that replied within a day.")
    commit(b, "Signals", "Theirs: prefer firms with a named buyer.")
    b.locator(".st-key-save button").click()
    expect(b.get_by_text("Change the toggle or a text")).to_be_visible(timeout=30_000)
    a.locator(".st-key-save button").click()
    idle(a)
    expect(a.get_by_text("changed by someone else since you opened it")).to_be_visible(
        timeout=30_000)
    expect(a.get_by_text("local admin at ")).to_be_visible()
    expect(a.get_by_label("Signals", exact=True)).to_have_value(
        "Mine: prefer firms that replied within a day.")
    expect(a.get_by_label("Signals (theirs)", exact=True)).to_have_value(
        "Theirs: prefer firms with a named buyer.")
    assert a.locator(EXCEPTION).count() == 0
    after = svc.audit(client_id)[len(before):]
    assert [next(iter(e.after.values()))["signals"] for e in after] == [
        "Theirs: prefer firms with a named buyer."]
    screenshot(a, "client-concurrent-edit")
    a.locator(".st-key-save_anyway button").click()
    expect(a.get_by_text("Change the toggle or a text")).to_be_visible(timeout=30_000)
    after = svc.audit(client_id)[len(before):]
    assert [next(iter(e.after.values()))["signals"] for e in after] == [
        "Theirs: prefer firms with a named buyer.",
        "Mine: prefer firms that replied within a day."]
    for tab in tabs:
        tab.context.close()


@pytest.mark.parametrize(("typed", "problem"), [("-100", "must not be negative, got -100"),
                                                ("1e9", "must be a whole number, got '1e9'")])
def test_budget_override_refuses_what_it_cannot_save(server, browser, svc, typed, problem):
    page = open_page(browser, server, "admin")
    page.get_by_role("tab", name="Budget override").click()
    box = page.get_by_label("Token Budget override", exact=True)
    box.fill(typed)
    box.press("Enter")
    idle(page)
    expect(page.get_by_text(problem)).to_be_visible(timeout=30_000)
    expect(page.locator(".st-key-set_override button")).to_be_disabled()
    assert page.locator(EXCEPTION).count() == 0
    screenshot(page, f"admin-override-{'negative' if typed.startswith('-') else 'exponent'}")
    page.close()


def test_reset_says_what_changed(server, browser):
    page = open_page(browser, server, "admin")
    pick = page.locator(".st-key-admin_client input")
    pick.click()
    pick.fill("Pied Piper")
    pick.press("Enter")
    idle(page)
    page.locator(".st-key-reset_one button").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Reset Pied Piper", timeout=30_000)
    dialog.locator(".st-key-reset_confirm button").click()
    idle(page)
    report = page.locator("[data-testid='stAlertContainer']").filter(has_text="Last reset")
    expect(report.first).to_be_visible(timeout=30_000)
    text = report.first.inner_text()
    assert "Pied Piper" in text and "usage" in text and " → " in text, text
    assert "next reset" in text and "alerts cleared" in text, text
    screenshot(page, "admin-after-reset")
    page.close()


def test_saves_in_a_row_leave_one_message_not_a_pile_of_toasts(server, browser):
    page = open_page(browser, server, "admin")
    box = page.get_by_label("Temporary top-up (until the next reset)", exact=True)
    for tokens in ("10", "20", "30"):  # three grants, one right after the other
        page.get_by_role("tab", name="Top-up").click()
        box.fill(tokens)
        box.press("Enter")
        idle(page)
        page.locator(".st-key-grant_topup button").click()
        idle(page)
        expect(page.get_by_text(f"top-up {tokens} tokens until")).to_be_visible(timeout=30_000)
    assert page.locator("[data-testid='stToast']").count() == 0
    notices = page.locator("[data-testid='stAlertContentSuccess']").filter(
        has_text="top-up")
    expect(notices).to_have_count(1)  # the last one, replacing the two before
    expect(notices.first).to_contain_text("top-up 30 tokens")
    screenshot(page, "admin-after-three-topups")
    page.close()


def test_a_saved_edit_says_so_above_the_page(server, browser, svc):
    """What a save did is shown by the rerun that follows it: a toast sent before
    st.rerun never reached the browser."""
    page = open_page(browser, server, "client?client=C0003")
    box = page.get_by_label("Signals", exact=True)
    trimmed = box.input_value()[:-12]  # a trim: allowed even over budget
    commit(page, "Signals", trimmed)
    page.locator(".st-key-save button").click()
    notice = page.locator("[data-testid='stAlertContentSuccess']").filter(has_text="Saved '")
    expect(notice.first).to_be_visible(timeout=30_000)
    expect(notice.first).to_contain_text(" tokens")
    assert next(iter(svc.audit("C0003")[-1].after.values()))["signals"] == trimmed
    page.close()
