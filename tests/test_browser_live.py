"""The Client page's live preview in headless Chromium against a real `streamlit run`:
typed character by character, with no Ctrl+Enter and no Tab, each field's tokens, the
change and the remaining budget follow the text (the same count the service saves
with); the box keeps a text area's label and character count; a pasted text over the
limit is refused in place; Save saves exactly what was typed."""

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from budget import views
from budget.model import Actor, Change
from tests.support.browser import IDLE, open_page, require_chromium, screenshot, streamlit_server
from tests.support.factories import make_service

pytestmark = pytest.mark.browser
EXCEPTION = "[data-testid='stException']"
CLIENT = "C0004"


@pytest.fixture(scope="module")
def db(module_demo_copy):
    return module_demo_copy


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("streamlit")


@pytest.fixture(scope="module")
def server(db, work):
    require_chromium()
    # info: the page logs how long after a typed text arrived its preview was drawn
    with streamlit_server(db, work, STREAMLIT_LOGGER_LEVEL="info", PYTHONUNBUFFERED="1") as url:
        yield url


@pytest.fixture(scope="module")
def svc(db):
    return make_service(db)


def open_attribute(page, name: str) -> None:
    """Opens the attribute `name` by its own option: the picker's filter also matches
    names that merely contain what was typed, so Enter may open another one."""
    pick = page.locator(".st-key-edit_attr input")
    option = page.get_by_role("option").filter(
        has_text=re.compile(rf"^{re.escape(name)} \((in)?active\)$"))
    for attempt in range(3):  # a rerun still drawing the page may close the list
        page.wait_for_selector(IDLE, timeout=60_000)
        pick.click()
        pick.fill(name)
        try:
            option.click(timeout=10_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    page.wait_for_selector(IDLE, timeout=60_000)


def an_attribute(svc, client_id: str = CLIENT):
    """An attribute of the client whose name no other one of its names starts with, so
    typing it into the picker opens that one."""
    attrs = svc.attributes(client_id)
    names = [a.name for a in attrs]
    return next(a for a in attrs if sum(n.startswith(a.name) for n in names) == 1)


def roomiest(svc) -> str:
    """The client furthest under its budget: a few more tokens may be saved there."""
    return min(svc.usage_report(), key=lambda u: u.percent_used).client.id


def figures(page, field: str):
    """The line under the box `field`: its character count and its tokens."""
    return page.locator(".live-text").filter(
        has=page.get_by_label(field, exact=True)).locator(".figures")


def expect_preview(page, svc, attribute, field: str, text: str) -> None:
    """The figures the page shows are the service's for `text` in `field`."""
    cid = attribute.client_id
    result, tokens = svc.preview_change(Change(cid, {attribute.id: {field: text}}))
    now = next(c.tokens for c in svc.costs(cid) if c.id == attribute.id)
    expect(page.get_by_text(f"{result.current:,} → {result.projected:,} tokens "
                            f"(delta {result.delta:+,})")).to_be_visible(timeout=10_000)
    remaining = page.locator("[data-testid='stMetric']").filter(has_text="Remaining after")
    expect(remaining).to_contain_text(views.remaining_text(result.budget - result.projected))
    note = views.field_tokens_text(now.of(field), tokens[attribute.id].of(field))
    expect(figures(page, field).locator(".note")).to_have_text(note)


def type_at_end(page, box, text: str) -> None:
    """Types `text` at the end of `box` as a person does: no Ctrl+Enter, no Tab."""
    box.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(text, delay=60)


def lags(work) -> list[float]:
    """The server's figures: ms from a typed text arriving to its preview drawn."""
    log = (work / "server.log").read_text()
    return [float(m) for m in re.findall(r"preview drawn ([0-9.]+) ms after", log)]


def test_preview_follows_the_typing_without_a_key_press(server, browser, svc, work):
    attribute = an_attribute(svc)
    page = open_page(browser, server, f"client?client={CLIENT}")
    open_attribute(page, attribute.name)
    box = page.get_by_label("Signals", exact=True)
    expect(box).to_be_visible()
    expect(box).to_have_value(attribute.signals)
    typed = " Prefer firms that replied within a day."
    type_at_end(page, box, typed)
    text = attribute.signals + typed
    expect_preview(page, svc, attribute, "Signals", text)
    count = f"{len(text):,} / 100,000 characters"
    expect(figures(page, "Signals").locator(".count")).to_have_text(count)
    expect(box).to_be_focused()  # the rerun took neither the focus nor a keystroke
    expect(box).to_have_value(text)
    assert page.locator(EXCEPTION).count() == 0
    screenshot(page, "client-live-preview")
    print(f"typical attribute ({len(text):,} characters): server ms from text to "
          f"preview {lags(work)}")
    page.close()


def test_a_long_text_previews_as_it_is_typed(server, browser, svc, work):
    attribute = an_attribute(svc)
    page = open_page(browser, server, f"client?client={CLIENT}")
    open_attribute(page, attribute.name)
    box = page.get_by_label("Examples", exact=True)
    long = ("Series B SaaS firm, 200 staff, replied within a day. " * 400)[:20_000]
    box.fill(long)  # a paste
    before = len(lags(work))
    box.press("End")
    page.keyboard.type(" More.", delay=60)
    expect_preview(page, svc, attribute, "Examples", long + " More.")
    print(f"long attribute (20,006 characters): server ms from text to preview "
          f"{lags(work)[before:]}")
    page.close()


def test_a_text_over_the_limit_is_refused_in_place(server, browser, svc):
    attribute = an_attribute(svc)
    page = open_page(browser, server, f"client?client={CLIENT}")
    open_attribute(page, attribute.name)
    page.get_by_label("Examples", exact=True).fill("x" * 200_000)  # no key press either
    expect(page.get_by_text("Examples: 200,000 characters is over the limit of 100,000")
           ).to_be_visible(timeout=30_000)
    expect(figures(page, "Examples").locator(".count")).to_have_text(
        "200,000 / 100,000 characters")
    assert page.locator(EXCEPTION).count() == 0
    assert page.get_by_text("Traceback").count() == 0
    assert page.locator(".st-key-save button").count() == 0
    expect(page.get_by_text("Bulk activate or deactivate")).to_be_visible()
    (kept,) = [a for a in svc.attributes(CLIENT) if a.id == attribute.id]
    assert kept.examples == attribute.examples  # nothing was saved
    page.close()


def test_save_after_typing_saves_exactly_the_typed_text(server, browser, svc):
    roomy = roomiest(svc)
    attribute = an_attribute(svc, roomy)
    page = open_page(browser, server, f"client?client={roomy}")
    open_attribute(page, attribute.name)
    box = page.get_by_label("Instructions", exact=True)
    typed = " 見込み客 🚀 <|endoftext|>"
    type_at_end(page, box, typed)
    text = attribute.instructions + typed
    expect_preview(page, svc, attribute, "Instructions", text)
    page.locator(".st-key-save button").click()
    notice = page.locator("[data-testid='stAlertContentSuccess']").filter(has_text="Saved '")
    expect(notice.first).to_be_visible(timeout=30_000)
    (saved,) = [a for a in svc.attributes(roomy) if a.id == attribute.id]
    assert saved.instructions == text
    assert (saved.examples, saved.signals) == (attribute.examples, attribute.signals)
    expect(page.get_by_label("Instructions", exact=True)).to_have_value(text)
    page.close()


def test_keep_theirs_puts_their_text_in_the_box_for_good(server, browser, svc):
    """The browser holds the text it last sent for each box: after "Keep theirs" the
    boxes are drawn under new keys, so a later rerun cannot bring the dropped text
    back."""
    roomy = roomiest(svc)
    attribute = an_attribute(svc, roomy)
    page = open_page(browser, server, f"client?client={roomy}")
    open_attribute(page, attribute.name)
    box = page.get_by_label("Signals", exact=True)
    type_at_end(page, box, " mine")
    expect_preview(page, svc, attribute, "Signals", attribute.signals + " mine")
    theirs = "Theirs: prefer firms with a named buyer."
    svc.apply(Actor("bob", "admin"), Change(roomy, {attribute.id: {"Signals": theirs}}))
    page.locator(".st-key-save button").click()
    expect(page.get_by_text("changed by someone else since you opened it")).to_be_visible(
        timeout=30_000)
    screenshot(page, "client-live-conflict")
    expect(box).to_have_value(attribute.signals + " mine")  # what was typed stays
    page.locator(".st-key-keep_theirs button").click()
    expect(box).to_have_value(theirs, timeout=30_000)
    examples = page.get_by_label("Examples", exact=True)
    type_at_end(page, examples, " More.")  # a rerun with the dropped text still in mind
    (now,) = [a for a in svc.attributes(roomy) if a.id == attribute.id]
    expect_preview(page, svc, now, "Examples", now.examples + " More.")
    expect(box).to_have_value(theirs)
    assert page.get_by_text("changed by someone else").count() == 0
    assert page.locator(EXCEPTION).count() == 0
    page.close()
