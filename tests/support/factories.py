"""What the tests share: fixed times, a settable clock, texts of a known token count,
and factories that open a service on SQLite, on the loopback Airtable base or on a
database of the test PostgreSQL server."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, UTC

from pydantic import ValidationError

from budget.model import Actor
from budget.service import BudgetService
from budget.settings import Settings, settings_error
from budget.settings.sources import nest
from budget.stores import SQLiteStore
from budget.stores.airtable import AirtableConfig, AirtableStore
from budget.stores.postgresql import PostgresStore
from tests.support.airtable_server import API_KEY, BASE_ID, FakeAirtable

TODAY = date(2026, 11, 25)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
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


def settings_from(names: Mapping[str, object] | None = None, **fields: object) -> Settings:
    """Settings from the names a person sets (`SMTP_HOST`...), read as `Settings.load`
    reads the environment, plus fields by name (`warning=0.9`)."""
    unknown = set(fields) - set(Settings.model_fields)
    assert not unknown, f"not settings: {sorted(unknown)}"  # a typo would pass silently
    try:
        return Settings.model_validate({**nest(names or {}), **fields})
    except ValidationError as e:
        raise settings_error(e) from None


def make_service(path, clock=None, names=None, **settings) -> BudgetService:
    return BudgetService(SQLiteStore(str(path)),
                         settings_from(names, store=f"sqlite:///{path}", **settings),
                         clock or Clock())


class SQLiteFactory:
    """Opens stores on one SQLite file."""

    kind = "sqlite"

    def __init__(self, path) -> None:
        self.path = path

    def open(self) -> SQLiteStore:
        return SQLiteStore(str(self.path))

    def service(self, clock=None, names=None, **settings) -> BudgetService:
        return make_service(self.path, clock, names, **settings)


def airtable_config(server: FakeAirtable, sidecar, **overrides) -> AirtableConfig:
    """Settings for the loopback base: no pacing wait and a short 429 penalty, so
    the tests run in seconds; everything else as in production."""
    raw = {"AIRTABLE_API_KEY": API_KEY, "AIRTABLE_BASE_ID": BASE_ID,
           "AIRTABLE_ENDPOINT_URL": server.url, "AIRTABLE_SIDECAR": str(sidecar),
           "AIRTABLE_MIN_INTERVAL": "0", "AIRTABLE_RATE_LIMIT_PENALTY": "0.05",
           "AIRTABLE_RETRY_BACKOFF": "0.01", "AIRTABLE_READ_TIMEOUT": "10",
           # deletions by the sweep, as the request counts of most tests assume; the
           # webhook's tests ask for "auto"
           "AIRTABLE_WEBHOOKS": "off"}
    raw.update(overrides)
    return AirtableConfig.from_settings(settings_from(raw).airtable)


class AirtableFactory:
    """Opens stores on one loopback Airtable base and one sidecar: a file, or with
    `kind` "airtable+postgresql" a database URL. The base has Client ID / Attribute ID
    fields, so the service tests can use their own ids. `close()` returns every store's
    sidecar connections at the end of the test."""

    def __init__(self, server: FakeAirtable, sidecar, kind: str = "airtable") -> None:
        self.server, self.sidecar, self.kind = server, sidecar, kind
        self.config = airtable_config(server, sidecar, AIRTABLE_CLIENT_ID_FIELD="Client ID",
                                      AIRTABLE_ATTRIBUTE_ID_FIELD="Attribute ID",
                                      AIRTABLE_ALLOW_REPLACE="1")
        self._opened: list[AirtableStore] = []

    def open(self) -> AirtableStore:
        store = AirtableStore(self.config)
        self._opened.append(store)
        return store

    def close(self) -> None:
        for store in self._opened:
            store.close()

    def service(self, clock=None, names=None, **settings) -> BudgetService:
        return BudgetService(self.open(), settings_from(names, store="airtable", **settings),
                             clock or Clock())


class PostgresFactory:
    """Opens stores on one PostgreSQL database (tests/support/postgres_server.py);
    `close()` returns every store's connections at the end of the test."""

    kind = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self._opened: list[PostgresStore] = []

    def open(self) -> PostgresStore:
        store = PostgresStore(self.url, pool_size=4, lock_timeout=30)
        self._opened.append(store)
        return store

    def service(self, clock=None, names=None, **settings) -> BudgetService:
        return BudgetService(self.open(), settings_from(names, store=self.url, **settings),
                             clock or Clock())

    def close(self) -> None:
        for store in self._opened:
            store.close()


STORES = ["sqlite", "airtable", "postgresql"]
# the Airtable store with its sidecar in PostgreSQL (AIRTABLE_SIDECAR=postgresql://...):
# for the store-protocol and pass-lock tests, not the whole suite
AIRTABLE_ON_POSTGRESQL = "airtable+postgresql"
STORES_AND_SIDECARS = [*STORES, AIRTABLE_ON_POSTGRESQL]


def env_for(server: FakeAirtable, tmp_path, monkeypatch, **extra) -> None:
    monkeypatch.chdir(tmp_path)  # no secrets.toml of the repo's
    for k, v in {"TOKENBUDGET_STORE": "airtable", "AIRTABLE_API_KEY": API_KEY,
                 "AIRTABLE_BASE_ID": server.base_id, "AIRTABLE_ENDPOINT_URL": server.url,
                 "AIRTABLE_SIDECAR": str(tmp_path / "sidecar.db"),
                 "AIRTABLE_MIN_INTERVAL": "0", "AIRTABLE_RATE_LIMIT_PENALTY": "0.05",
                 "AIRTABLE_RETRY_BACKOFF": "0.01", "AIRTABLE_WEBHOOKS": "off",
                 **extra}.items():
        monkeypatch.setenv(k, v)
