"""Writes from a page: run through the service, a refusal shown as a message, the
figures refreshed after a success."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from budget.model import Actor, BadInput, Change, NotAllowed, StaleWrite
from budget.stores import PartialWrite, StoreError
from ui import session
from ui.loaders import refresh

T = TypeVar("T")


NOTICE = "_last_write"


def after_write(message: str, rerun: bool = True) -> None:
    """Every successful write: forget cached figures, redraw, and say what happened at
    the top of the redrawn page (`last_write`). Without `rerun`, the caller is the
    callback of a button in a fragment that draws every figure the write moves and the
    notice, so that fragment's run, which the press starts anyway, is the redraw."""
    refresh()
    st.session_state[NOTICE] = message
    if rerun:
        st.rerun()


def last_write() -> None:
    """What the last write did, above the page, until the next click: one message that
    stays to be read and that the next write replaces, not toasts that vanish in seconds
    and pile up when several saves follow each other."""
    slot = st.container()  # always there, so nothing below moves (a tab stays open)
    message = st.session_state.pop(NOTICE, None)
    if message:
        slot.success(message, icon="✅")


Say = Callable[[str, str], object]  # (message, icon): how a refusal is shown


def _show(message: str, icon: str) -> None:
    st.error(message, icon=icon)


def attempt(action: Callable[[], T], say: Say = _show) -> T | None:
    """Runs a service write; shows a refusal as a message instead of a traceback."""
    said = session.service().redacted  # a store's or a server's words may quote a secret
    try:
        return action()
    except (BadInput, NotAllowed) as e:
        say(said(e), "⛔")
    except PartialWrite as e:
        refresh()
        say(f"Only part of the change was saved: {said(e)}", "🚫")
    except StoreError as e:
        say(f"The change was not saved: {said(e)}", "🚫")
    except StaleWrite as e:
        refresh()
        say(f"{said(e)}: someone else changed it. The page now shows the latest data; "
            "make your change again.", "🔄")
    return None


def apply_change(me: Actor, change: Change, versions: dict[str, int], done: str,
                 forget: str | None = None, action: str | None = None,
                 say: Say = _show, rerun: bool = True) -> None:
    """Saves an attribute change (an edit, a bulk switch, an applied suggestion) if the
    budget allows it, based on the `versions` the user saw; on success says `done` with
    the client's usage before and after and drops the session key `forget` (what
    offered the change). `action` names the audit entry when the kind of change is
    not told by the change itself (an applied suggestion); `rerun` as `after_write`."""
    result = attempt(lambda: session.service().apply(me, change, versions, action=action),
                     say)
    if result is None:
        return
    if not result.allowed:
        say(f"Refused: {result.reason}", "⛔")
        return
    if forget:
        st.session_state.pop(forget, None)
    after_write(f"{done}: usage {result.current:,} → {result.projected:,} of "
                f"{result.budget:,} tokens", rerun)


def _refused(key: str) -> str:
    return f"_refused_{key}"


# what a press saves: (change, versions it is based on, what to say), or None for nothing
Pressed = Callable[[], tuple[Change, dict[str, int], str] | None]


def change_on_click(slot: str, me: Actor, pressed: Pressed,
                    forget: str | None = None) -> Callable[[], None]:
    """`apply_change` as the on_click of a button in a fragment that draws every figure
    the write moves and the notice (`last_write`): the write runs before the fragment
    does, so the one run the press starts draws the result. Rerunning the whole page
    from the callback instead, the browser drew the fragment's run, then the page's.
    `pressed` reads the change from the widgets when the button is pressed, so text
    that reached the server with the press is what is saved. A callback may not draw:
    a refusal is kept for `refusals(slot)` to show."""
    def kept(message: str, icon: str) -> None:
        st.session_state.setdefault(_refused(slot), []).append((message, icon))

    def click() -> None:
        if (what := pressed()) is not None:
            apply_change(me, *what, forget, say=kept, rerun=False)

    return click


def refusals(slot: str) -> None:
    """What a press was refused with (see `change_on_click`), where the page puts it."""
    for message, icon in st.session_state.pop(_refused(slot), []):
        _show(message, icon)


def seen_version(key: str, current: int) -> int:
    """The version of a record as the user saw it on the previous run, which is what a
    click is based on; a write with it is refused if the record changed since."""
    seen = st.session_state.setdefault("_seen_versions", {})
    before = seen.get(key, current)
    seen[key] = current
    return before
