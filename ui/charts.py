"""Charts and their CSVs drawn one way on every page: the app's status palette, axis
titles with units, thousands separators (12,000, not 12k), a download of each table."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from budget import views

COLOURS = views.STATUS_COLOURS  # the app's one status palette
DIRECTION_COLOURS = {"over-counted": "#1565c0", "under-counted": COLOURS["warning"],
                     "exact": COLOURS["ok"]}
LABELS = {  # hover and legend names for the frames' columns
    "tokens": "Tokens", "client": "Client", "tier": "Tier", "attribute": "Attribute",
    "instructions": "Instructions (tokens)", "examples": "Examples (tokens)",
    "signals": "Signals (tokens)", "usage": "Usage (tokens)", "budget": "Budget (tokens)",
    "percent_used": "Budget used (%)", "tokens_per_day": "Trend (tokens/day)",
    "trend": "At this trend", "headroom": "Headroom (tokens)", "at": "Time (UTC)",
    "clients": "Clients with history", "chars4": "chars4 estimate", "error": "Difference",
    "error_percent": "Difference (%)", "tokens_per_lead": "Tokens per lead",
    "leads_per_month": "Leads per month", "monthly_tokens": "Tokens per month",
    "monthly_cost": "Cost per month", "monthly_revenue": "Revenue per month",
    "cost_percent_of_revenue": "Cost / revenue (%)",
    "tokens_per_revenue_unit": "Tokens per unit of revenue", "saves": "Tokens saved",
    "percent_saved": "Share of usage (%)", "kind": "Fix", "status": "Status",
    "direction": "chars4 was"}
# lines of several clients: no red, orange or green, which mean a status here
SERIES = ["#1565c0", "#6a1b9a", "#00838f", "#5d4037", "#ad1457", "#283593", "#00695c",
          "#455a64", "#8e24aa", "#0277bd"]


def chart(fig, key: str, x_title: str, y_title: str, height: int | None = None,
          x_is_time: bool = False) -> None:
    """A plotly figure with axis titles, separators and hover set the same way."""
    fig.update_layout(hovermode="closest", legend_title_text="", margin={"t": 60},
                      **({"height": height} if height else {}))
    fig.update_xaxes(title_text=x_title, separatethousands=True,
                     **({} if x_is_time else {"tickformat": ","}))
    fig.update_yaxes(title_text=y_title, separatethousands=True, tickformat=",")
    st.plotly_chart(fig, key=key, width="stretch")


def csv_download(frame: pd.DataFrame, name: str) -> None:
    """The table behind a chart as `name`.csv."""
    st.download_button(f"Download {name}.csv", frame.to_csv(index=False),
                       file_name=f"{name}.csv", mime="text/csv", icon="⬇️", key=f"csv_{name}")
