"""The sweep: every page a role may open, as viewer, analyst and admin; the bad inputs
typed into every text and number field (the Client page's live text boxes included),
every option of every select box chosen, a row with each bad input added to the tier
editor; every enabled button pressed (dialogs included). No run may end in an exception
box or a traceback, and nothing may be saved but what was typed: every text or figure
in the store afterwards is either what it was or exactly one of the inputs.

AppTest, not a browser: the same scripts run, some thousand runs in about a minute."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.support.apptest import TABS, live_boxes, open_tab, signed_in, text_of

ROLES = {"viewer": "vera@example.com", "analyst": "ann@example.com",
         "admin": "ada@example.com"}
PAGES = {"viewer": ["overview", "client", "analytics", "audit"],
         "analyst": ["overview", "client", "analytics", "savings", "batch_edit", "audit"],
         "admin": ["overview", "client", "analytics", "savings", "batch_edit", "admin",
                   "scheduled_pass", "audit"]}
TEXTS = ["x" * 200_000, "<|endoftext|>", "見込み客の規模 🚀🔥 ünïcödé", "", "-1", "1e9", "abc",
         str(10**20)]
NUMBERS = [-1, 1e9, 1e20]
# the table editors, with the columns typed into (AppTest has no cell editing: the
# edit is set as the browser sends it), and a good row that a row added takes the
# other columns from, so each bad input is the only thing wrong with its row
EDITORS = {"tiers_editor": {"level": "9", "name": "Added", "tokens": "900"}}
# buttons that leave the page or the session, not part of what a page does
SKIP = {"refresh", "logout", "login"}


def state(svc) -> dict[str, object]:
    """Everything a person can set through the pages, by record and field."""
    out: dict[str, object] = {}
    for a in svc.store.attributes():
        out |= {(a.id, f): a.text(f) for f in ("Instructions", "Examples", "Signals")}
        out[(a.id, "active")] = a.active
    for c in svc.store.clients():
        out |= {(c.id, "token_budget"): c.token_budget, (c.id, "topup"): c.topup,
                (c.id, "service_level"): c.service_level}
    for t in svc.store.tiers().values():
        out |= {(f"tier {t.level}", "tokens"): t.tokens, (f"tier {t.level}", "name"): t.name}
    return out


def check(at, where: str) -> None:
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"
    assert "Traceback" not in text_of(at), where
    for message in (*at.error, *at.warning, *at.caption, *at.markdown, *at.success):
        assert len(str(message.value)) < 2_000, f"{where}: a message repeats the input"


def check_saved(svc, before: dict[str, object], where: str) -> None:
    """What changed is one of the typed inputs, a flag, a level picked from a list, or a
    budget cleared (a button says so): never a figure or a text nobody typed."""
    filled = [v for row in EDITORS.values() for v in row.values()]
    typed = set(TEXTS + filled) | {int(t) for t in TEXTS + filled if t.isdigit()}
    for key, value in state(svc).items():
        if key in before and value == before[key]:
            continue  # a record that is new (a tier row added) is checked too
        _, field = key
        if field in ("active", "service_level") or (field in ("token_budget", "topup")
                                                    and value in (None, 0)):
            continue
        assert value in typed, f"{where}: {key} became {str(value)[:80]!r}, which nobody typed"


# what this run of the sweep did, by kind (a button pressed, a live text box typed
# into, ...), for the figures it prints
DONE: Counter[str] = Counter()


def press_everything(at, svc, before, where: str) -> None:
    """Each enabled button once, then whatever a press opened (a dialog's buttons)."""
    pressed: set[str] = set()
    for _ in range(3):
        todo = [b for b in at.button if b.key and b.key not in SKIP | pressed
                and not b.disabled]
        if not todo:
            return
        for b in todo:
            pressed.add(b.key)
            found = [x for x in at.button if x.key == b.key]
            if not found or found[0].disabled:
                continue
            found[0].click().run()
            DONE["button presses"] += 1
            check(at, f"{where}, button {b.key}")
            check_saved(svc, before, f"{where}, button {b.key}")


def inputs(at) -> list[tuple[str, str]]:
    fields = [("text_input", w.key) for w in at.text_input]
    fields += [("text_area", w.key) for w in at.text_area if not w.disabled]
    # a live box by its label: its key names the version its draft is based on, which
    # a press (a suggestion applied) moves on
    fields += [("live_text", b.label) for b in live_boxes(at)]
    return fields + [("number_input", w.key) for w in at.number_input]


def widgets_of(at, kind: str, key: str) -> list:
    if kind == "live_text":
        return [b for b in live_boxes(at) if b.label == key]
    return [w for w in getattr(at, kind) if w.key == key]


def choose_every_option(at, svc, before, where: str) -> None:
    """Each option of each keyed select box in turn, and the buttons it brings."""
    for key, options in [(w.key, len(w.options)) for w in at.selectbox
                         if w.key and not w.disabled]:
        for i in range(options):
            found = widgets_of(at, "selectbox", key)
            if not found or i >= len(found[0].options):  # the last choice left the page
                break
            found[0].select_index(i).run()
            DONE["select box options"] += 1
            label = f"{where}, {key} option {i + 1}"
            check(at, label)
            check_saved(svc, before, label)
            press_everything(at, svc, before, label)


def sweep_page(at, svc, before, where: str) -> None:
    for kind, key in inputs(at):
        for value in NUMBERS if kind == "number_input" else TEXTS:
            widgets = widgets_of(at, kind, key)
            if not widgets:  # the last press took the page elsewhere (a tab, a save)
                break
            widget = widgets[0]
            (widget.set_value(value) if kind == "number_input" else widget.input(value)).run()
            DONE[f"{kind} inputs"] += 1
            label = f"{where}, {key}={str(value)[:20]!r}"
            check(at, label)
            check_saved(svc, before, label)
            press_everything(at, svc, before, label)
    for key, good in EDITORS.items():
        if key not in at.session_state:
            continue
        for column in good:
            for value in TEXTS:
                for what, edit in (("cells", {"edited_rows": {0: {column: value}},
                                              "added_rows": []}),
                                   ("rows added", {"edited_rows": {},
                                                   "added_rows": [good | {column: value}]})):
                    at.session_state[key] = edit | {"deleted_rows": []}
                    at.run()
                    DONE[f"{key} {what}"] += 1
                    label = f"{where}, {key} {what} {column}={value[:20]!r}"
                    check(at, label)
                    check_saved(svc, before, label)
                    press_everything(at, svc, before, label)
    choose_every_option(at, svc, before, where)
    press_everything(at, svc, before, where)


@pytest.mark.parametrize("role", list(ROLES))
def test_sweep_every_page_every_input_every_button(app, small, monkeypatch, role):
    monkeypatch.setenv("TOKENBUDGET_ROLES", ",".join(f"{e}:{r}" for r, e in ROLES.items()))
    before = state(small)
    for page in PAGES[role]:
        at = app(small.store.path, f"app_pages/{page}.py", **signed_in(ROLES[role]))
        for i, tab in enumerate(TABS if page == "analytics" else [""]):
            if i:  # the first tab is open already
                open_tab(at, tab)
            sweep_page(at, small, before, f"{role} on {page} {tab}".strip())
    print(f"{role}, so far: " + ", ".join(f"{n} {what}" for what, n in sorted(DONE.items())))
    if role == "viewer":  # a viewer's presses and typing write nothing at all
        assert state(small) == before and small.audit() == []
