"""The confirmation dialog every irreversible or wide action goes through.

A button only asks (`ask`); the dialog is drawn from a session-state flag on every run
until the user confirms or cancels, so its buttons work in the browser and in AppTest
alike (a dialog opened by `if st.button(...)` loses its own buttons' clicks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st


def ask(name: str, subject: Any = True) -> None:
    """Opens the dialog `name` about `subject` (what the action will act on)."""
    st.session_state[f"confirm_{name}"] = subject


def confirm(name: str, title: str, action: str, describe: Callable[[Any], None],
            act: Callable[[Any], None]) -> None:
    """While `name` is asked: a dialog `title` that `describe`s what will happen to the
    subject, then runs `act` on it when `action` is pressed, or closes on Cancel.
    Buttons are keyed `{name}_confirm` and `{name}_cancel`."""
    flag = f"confirm_{name}"
    if flag not in st.session_state:
        return
    subject = st.session_state[flag]

    @st.dialog(title)
    def dialog() -> None:
        describe(subject)
        c1, c2 = st.columns(2)
        if c1.button(action, type="primary", key=f"{name}_confirm"):
            del st.session_state[flag]
            act(subject)
        if c2.button("Cancel", key=f"{name}_cancel"):
            del st.session_state[flag]
            st.rerun()

    dialog()
