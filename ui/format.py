"""How the pages write a status and a client's usage."""

import streamlit as st

from budget import views
from budget.model import Usage


def status_badge(status: str) -> str:
    """A coloured badge in the app's status palette (ok, warning, exceeded)."""
    colour = {"ok": "green", "warning": "orange", "exceeded": "red"}[status]
    return f":{colour}-badge[{views.STATUS_LABELS[status]}]"


def usage_headline(usage: Usage) -> None:
    """The headline figure and a bar in the status colour, full at the budget
    (st.progress has one colour for every state, blue even over budget)."""
    st.subheader(views.headline(usage))
    fill = min(max(usage.percent_used, 0), 100)
    st.html(f"<div role='progressbar' aria-valuenow='{usage.percent_used}' aria-valuemin='0' "
            f"aria-valuemax='100' aria-label='Budget used' data-status='{usage.status}' "
            "style='height:0.6rem;border-radius:0.3rem;background:#e0e0e0;overflow:hidden'>"
            f"<div style='height:100%;width:{fill}%;"
            f"background:{views.STATUS_COLOURS[usage.status]}'></div></div>")
