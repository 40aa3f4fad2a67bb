"""A multi-line text box whose text reaches the server while the user types.

`st.text_area` sends its text only on Ctrl+Enter or when the box loses focus, so a
preview drawn from it lags behind the typing. This box (a `st.components.v2` component:
inline HTML, the CSS and JS beside this file, no build step) sends its text a moment
after the last keystroke, on leaving the box and on Ctrl+Enter; the page reruns and
draws its figures from the text, as typed. It keeps what a text area gives: a label tied
to the box, keyboard use, and a live character count against the length limit.

The component's state (`{"value": text}`, what the browser sends) lives in session
state under the box's key, so a test without a browser sets the text the same way.
The box shows the server's text when it is first drawn under a key: a page that wants
to put another text in the box (a draft rebased, "keep theirs") draws it under a new
key, so the text the browser still holds for the old key cannot come back."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import streamlit as st
from streamlit.logger import get_logger

log = get_logger(__name__)  # Streamlit's handler and level (`logger.level`, e.g. info)

DEBOUNCE_MS = 250  # the pause after the last keystroke before the text is sent
HEIGHT = 110  # pixels, the text area's height on the page before it was live

_HERE = Path(__file__).parent
_HTML = """
<div class="live-text">
  <label for="box"></label>
  <textarea id="box" spellcheck="true" aria-describedby="count"></textarea>
  <div id="count" class="figures" aria-live="polite">
    <span class="count"></span><span class="note"></span>
  </div>
</div>
"""
# declared once, at import: a component declared per rerun would be registered anew
_MOUNT = st.components.v2.component(
    "tokenbudget.live_text", html=_HTML, css=(_HERE / "live_text.css").read_text(),
    js=(_HERE / "live_text.js").read_text())


_ARRIVED = "live_text_arrived"


def _arrived() -> None:
    """Notes when a typed text reached the server (a state the Python side reads must
    have a change callback anyway), for `drawn` to say how long the page took."""
    st.session_state[_ARRIVED] = time.perf_counter()


def drawn(what: str) -> None:
    """Logs (at info) how long after a typed text arrived `what` was drawn from it: the
    server's share of the lag between the last keystroke and the figures."""
    arrived = st.session_state.pop(_ARRIVED, None)
    if arrived is not None:
        log.info("live text: %s drawn %.1f ms after the text arrived", what,
                 (time.perf_counter() - arrived) * 1000)


def typed(key: str) -> str | None:
    """The text in the box `key` as typed, or None while nothing was typed into it."""
    state = st.session_state.get(key)
    value = state.get("value") if isinstance(state, Mapping) else None
    return value if isinstance(value, str) else None


def live_text(label: str, key: str, value: str, *, limit: int, note: str = "",
              help: str = "") -> str:
    """The box `label` with `value` until something is typed; returns the text it holds.
    `limit` is the character count shown against it (the server refuses a longer
    text: the box does not cut it, so what was pasted is what is refused); `note` is
    the server's figure for the text it last received, shown next to that count."""
    text = typed(key)
    shown = value if text is None else text
    result = _MOUNT(key=key, default={"value": value}, on_value_change=_arrived,
                    data={"label": label, "key": key, "value": shown, "limit": limit,
                          "note": note, "help": help, "height": HEIGHT,
                          "debounce": DEBOUNCE_MS})
    out = result.get("value")
    return out if isinstance(out, str) else shown


def put(key: str, text: str) -> None:
    """Sets the text of the box `key`, before it is drawn under that key in a run."""
    st.session_state[key] = {"value": text}
