"""Streamlit glue shared by the pages: the cached service, loaders and the actor."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TypeVar

import pandas as pd
import streamlit as st

from budget import views
from budget.model import Actor, BadInput, NotAllowed, StaleWrite
from budget.service import BudgetService
from budget.settings import Settings
from budget.stores import PartialWrite, StoreError

T = TypeVar("T")


@st.cache_resource
def service() -> BudgetService:
    return BudgetService.from_settings(Settings.load())


def auth_configured() -> bool:
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False


def actor() -> Actor:
    """Who is using the app. With `[auth]` in secrets: the OIDC login's email and the
    role settings give it (unknown emails are viewers). Without: local mode, one admin
    on this machine (the server binds to 127.0.0.1)."""
    if not auth_configured():
        return Actor("local admin", "admin")
    if not st.user.is_logged_in:
        st.title("Token budgets")
        st.button("Log in", on_click=st.login, key="login", type="primary")
        st.stop()
    email = str(st.user.get("email", "")).lower()
    return Actor(email, service().settings.roles.get(email, "viewer"))


def after_write(message: str) -> None:
    """Every successful write: forget cached figures, say what happened, redraw."""
    refresh()
    st.toast(message, icon="✅")
    st.rerun()


def data_version() -> str:
    """What cached figures are keyed on: the store's data version, so a change made
    anywhere (another session, the CLI) shows on the next run and nothing is reloaded
    until then; for a store without one (Airtable), the current five-minute window."""
    return service().data_version() or f"window {int(time.time() // 300)}"


@st.cache_data(ttl=300, max_entries=4, show_spinner="Loading usage…")
def _usage_table(version: str) -> tuple[pd.DataFrame, float, tuple[str, ...]]:
    svc = service()
    frame = views.usage_frame(svc.usage_report(), svc.tiers())
    return frame, time.time(), tuple(svc.store_warnings)


@st.cache_resource
def _last_good() -> dict[tuple, tuple]:
    """The last figures each loader produced, per process: what the pages keep
    showing, marked stale, while the store (Airtable) cannot be reached."""
    return {}


def begin_run() -> None:
    """Called by app.py at the top of every run, in the main area: loads the usage
    table there, so a store failure's banner and the list of records the store had to
    skip (each naming its record and field) land above the page, not in the sidebar."""
    st.session_state["_banners_shown"] = set()
    skipped = _fresh_or_last(("usage",), lambda: _usage_table(data_version()))[2]
    if skipped:
        with st.expander(f"⚠️ {len(skipped):,} record(s) skipped: they could not be read"):
            st.markdown("\n".join(f"- {w}" for w in skipped))


def banner(message: str) -> None:
    """An error above the page, once per run however many loaders hit it."""
    shown = st.session_state.setdefault("_banners_shown", set())
    if message not in shown:
        shown.add(message)
        st.error(message, icon="🚫")


def _fresh_or_last(key: tuple, load: Callable[[], T]) -> T:
    try:
        value = load()
    except StoreError as e:
        if key not in _last_good():
            banner(f"{e}. Press Refresh to try again.")
            st.stop()
        value, at = _last_good()[key]
        minutes = int((time.time() - at) // 60)
        banner(f"{e}. Showing the data loaded {minutes} min ago: it may be stale. "
               "Press Refresh to try again.")
        return value
    _last_good()[key] = (value, time.time())
    return value


def usage_table() -> tuple[pd.DataFrame, float]:
    """(every client's usage, when it was loaded)."""
    frame, at, _ = _fresh_or_last(("usage",), lambda: _usage_table(data_version()))
    return frame, at


def loaded_at() -> datetime:
    return datetime.fromtimestamp(usage_table()[1], timezone.utc)


def refresh() -> None:
    """Forget every cached figure; called after each write and by the Refresh button."""
    st.cache_data.clear()


def status_badge(status: str) -> str:
    colour = {"ok": "green", "warning": "orange", "exceeded": "red"}[status]
    return f":{colour}-badge[{views.STATUS_LABELS[status]}]"


@st.cache_data(ttl=300, max_entries=64, show_spinner=False)
def _client_detail(client_id: str, version: str):
    svc = service()
    return svc.client_usage(client_id), svc.attributes(client_id), svc.costs(client_id)


def client_detail(client_id: str):
    """(usage, attributes, costs) of one client."""
    return _fresh_or_last(("client", client_id),
                          lambda: _client_detail(client_id, data_version()))


def attempt(action: Callable[[], T]) -> T | None:
    """Runs a service write; shows a refusal as a message instead of a traceback."""
    try:
        return action()
    except (BadInput, NotAllowed) as e:
        st.error(str(e), icon="⛔")
    except PartialWrite as e:
        refresh()
        st.error(f"Only part of the change was saved: {e}", icon="🚫")
    except StoreError as e:
        st.error(f"The change was not saved: {e}", icon="🚫")
    except StaleWrite as e:
        refresh()
        st.error(f"{e}: someone else changed it. The page now shows the latest data; "
                 "make your change again.", icon="🔄")
    return None


def seen_version(key: str, current: int) -> int:
    """The version of a record as the user saw it on the previous run, which is what a
    click is based on; a write with it is refused if the record changed since."""
    seen = st.session_state.setdefault("_seen_versions", {})
    before = seen.get(key, current)
    seen[key] = current
    return before
