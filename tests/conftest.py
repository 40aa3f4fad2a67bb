from __future__ import annotations

import sqlite3
from datetime import date, datetime, timezone

import pytest

from budget import demo
from budget.model import Actor, Attribute, Client, Tier
from budget.service import BudgetService
from budget.settings import Settings
from budget.stores import SQLiteStore
from budget.stores.airtable import AirtableConfig, AirtableStore
from tests.airtable_server import API_KEY, BASE_ID, FakeAirtable, standard_base

TODAY = date(2026, 11, 25)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
ADMIN = Actor("alice", "admin")


def words(n: int) -> str:
    """Text of exactly n o200k_base tokens."""
    return " ".join(["lead"] * n)


class Clock:
    """A settable clock, so period arithmetic is tested at fixed times."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_service(path, clock=None, **settings) -> BudgetService:
    return BudgetService(SQLiteStore(str(path)), Settings(store=f"sqlite:///{path}", **settings),
                         clock or Clock())


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory):
    """The 40-client demo data set, built once; tests copy it."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    svc = make_service(path)
    svc.load_data_set(ADMIN, *demo.generate(svc.counter.count_many, today=TODAY))
    return path


@pytest.fixture
def demo_copy(demo_db, tmp_path):
    path = tmp_path / "demo.db"
    with sqlite3.connect(demo_db) as src, sqlite3.connect(path) as dst:
        src.backup(dst)  # a file copy would miss what is still in the WAL
    return path


class SQLiteFactory:
    """Opens stores on one SQLite file."""

    kind = "sqlite"

    def __init__(self, path) -> None:
        self.path = path

    def open(self) -> SQLiteStore:
        return SQLiteStore(str(self.path))

    def service(self, clock=None, **settings) -> BudgetService:
        return make_service(self.path, clock, **settings)


def airtable_config(server: FakeAirtable, sidecar, **overrides) -> AirtableConfig:
    """Settings for the loopback base: no pacing wait and a short 429 penalty, so
    the tests run in seconds; everything else as in production."""
    raw = {"AIRTABLE_API_KEY": API_KEY, "AIRTABLE_BASE_ID": BASE_ID,
           "AIRTABLE_ENDPOINT_URL": server.url, "AIRTABLE_SIDECAR": str(sidecar),
           "AIRTABLE_MIN_INTERVAL": "0", "AIRTABLE_RATE_LIMIT_PENALTY": "0.05",
           "AIRTABLE_RETRY_BACKOFF": "0.01", "AIRTABLE_READ_TIMEOUT": "10"}
    raw.update(overrides)
    return AirtableConfig.from_settings(raw)


class AirtableFactory:
    """Opens stores on one loopback Airtable base (and one sidecar file). The base has
    Client ID / Attribute ID fields, so the service tests can use their own ids."""

    kind = "airtable"

    def __init__(self, server: FakeAirtable, sidecar) -> None:
        self.server, self.sidecar = server, sidecar
        self.config = airtable_config(server, sidecar, AIRTABLE_CLIENT_ID_FIELD="Client ID",
                                      AIRTABLE_ATTRIBUTE_ID_FIELD="Attribute ID",
                                      AIRTABLE_ALLOW_REPLACE="1")

    def open(self) -> AirtableStore:
        return AirtableStore(self.config)

    def service(self, clock=None, **settings) -> BudgetService:
        return BudgetService(self.open(), Settings(store="airtable", **settings),
                             clock or Clock())


@pytest.fixture
def airtable_server():
    server = FakeAirtable()
    server.start()
    yield server
    server.stop()


STORES = ["sqlite", "airtable"]


@pytest.fixture
def store_factory(request, tmp_path):
    """Opens stores of one kind on one data set: SQLite by default; a module that
    runs against every store (tests/test_service.py) parametrises it with
    `pytest.mark.parametrize("store_factory", STORES, indirect=True)`, getting
    Airtable through pyairtable over real HTTP to tests/airtable_server.py too."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield SQLiteFactory(tmp_path / "small.db")
        return
    server = standard_base(FakeAirtable(), id_fields=True)
    server.start()
    yield AirtableFactory(server, tmp_path / "sidecar.db")
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
