"""Choice widgets whose option labels carry figures that a save moves.

A select box or multiselect sends back the labels it shows, not the options behind
them. The Client page labels an attribute with its state and tokens: after a save
moved them, the browser kept showing the old label and sent it back on the next
press, which no option had any more, so the page got a label where it expected an
attribute id (a KeyError, shown as a traceback)."""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st


def show_current_labels(key: str, labels: Mapping[str, str]) -> None:
    """Before the widget `key` over the options `labels` (option: label) is drawn: when
    the label of a pick changed since the run before, its picks are set again from the
    script, so the browser draws them with this run's labels (a pick no option has any
    more is dropped then). Set on every run instead, or when a pick's option is gone
    (another client chosen), the text boxes drawn after it lost what was typed."""
    drawn = f"_labels_{key}"
    before: dict[str, str] = st.session_state.get(drawn, {})
    value = st.session_state.get(key)
    picks = value if isinstance(value, list) else [] if value is None else [value]
    kept = [v for v in picks if v in labels]
    st.session_state[drawn] = {v: labels[v] for v in kept}
    if not kept or all(before.get(v, labels[v]) == labels[v] for v in kept):
        return  # a pick of another client's options is the widget's to reset, as before
    st.session_state[key] = kept if isinstance(value, list) else kept[0]
