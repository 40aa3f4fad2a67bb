"""The fixtures every test module shares; plain helpers live in tests/support/."""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import date
from http.server import ThreadingHTTPServer

import pytest
from streamlit import config as streamlit_config

from budget import demo
from budget.model import Attribute, Client, Tier
from tests.support.airtable_server import FakeAirtable, standard_base
from tests.support.apptest import run_app
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium, streamlit_server
from tests.support.factories import (
    ADMIN,
    AIRTABLE_ON_POSTGRESQL,
    TODAY,
    AirtableFactory,
    PostgresFactory,
    SQLiteFactory,
    make_service,
    words,
)
from tests.support.model_server import FakeModel
from tests.support.postgres_server import PostgresServer, missing_reason
from tests.support.smtp_server import SmtpServer


def pytest_configure() -> None:
    """AppTest runs the app as `make run` serves it, on the loopback address (the project's
    .streamlit/config.toml), whatever folder a test has moved into before Streamlit first
    reads its options: without a login, only that address trusts its visitor as admin."""
    streamlit_config.get_option("server.address")  # the options parsed now, not later
    streamlit_config.set_option("server.address", "127.0.0.1")


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory):
    """The 40-client demo data set, built once; tests copy it."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    svc = make_service(path)
    svc.load_data_set(ADMIN, *demo.generate(svc.counter.count_many, today=TODAY))
    return path


def _copy(db, path):
    with sqlite3.connect(db) as src, sqlite3.connect(path) as dst:
        src.backup(dst)  # a file copy would miss what is still in the WAL
    return path


@pytest.fixture
def demo_copy(demo_db, tmp_path):
    return _copy(demo_db, tmp_path / "demo.db")


@pytest.fixture(scope="module")
def module_demo_copy(demo_db, tmp_path_factory):
    """A copy of the demo data that one module's tests write to (a browser suite's
    server runs over it for the whole module)."""
    return _copy(demo_db, tmp_path_factory.mktemp("module") / "demo.db")


@pytest.fixture
def airtable_server():
    server = FakeAirtable()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""
    server = SmtpServer()
    server.controller.start()
    yield server
    server.controller.stop()


@pytest.fixture
def store_factory(request, tmp_path):
    """Opens stores of one kind on one data set: SQLite by default; a module that
    runs against every store (tests/test_service.py) parametrises it with
    `pytest.mark.parametrize("store_factory", STORES, indirect=True)`, getting
    Airtable through pyairtable over real HTTP to tests/airtable_server.py too, and
    a fresh database of the test PostgreSQL server; "airtable+postgresql" (in
    STORES_AND_SIDECARS) is the loopback base with its sidecar in such a database."""
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        yield SQLiteFactory(tmp_path / "small.db")
        return
    if kind == "postgresql":
        factory = PostgresFactory(request.getfixturevalue("postgres_databases")())
        yield factory
        factory.close()
        return
    sidecar = (request.getfixturevalue("postgres_databases")()
               if kind == AIRTABLE_ON_POSTGRESQL else tmp_path / "sidecar.db")
    server = standard_base(FakeAirtable(), id_fields=True)
    server.start()
    factory = AirtableFactory(server, sidecar, kind)
    yield factory
    factory.close()
    server.stop()


@pytest.fixture
def small(store_factory):
    """Two clients with hand-made texts: the arithmetic is easy to follow."""
    svc = store_factory.service()
    tiers = [Tier(1, "Basic", 100), Tier(2, "Professional", 200)]
    clients = [Client("A", "Alpha", 1, budget_reset_date=date(2026, 12, 1)),
               Client("B", "Beta", 2, budget_reset_date=date(2026, 12, 10))]
    attrs = [Attribute("a1", "A", "Size", True, words(40), "", ""),
             Attribute("a2", "A", "Industry", True, words(30), words(10), ""),
             Attribute("a3", "A", "Intent", False, words(25), "", ""),
             Attribute("b1", "B", "Size", True, words(150), "", "")]
    svc.load_data_set(ADMIN, tiers, clients, attrs)
    return svc


@pytest.fixture
def app(monkeypatch):
    """An AppTest factory on a given store file, with caches cleared between tests."""
    import streamlit as st

    def make(path, page=None, **params):
        monkeypatch.setenv("TOKENBUDGET_STORE", f"sqlite:///{path}")
        st.cache_data.clear()
        st.cache_resource.clear()
        at = run_app(page, **params)
        assert not at.exception, at.exception
        return at
    return make



@pytest.fixture(scope="module")
def browser():
    """One headless Debian Chromium per module."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def model_server():
    FakeModel.reset()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeModel)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def postgres_databases():
    """A PostgreSQL server for the session (Debian's package, as an unprivileged user);
    yields a factory of fresh databases, one per test that asks. Without the package
    the tests skip here and fail in CI, where .ci/run installs it."""
    reason = missing_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    server = PostgresServer()
    server.start()
    yield server.create_database
    server.stop()


@pytest.fixture(scope="module")
def server(demo_db, tmp_path_factory):
    """`streamlit run` over the demo data, one per browser test module (a module with
    data of its own defines its own)."""
    require_chromium()
    with streamlit_server(demo_db, tmp_path_factory.mktemp("streamlit")) as url:
        yield url


@pytest.fixture(scope="module")
def svc(demo_db):
    """The service on the demo data: what the pages must show."""
    return make_service(demo_db)
