"""Who is using the app and the service they act through, cached once per process.

Without a login nobody is identified, so the visitor is trusted only when nobody but
this machine can connect: a server listening on a loopback address gives its visitor
the local admin; on any other address (0.0.0.0, unset, a network address) every
visitor is a viewer, and the app says why."""

from __future__ import annotations

import ipaddress
import os
import sys
import threading

import streamlit as st
from streamlit.logger import get_logger

from budget.model import Actor
from budget.service import BudgetService
from budget.settings import Settings

log = get_logger(__name__)


@st.cache_resource
def service() -> BudgetService:
    """One service (and its store's connections) shared by every session."""
    return BudgetService.from_settings(Settings.load())


@st.cache_resource
def load_tokenizer_ahead() -> threading.Thread:
    """Loads the tokenizer in the background, once per process, for the pages with an
    editor, which call it after drawing: pages show stored counts, so the first thing
    to need it is a user's first keystroke there, whose preview waited 0.7 s for it.
    Not at the app's first run, where it took the CPU from the first page drawn; and
    at the lowest CPU priority (see `_yield_cpu`)."""
    loading = threading.Thread(target=_load_tokenizer, args=(service(),), name="tokenizer",
                               daemon=True)
    loading.start()
    return loading


def _yield_cpu() -> None:
    """Puts the calling thread at the lowest CPU priority (nice 19): a head start may
    not take the CPU from drawing pages, other sessions' runs or, in the benchmark, the
    browser. Measured at 2,000 x 50 in Chromium, the Client page's first visit took
    about a tenth less (6 rounds each). Linux sets a thread's own priority by its id;
    elsewhere that id would name a process, so nothing changes there."""
    if sys.platform.startswith("linux"):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def _load_tokenizer(svc: BudgetService) -> None:
    _yield_cpu()
    try:
        svc.load_tokenizer()
    except Exception as e:  # noqa: BLE001 - a head start only: the first count loads it again
        log.info("tokenizer not loaded ahead: %s", svc.redacted(e))


def auth_configured() -> bool:
    """Login is on when secrets have an `[auth]` section (OIDC); otherwise local mode."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False


def listen_address() -> str:
    """Where this server accepts connections: Streamlit's `server.address` option
    (`--server.address`, .streamlit/config.toml); "" when unset, i.e. every interface."""
    return str(st.get_option("server.address") or "")


def loopback_only(address: str) -> bool:
    """Whether a server listening on `address` can be reached from this machine only."""
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:  # "" (every interface) or a host name
        return False


def address_label(address: str) -> str:
    """The listening address as a person should read it."""
    if not address:
        return "every network interface (server.address is not set)"
    try:
        every = ipaddress.ip_address(address).is_unspecified  # 0.0.0.0 or ::
    except ValueError:  # a host name
        every = False
    return f"{address} (every network interface)" if every else address


def read_only_reason() -> str | None:
    """Why this visitor may only read although no login is configured: the server can
    be reached from elsewhere, so "local" would mean anyone. None when it cannot, or
    when a login identifies people."""
    address = listen_address()
    if auth_configured() or loopback_only(address):
        return None
    return (f"Read-only: no login is configured and this server listens on "
            f"{address_label(address)}, so anyone who can reach it would be an admin. "
            "To change data, configure a login (an [auth] section in "
            ".streamlit/secrets.toml, and TOKENBUDGET_ROLES for who is an analyst or an "
            "admin), or serve on 127.0.0.1 only (server.address).")


def local_mode_caption(me: Actor) -> str:
    """The sidebar's line for a visitor without a login, with the address it really has."""
    address = listen_address()
    if loopback_only(address):
        return (f"**Local mode**: no login configured, you are the local **{me.role}**; "
                f"the server listens on {address} only")
    return (f"**Read-only**: no login configured and the server listens on "
            f"{address_label(address)}")


def actor() -> Actor:
    """Who is using the app. With `[auth]` in secrets: the OIDC login's email and the
    role settings give it (unknown emails are viewers); nobody signed in sees the login
    screen only. Without: the local admin when the server listens on loopback only,
    else a viewer (see `read_only_reason`)."""
    if not auth_configured():
        if loopback_only(listen_address()):
            return Actor("local admin", "admin")
        return Actor("visitor", "viewer")
    if not st.user.is_logged_in:
        st.title("Token budgets")
        st.button("Log in", on_click=st.login, key="login", type="primary")
        st.stop()
    email = str(st.user.get("email", "")).lower()
    return Actor(email, service().settings.roles.get(email, "viewer"))
