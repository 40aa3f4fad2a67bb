"""The sweep: every page a role may open, as viewer, analyst and admin; the bad inputs
typed into every text and number field; every enabled button pressed (dialogs
included). No run may end in an exception box or a traceback, and nothing may be
saved but what was typed: every text or figure in the store afterwards is either what
it was or exactly one of the inputs.

AppTest, not a browser: the same scripts run, some thousand runs in about a minute."""

from __future__ import annotations

import pytest

from tests.support.apptest import TABS, open_tab, signed_in, text_of

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
# edit is set as the browser sends it)
EDITORS = {"tiers_editor": ["level", "name", "tokens"]}
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
    typed = set(TEXTS) | {int(t) for t in TEXTS if t.isdigit()}
    for key, value in state(svc).items():
        if key not in before or value == before[key]:
            continue
        _, field = key
        if field in ("active", "service_level") or (field in ("token_budget", "topup")
                                                    and value in (None, 0)):
            continue
        assert value in typed, f"{where}: {key} became {str(value)[:80]!r}, which nobody typed"


PRESSES = [0]  # buttons pressed in this run of the sweep, for the figure it prints


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
            PRESSES[0] += 1
            check(at, f"{where}, button {b.key}")
            check_saved(svc, before, f"{where}, button {b.key}")


def inputs(at) -> list[tuple[str, str]]:
    fields = [("text_input", w.key) for w in at.text_input]
    fields += [("text_area", w.key) for w in at.text_area if not w.disabled]
    return fields + [("number_input", w.key) for w in at.number_input]


def sweep_page(at, svc, before, where: str) -> int:
    runs = 0
    for kind, key in inputs(at):
        for value in NUMBERS if kind == "number_input" else TEXTS:
            widgets = [w for w in getattr(at, kind) if w.key == key]
            if not widgets:  # the last press took the page elsewhere (a tab, a save)
                break
            widget = widgets[0]
            (widget.set_value(value) if kind == "number_input" else widget.input(value)).run()
            runs += 1
            label = f"{where}, {key}={str(value)[:20]!r}"
            check(at, label)
            check_saved(svc, before, label)
            press_everything(at, svc, before, label)
    for key, columns in EDITORS.items():
        if key not in at.session_state:
            continue
        for column in columns:
            for value in TEXTS:
                at.session_state[key] = {"edited_rows": {0: {column: value}},
                                         "added_rows": [], "deleted_rows": []}
                at.run()
                runs += 1
                label = f"{where}, {key} row 1 {column}={value[:20]!r}"
                check(at, label)
                press_everything(at, svc, before, label)
    press_everything(at, svc, before, where)
    return runs


@pytest.mark.parametrize("role", list(ROLES))
def test_sweep_every_page_every_input_every_button(app, small, monkeypatch, role):
    monkeypatch.setenv("TOKENBUDGET_ROLES", ",".join(f"{e}:{r}" for r, e in ROLES.items()))
    before = state(small)
    runs = 0
    for page in PAGES[role]:
        at = app(small.store.path, f"app_pages/{page}.py", **signed_in(ROLES[role]))
        for i, tab in enumerate(TABS if page == "analytics" else [""]):
            if i:  # the first tab is open already
                open_tab(at, tab)
            runs += sweep_page(at, small, before, f"{role} on {page} {tab}".strip())
    print(f"{role}: {runs} typed inputs, {PRESSES[0]} button presses so far")
    if role == "viewer":  # a viewer's presses and typing write nothing at all
        assert state(small) == before and small.audit() == []
