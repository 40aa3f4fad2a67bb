"""Choice widgets whose option labels carry figures that a save moves.

A select box or multiselect sends back the labels it shows, not the options behind
them. The Client page labels an attribute with its state and tokens: after a save
moved them, the browser kept showing the old label and sent it back on the next
press, which no option had any more, so the page got a label where it expected an
attribute id (a KeyError, shown as a traceback)."""

from __future__ import annotations

from collections.abc import Collection

import streamlit as st


def show_current_labels(key: str, options: Collection[str]) -> None:
    """Before the widget `key` is drawn: its picks set again from the script, by option,
    so the browser draws them with this run's labels; a pick no option has is dropped."""
    if key not in st.session_state:
        return
    value = st.session_state[key]
    if isinstance(value, list):
        st.session_state[key] = [v for v in value if v in options]
    elif value in options:
        st.session_state[key] = value
    else:
        del st.session_state[key]
