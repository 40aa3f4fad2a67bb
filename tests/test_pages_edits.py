"""AppTest of what a user can type or click on the Client and Admin pages: refused in
place with a message (never a traceback, never a silently different value), an
overtaken draft kept, and every write saying exactly what it changed."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from budget.model import Actor, Change
from tests.support.apptest import live_box, text_of
from tests.support.factories import ADMIN, words


def client_page(app, small, aid: str = "a1"):
    at = app(small.store.path, "app_pages/client.py", client="A")
    at.selectbox(key="edit_attr").select(aid).run()
    return at


def admin_page(app, small, cid: str = "A"):
    at = app(small.store.path, "app_pages/admin.py")
    at.selectbox(key="admin_client").select(cid).run()
    return at


def area(at, label: str):
    """A text area the page draws with st.text_area (their version, for one)."""
    return next(t for t in at.text_area if t.label == label)


def test_text_over_the_limit_is_refused_under_its_field(app, small):
    at = client_page(app, small)
    assert live_box(at, "Examples").limit == 100_000  # the count the box shows against
    live_box(at, "Examples").input("x" * 200_000).run()
    assert not at.exception
    assert any("Examples: 200,000 characters is over the limit of 100,000" in e.value
               for e in at.error)
    assert live_box(at, "Examples").value == "x" * 200_000  # what was typed stays
    # the refused box has no count; the untouched ones keep theirs
    assert live_box(at, "Examples").note == ""
    assert live_box(at, "Signals").note.endswith(" tokens")
    assert not [b for b in at.button if b.key == "save"]
    # the rest of the page is still there
    assert at.multiselect(key="bulk_pick").label == "Attributes"
    assert "Suggestions for reducing usage" in [h.value for h in at.header]
    assert small.store.attributes(ids=["a1"])[0].examples == ""


def test_overtaken_draft_is_kept_and_saved_only_on_purpose(app, small):
    at = client_page(app, small)
    live_box(at, "Signals").input("mine").run()
    small.apply(Actor("bob", "admin"), Change("A", fields={"a1": {"Signals": "theirs"}}))
    at.button(key="save").click().run()
    assert not at.exception
    (refusal,) = [e.value for e in at.error if "someone else" in e.value]
    assert "changed by someone else since you opened it: bob at " in refusal
    assert "(Signals)" in refusal
    assert live_box(at, "Signals").value == "mine"  # what the user typed stays
    assert area(at, "Signals (theirs)").value == "theirs"  # next to theirs
    assert small.store.attributes(ids=["a1"])[0].signals == "theirs"
    assert [e.actor for e in small.audit("A")] == ["bob"]
    at.button(key="save_anyway").click().run()
    assert not at.exception
    assert small.store.attributes(ids=["a1"])[0].signals == "mine"
    assert [e.actor for e in small.audit("A")] == ["bob", "local admin"]
    assert not [e for e in at.error if "someone else" in e.value]


def test_keep_theirs_drops_the_draft(app, small):
    at = client_page(app, small)
    live_box(at, "Signals").input("mine").run()
    small.apply(Actor("bob", "admin"), Change("A", fields={"a1": {"Signals": "theirs"}}))
    at.run()
    at.button(key="keep_theirs").click().run()
    assert live_box(at, "Signals").value == "theirs"
    assert not [e for e in at.error if "someone else" in e.value]
    assert [e.actor for e in small.audit("A")] == ["bob"]


def test_deactivation_says_what_happened(app, small):
    at = client_page(app, small)
    at.toggle[0].set_value(False).run()
    at.button(key="save").click().run()
    assert not small.store.attributes(ids=["a1"])[0].active
    assert [t.value for t in at.success] == ["Deactivated 'Size': usage 80 → 40 of 100 tokens"]


@pytest.mark.parametrize(("typed", "problem"), [
    ("-100", "must not be negative, got -100"),
    ("1e9", "must be a whole number, got '1e9'"),
    ("12.5", "must be a whole number, got '12.5'"),
    ("", "must be a whole number, got ''")])
@pytest.mark.parametrize(("key", "button"), [("override", "set_override"),
                                             ("topup", "grant_topup")])
def test_token_figures_are_refused_in_place_not_coerced(app, small, typed, problem, key,
                                                        button):
    at = admin_page(app, small)
    at.text_input(key=key).input(typed).run()
    assert not at.exception
    assert any(problem in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key=button).disabled
    assert small.client("A").token_budget is None and small.client("A").topup == 0
    assert small.audit() == []


def test_token_figure_saved_as_typed(app, small):
    at = admin_page(app, small)
    at.text_input(key="override").input("1000000000").run()
    assert any("budget 100 → 1,000,000,000" in c.value for c in at.caption)
    at.button(key="set_override").click().run()
    assert small.client("A").token_budget == 1_000_000_000
    assert [t.value for t in at.success] == ["Alpha: budget 1,000,000,000 tokens"]


def test_negative_tier_limit_is_refused_in_place(app, small):
    at = app(small.store.path, "app_pages/admin.py")
    at.session_state["tiers_editor"] = {"edited_rows": {0: {"tokens": "-500"}},
                                        "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.exception
    assert any("Token Budget: must not be negative, got -500" in e.value for e in at.error)
    assert at.button(key="save_tiers").disabled
    assert small.tiers()[1].tokens == 100


def test_tier_limit_that_pushes_clients_over_asks_first(app, small):
    at = app(small.store.path, "app_pages/admin.py")
    at.session_state["tiers_editor"] = {"edited_rows": {0: {"tokens": "70"}},
                                        "added_rows": [], "deleted_rows": []}
    at.run()
    at.button(key="save_tiers").click().run()
    assert small.tiers()[1].tokens == 100  # asked, not saved
    assert "- **Alpha**: 80 / 70 tokens (114% used)" in text_of(at)
    at.button(key="tiers_confirm").click().run()
    assert not at.exception
    assert small.tiers()[1].tokens == 70


def test_reset_says_what_changed_then_that_nothing_did(app, small):
    ahead = datetime.now(UTC).date() + timedelta(days=10)  # the app runs on the real clock
    small.store.save_client(replace(small.client("B"), budget_reset_date=ahead))
    small.grant_topup(ADMIN, "B", 50)
    at = admin_page(app, small, "B")
    at.button(key="reset_one").click().run()
    at.button(key="reset_confirm").click().run()
    assert not at.exception
    said = (f"Beta: usage 150 → 150 tokens (unchanged); next reset {ahead:%Y-%m-%d} → "
            f"{ahead:%Y-%m-%d} (unchanged: already the first period boundary after now); "
            "top-up 50 → 0; this period's alerts cleared")
    assert at.success[0].value == said  # the notice of the last write, on top
    assert any(said in s.value for s in at.success)  # the page says it too
    at.button(key="reset_one").click().run()
    at.button(key="reset_confirm").click().run()
    assert any("Beta: nothing changed. It was already reset for the period from" in s.value
               for s in at.success)


def test_reset_dialog_for_several_clients_names_them(app, small):
    at = app(small.store.path, "app_pages/admin.py")
    at.button(key="reset_all").click().run()
    assert "**Alpha**, **Beta**" in text_of(at)


def test_save_pressed_as_the_last_text_arrives_saves_that_text(app, small):
    """The box sends its text a moment after the last keystroke, or when it loses focus
    to the Save button: the text and the press reach the server together, and the press
    saves the text as it arrived, not the one the preview before it showed."""
    at = client_page(app, small)
    live_box(at, "Signals").input("first draft").run()
    live_box(at, "Signals").input("second draft")
    at.button(key="save").click().run()
    assert not at.exception
    assert small.store.attributes(ids=["a1"])[0].signals == "second draft"
    assert [t.value for t in at.success][0].startswith("Saved 'Size' (Signals): usage ")
    assert live_box(at, "Signals").value == "second draft"


def test_save_refused_by_the_store_says_why_by_the_editor(app, small):
    """A press whose write the service refuses (the budget moved under it since the
    preview) shows the reason in the editor, and nothing is saved."""
    at = client_page(app, small)
    live_box(at, "Signals").input(words(10)).run()  # 80 → 90 of 100 tokens: allowed
    assert not at.button(key="save").disabled
    assert small.apply(ADMIN, Change("A", fields={"a2": {"Examples": words(25)}})).allowed
    at.button(key="save").click().run()  # 95 + 10 is over the budget now
    assert not at.exception
    assert small.store.attributes(ids=["a1"])[0].signals == ""
    assert [e.value for e in at.error if e.value.startswith("Refused: ")], [
        e.value for e in at.error]
    assert live_box(at, "Signals").value == words(10)  # what was typed stays
    assert [e.actor for e in small.audit("A")] == [ADMIN.name]  # the other save only


def test_a_save_on_the_client_page_does_not_sum_every_clients_usage(app, small, monkeypatch):
    """The Client page shows one client's figures: the run after a save reads that
    client's usage and the clients' ids and names, not every client's usage (at 2,000
    clients, half of that run) nor every client whole (40% of what was left); the
    Overview, next, shows the saved figure."""
    from budget.service import BudgetService
    from budget.stores import SQLiteStore
    sums, whole = [], []
    every = BudgetService.usage_report
    monkeypatch.setattr(BudgetService, "usage_report", lambda self: sums.append(1) or every(self))
    read = SQLiteStore.clients
    monkeypatch.setattr(SQLiteStore, "clients", lambda self: whole.append(1) or read(self))
    at = client_page(app, small)
    live_box(at, "Signals").input(words(5)).run()
    sums.clear(), whole.clear()  # opening the page from the root URL went by the Overview
    at.button(key="save").click().run()
    assert not at.exception
    assert [t.value for t in at.success][0].startswith("Saved 'Size' (Signals): usage ")
    assert sums == [] and whole == []  # the selector's list: ids and names, not whole clients
    assert at.selectbox(key="pick").options == ["Alpha (A)", "Beta (B)"]
    assert any(c.value.startswith("Data loaded ") for c in at.sidebar.caption)
    at.query_params.clear()  # the Overview with ?client= would open the client again
    at.switch_page("app_pages/overview.py").run()
    assert sums == [1]
    usage = small.client_usage("A")
    row = at.dataframe[0].value.set_index("client").loc["Alpha"]
    assert row["figure"] == f"{usage.usage:,} / {usage.budget:,}"


def test_opening_a_client_looks_for_suggestions_only_once_asked(app, small, monkeypatch):
    """Looking for savings took a third of the run that opens a client, and its cards a
    tenth of the browser's drawing: the page looks only once the user turns the
    switch on, which then stays on from client to client."""
    from budget import optimize
    looked = []
    suggest = optimize.suggest
    monkeypatch.setattr(optimize, "suggest", lambda *a, **k: looked.append(1) or suggest(*a, **k))
    dup = "Score leads from retail chains higher than average. " * 3
    assert small.apply(ADMIN, Change("A", fields={"a1": {"Instructions": dup}})).allowed
    at = app(small.store.path, "app_pages/client.py", client="A")
    assert looked == [] and not [m for m in at.markdown if "saves" in m.value]
    assert "Suggestions for reducing usage" in [h.value for h in at.header]
    at.toggle(key="tips_open").set_value(True).run()
    assert looked == [1]
    assert any("duplicate" in m.value for m in at.markdown if "saves" in m.value)
    at.selectbox(key="pick").select("B").run()
    assert at.title[0].value == "Beta" and at.toggle(key="tips_open").value
    assert looked == [1, 1]


def test_the_client_page_loads_the_tokenizer_in_the_background(app, small, monkeypatch):
    """Pages draw stored counts, so nothing on them loads the tokenizer: left to the
    first keystroke in the editor, its preview waited 0.7 s for it. The Client page has
    it loaded in the background once it is drawn; the Overview, which has no editor,
    leaves it alone (loading it there took the CPU from the first page drawn)."""
    import os
    import sys
    import threading
    import time

    from budget import tokens
    from budget.service import BudgetService
    monkeypatch.setattr(tokens, "_counters", {})
    niceness = []
    load = BudgetService.load_tokenizer
    monkeypatch.setattr(BudgetService, "load_tokenizer", lambda self: niceness.append(
        os.getpriority(os.PRIO_PROCESS, threading.get_native_id())) or load(self))
    small.costs()  # every text counted and stored: no page needs a count
    app(small.store.path, "app_pages/overview.py")
    time.sleep(0.5)
    assert tokens._counters == {}
    app(small.store.path, "app_pages/client.py", client="A")
    deadline = time.monotonic() + 30
    while small.encoding not in tokens._counters and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(tokens._counters) == [small.encoding]
    # at the lowest CPU priority, so it does not take the CPU from drawing the page
    assert niceness == ([19] if sys.platform.startswith("linux") else [os.getpriority(
        os.PRIO_PROCESS, 0)])
