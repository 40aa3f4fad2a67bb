"""Who is using the app and the service they act through, cached once per process."""

from __future__ import annotations

import streamlit as st

from budget.model import Actor
from budget.service import BudgetService
from budget.settings import Settings


@st.cache_resource
def service() -> BudgetService:
    """One service (and its store's connections) shared by every session."""
    return BudgetService.from_settings(Settings.load())


def auth_configured() -> bool:
    """Login is on when secrets have an `[auth]` section (OIDC); otherwise local mode."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False


def actor() -> Actor:
    """Who is using the app. With `[auth]` in secrets: the OIDC login's email and the
    role settings give it (unknown emails are viewers); nobody signed in sees the login
    screen only. Without: local mode, one admin on this machine (the server binds to
    127.0.0.1)."""
    if not auth_configured():
        return Actor("local admin", "admin")
    if not st.user.is_logged_in:
        st.title("Token budgets")
        st.button("Log in", on_click=st.login, key="login", type="primary")
        st.stop()
    email = str(st.user.get("email", "")).lower()
    return Actor(email, service().settings.roles.get(email, "viewer"))
