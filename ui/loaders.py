"""Cached loaders: every figure a page shows is read through one of these.

Each is keyed on the store's data version, so figures are reused until the data changes,
wherever it was changed from; while the store cannot be reached, the last figures are
shown marked stale under a banner."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, UTC
from typing import TypeVar

import pandas as pd
import streamlit as st

from budget import analytics, automation, optimize, views
from budget.model import Attribute, AttributeCost
from budget.optimize import Suggestion
from budget.stores import StoreError
from ui import session

T = TypeVar("T")


def data_version() -> str:
    """What cached figures are keyed on: the store's data version, so a change made
    anywhere (another session, the CLI) shows on the next run and nothing is reloaded
    until then; for a store without one (Airtable), the current five-minute window."""
    return session.service().data_version() or f"window {int(time.time() // 300)}"


def refresh(sync: bool = False) -> None:
    """Forget every cached figure; called after each write and by the Refresh button,
    which also (`sync`) has the store's copy of its source (the Airtable mirror) brought
    in step at the top of the next run."""
    st.cache_data.clear()
    costs.clear()
    if sync:
        st.session_state["_sync_store"] = True


def _sync_if_asked() -> None:
    """The sync Refresh asked for; a failure is a banner, the mirror's figures shown."""
    if not st.session_state.pop("_sync_store", False):
        return
    try:
        session.service().sync_store()
    except StoreError as e:
        banner(f"{e}. The figures are the mirror's, which may be stale. "
               "Press Refresh to try again.")


def banner(message: str) -> None:
    """An error above the page, once per run however many loaders hit it; a store's
    words may quote a secret, so every secret the settings hold is hidden."""
    message = session.service().redacted(message)
    shown = st.session_state.setdefault("_banners_shown", set())
    if message not in shown:
        shown.add(message)
        st.error(message, icon="🚫")


@st.cache_resource
def _last_good() -> dict[tuple, tuple]:
    """The last figures each loader produced, per process: what the pages keep
    showing, marked stale, while the store (Airtable) cannot be reached."""
    return {}


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


@st.cache_data(ttl=300, max_entries=4, show_spinner="Loading usage…")
def _usage_table(version: str) -> tuple[pd.DataFrame, float, tuple[str, ...]]:
    svc = session.service()
    frame = views.usage_frame(svc.usage_report(), svc.tiers())
    return frame, time.time(), tuple(svc.store_warnings)


def _skipped(warnings: tuple[str, ...]) -> None:
    if warnings:
        with st.expander(f"⚠️ {len(warnings):,} record(s) skipped: they could not be read"):
            st.markdown("\n".join(f"- {w}" for w in warnings))


def begin_run(every_client: bool = True) -> None:
    """Called by app.py at the top of every run, in the main area: loads what the page
    reads first there, so a store failure's banner and the list of records the store had
    to skip (each naming its record and field) land above the page, not in the sidebar.
    That is every client's usage, or (`every_client` False: the Client page, which shows
    one client's) the list of clients alone, so that a run after a save there does not
    sum every client's usage again (0.16 s of a 0.3 s run at 100,000 attributes)."""
    st.session_state["_banners_shown"] = set()
    _sync_if_asked()
    _, at, skipped = _usage() if every_client else _clients()
    st.session_state["_loaded_at"] = at
    _skipped(skipped)


def _usage() -> tuple[pd.DataFrame, float, tuple[str, ...]]:
    return _fresh_or_last(("usage",), lambda: _usage_table(data_version()))


def usage_table() -> tuple[pd.DataFrame, float]:
    """(every client's usage, when it was loaded)."""
    frame, at, _ = _usage()
    return frame, at


@st.cache_data(ttl=300, max_entries=4, show_spinner=False)
def _client_list(version: str) -> tuple[dict[str, str], float, tuple[str, ...]]:
    svc = session.service()
    labels = {cid: views.client_label(cid, name) for cid, name in svc.client_names()}
    return labels, time.time(), tuple(svc.store_warnings)


def _clients() -> tuple[dict[str, str], float, tuple[str, ...]]:
    return _fresh_or_last(("clients",), lambda: _client_list(data_version()))


def client_labels() -> dict[str, str]:
    """Every client's id and its label, "Name (id)", in name order."""
    return _clients()[0]


def freshness() -> str:
    """When the figures on screen were loaded (those begin_run loaded), for the sidebar."""
    loaded = datetime.fromtimestamp(st.session_state["_loaded_at"], UTC)
    minutes = max(0, int((datetime.now(UTC) - loaded).total_seconds() // 60))
    return f"Data loaded {loaded:%H:%M:%S} UTC ({minutes} min ago)"


def mirror_freshness() -> str | None:
    """When the store's copy of Airtable last matched it, for the sidebar; None for a
    store with no such copy."""
    matched = session.service().store_matched_at()
    return f"Airtable mirror last matched at {matched:%H:%M:%S} UTC" if matched else None


@st.cache_data(ttl=300, max_entries=64, show_spinner=False)
def _client_detail(client_id: str, version: str):
    svc = session.service()
    return svc.client_usage(client_id), svc.attributes(client_id), svc.costs(client_id)


def client_detail(client_id: str):
    """(usage, attributes, costs) of one client."""
    return _fresh_or_last(("client", client_id),
                          lambda: _client_detail(client_id, data_version()))


@st.cache_resource(ttl=300, max_entries=8, show_spinner="Counting tokens…")
def costs(version: str, encoding: str | None = None) -> tuple[AttributeCost, ...]:
    """Every attribute's tokens by field, under the current encoding or `encoding`.
    Held once per process and handed out as it is, an immutable tuple of frozen
    records: a copy per run, as st.cache_data makes by unpickling, took 1.1 s of each
    Analytics run at 100,000 attributes."""
    return tuple(session.service().costs(encoding=encoding))


@st.cache_data(ttl=300, max_entries=4, show_spinner=False)
def history(version: str):
    """Every client's usage snapshots."""
    return session.service().history()


@st.cache_data(ttl=300, max_entries=4, show_spinner="Looking for savings…")
def savings(version: str) -> tuple[list[tuple[str, Suggestion]], dict[str, int]]:
    """(every client's suggestions, each client's all-fixes-together one first; attribute
    versions as loaded, so an Apply is based on what the user saw)."""
    svc = session.service()
    by_client: dict[str, list[Attribute]] = {}
    for a in svc.all_attributes():
        by_client.setdefault(a.client_id, []).append(a)
    count = svc.counter.count_many
    tips = [(cid, t) for cid, attrs in by_client.items()
            for t in [optimize.tidy_all(attrs, count), *optimize.suggest(attrs, count)]
            if t is not None and t.edits]
    versions = {a.id: a.version for attrs in by_client.values() for a in attrs}
    return tips, versions


@st.cache_data(ttl=300, max_entries=4, show_spinner="Finding copies of the same template…")
def templates(version: str):
    """(groups of similar attributes, every attribute by id) as of data `version`."""
    attrs = session.service().all_attributes()
    return analytics.similar_groups(attrs), {a.id: a for a in attrs}


@st.cache_data(ttl=60, show_spinner="Checking what is due…")
def due_plan(version: str) -> automation.Plan:
    """What the scheduled pass would do now. Cached like the other figures (every write
    clears it), for a minute at most since time alone makes resets due: on Airtable a
    plan costs requests, and its page reruns on every click."""
    return session.service().plan_due()


@st.cache_data(ttl=300, max_entries=16, show_spinner="Counting tokens…")
def top_costs(version: str, n: int, client_ids: tuple[str, ...] | None) -> list[AttributeCost]:
    """The attributes that can make the `n` that cost the most, of `client_ids`' clients
    (None: everyone's): the few rows the store chooses, where loading every attribute's
    costs to keep 20 of them took a second at 100,000 attributes."""
    return session.service().top_costs(n, client_ids)
