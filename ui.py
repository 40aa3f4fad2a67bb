"""Streamlit glue shared by the pages: the cached service, loaders and the actor."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from budget import views
from budget.model import Actor
from budget.service import BudgetService
from budget.settings import Settings


@st.cache_resource
def service() -> BudgetService:
    return BudgetService.from_settings(Settings.load())


def actor() -> Actor:
    """Local mode: one admin on this machine (login arrives with the admin issue)."""
    return Actor("local admin", "admin")


@st.cache_data(ttl=300, show_spinner="Loading usage…")
def usage_table() -> tuple[pd.DataFrame, float]:
    svc = service()
    return views.usage_frame(svc.usage_report(), svc.tiers()), time.time()


def loaded_at() -> datetime:
    return datetime.fromtimestamp(usage_table()[1], timezone.utc)


def refresh() -> None:
    """Forget every cached figure; called after each write and by the Refresh button."""
    st.cache_data.clear()


def status_badge(status: str) -> str:
    colour = {"ok": "green", "warning": "orange", "exceeded": "red"}[status]
    return f":{colour}-badge[{views.STATUS_LABELS[status]}]"


@st.cache_data(ttl=300, show_spinner=False)
def client_detail(client_id: str):
    """(usage, attributes, costs) of one client."""
    svc = service()
    return svc.client_usage(client_id), svc.attributes(client_id), svc.costs(client_id)
