"""A suggestion for saving tokens, as a card: what it saves, the diff, an Apply button.
The diff is drawn only while its expander is open: a page of a dozen cards drew a
dozen highlighted diffs nobody had asked for, 0.4 s of the browser's time."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from budget.optimize import Suggestion


def suggestion_card(tip: Suggestion, key: str, apply: Callable[[], None],
                    disabled: bool = False) -> None:
    """One card per suggestion; a suggestion that only points at a costly attribute
    (no edits) has nothing to show or apply."""
    with st.container(border=True):
        st.markdown(f"**saves {tip.saves:,} tokens** · {tip.kind} · {tip.message}")
        if tip.edits:
            changes = st.expander("What changes", key=f"{key}_changes", on_change="rerun")
            if changes.open:
                changes.code(tip.diff(), language="diff")
            if st.button("Apply", key=key, disabled=disabled):
                apply()
