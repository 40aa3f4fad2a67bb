"""The Client and Admin pages' edits in headless Chromium against a real `streamlit
run` on a copy of the demo data: what a user types is refused in place when the
service refuses it (never a traceback), an overtaken draft stays in its box, and every
write says what it changed."""

import shutil

import pytest
from playwright.sync_api import expect

from budget import views

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


@pytest.fixture
def logged_server(demo_db, tmp_path):
    """A server of its own, over its own copy of the demo data, logging at debug level:
    Streamlit logs "Running script" at the start of each script run."""
    require_chromium()
    db = tmp_path / "demo.db"
    shutil.copy(demo_db, db)
    with streamlit_server(db, tmp_path, STREAMLIT_LOGGER_LEVEL="debug") as url:
        yield url, tmp_path / "server.log", make_service(db)


def script_runs(log) -> int:
    return log.read_text().count("Running script")


def test_a_save_draws_the_saved_figures_in_the_run_its_press_starts(logged_server, browser):
    """The Save button is in the part of the Client page that draws every figure a save
    moves, so its press reruns that part once and nothing else: the notice, the
    headline, the grid and the chart are the saved ones, and the bulk switch is based
    on the saved versions. From the callback, the whole page ran again after the
    editor's run: two runs, two redraws in the browser."""
    server, log, svc = logged_server
    page = open_page(browser, server, "client?client=C0003")
    # the attribute the editor shows, "Name (active)"
    shown = page.get_by_role("combobox", name="Attribute", exact=True).input_value()
    edited = next(a for a in svc.attributes("C0003") if shown.startswith(a.name + " ("))
    page.get_by_label("Attributes", exact=True).click()  # picked for the bulk switch first
    page.keyboard.type(edited.name)
    page.keyboard.press("Enter")
    idle(page)
    box = page.get_by_label("Signals", exact=True)
    commit(page, "Signals", box.input_value()[:-12])
    before = script_runs(log)
    page.locator(".st-key-save button").click()
    notice = page.locator("[data-testid='stAlertContentSuccess']").filter(has_text="Saved '")
    expect(notice.first).to_be_visible(timeout=30_000)
    idle(page)
    assert script_runs(log) - before == 1
    usage = svc.client_usage("C0003")
    expect(notice.first).to_contain_text(f"→ {usage.usage:,} of {usage.budget:,} tokens")
    expect(page.get_by_text(views.headline(usage))).to_be_visible()
    expect(page.get_by_text("Attribute library", exact=True)).to_be_visible()
    assert page.locator("[data-testid='stSidebar']").get_by_text("Data loaded").count() == 1
    # the switch pressed right after the save is based on what the save left: before,
    # it was refused as "changed since it was read" by someone else
    # the pick reads as the save left it (the browser kept the old label, and sent it
    # back with the press: a traceback); so does the editor's attribute once switched
    tokens = next(c.tokens.total for c in svc.costs("C0003") if c.id == edited.id)
    expect(page.locator(".st-key-bulk_pick")).to_contain_text(
        f"{edited.name} · active · {tokens:,} tokens")
    page.locator(".st-key-bulk_off button").click()
    expect(page.get_by_text("Deactivated 1 attributes")).to_be_visible(timeout=30_000)
    assert not next(a for a in svc.attributes("C0003") if a.id == edited.id).active
    expect(page.get_by_role("combobox", name="Attribute", exact=True)).to_have_value(
        f"{edited.name} (inactive)")
    assert page.locator(EXCEPTION).count() == 0
    screenshot(page, "client-after-save-and-bulk")
    page.close()


def test_another_client_chosen_then_edited_and_saved(server, browser, svc):
    """The flow of someone going through clients: choose one in the selector, trim a
    text until the preview shows its tokens, save; the attribute pickers kept from the
    client before still hold that client's picks when the next one is drawn."""
    page = open_page(browser, server, "client?client=C0003")
    name = next(c.name for c in svc.store.clients() if c.id == "C0006")
    page.get_by_test_id("stSelectbox").first.click()
    page.keyboard.type("C0006")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_contain_text(name, timeout=30_000)
    idle(page)
    box = page.get_by_label("Signals", exact=True)
    trimmed = box.input_value()[:-12]
    box.click()
    box.press("Control+End")  # End alone ends the wrapped line the caret is on
    for _ in range(12):
        box.press("Backspace")
    box.press("Control+Enter")
    expect(page.get_by_text("tokens (delta").first).to_be_visible(timeout=30_000)
    idle(page)
    page.locator(".st-key-save button").click()
    notice = page.locator("[data-testid='stAlertContentSuccess']").filter(has_text="Saved '")
    expect(notice.first).to_be_visible(timeout=30_000)
    assert next(iter(svc.audit("C0006")[-1].after.values()))["signals"] == trimmed
    page.close()
