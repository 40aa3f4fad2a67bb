"""The anchor day: each client's periods turn on one day of the month (1-31), or on the
last day of a shorter month, however many short months the reset date has been through.
A reset date clamped to Feb 28 cannot say whether the client is anchored on the 28th or
the 30th, so the day is kept with the client, by every store."""

from __future__ import annotations

import calendar
import sqlite3
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget import automation, core
from budget.model import BadInput, Client, Tier
from budget.stores import SQLiteStore
from budget.stores.airtable.sidecar import SQLiteSidecar
from budget.stores.copy import copy_store
from budget.stores.postgresql import PostgresStore
from budget.stores.postgresql.migrations import LATEST, MIGRATIONS, migrate
from tests.support.factories import ADMIN, STORES_AND_SIDECARS, Clock, make_service

TIERS = {1: Tier(1, "Basic", 1_000)}


def at(d: date, hour: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC)


def on_day(year: int, month: int, anchor: int) -> date:
    """The boundary of an `anchor` client in that month."""
    return date(year, month, min(anchor, calendar.monthrange(year, month)[1]))


def boundaries(first: date, anchor: int, months: int, until: date) -> list[date]:
    """Every boundary from `first` up to `until`: the contract, stated plainly."""
    out, k = [], 0
    while True:
        y, m = divmod(first.month - 1 + k * months, 12)
        b = on_day(first.year + y, m + 1, anchor)
        if b > until:
            return out
        out.append(b)
        k += 1


def resets_by_pure_plan(client: Client, on: list[date]) -> list[date]:
    """The reset dates the scheduled pass's plan leaves, resetting on each day of `on`."""
    out = []
    for d in on:
        due = automation.reset_due(client, at(d))
        assert due is not None, f"no reset due on {d} for {client}"
        client = automation.after_reset(client, at(d))
        out.append(client.budget_reset_date)
    return out


# the measured drift ---------------------------------------------------------------
@pytest.mark.parametrize("first, reset_on, expected", [
    # anchored on the 30th: February clamps, March is the 30th again
    (date(2026, 1, 30), [date(2026, 1, 30), date(2026, 2, 28), date(2026, 3, 30)],
     [date(2026, 2, 28), date(2026, 3, 30), date(2026, 4, 30)]),
    # anchored on the 31st: back to the 31st after February and after April
    (date(2026, 1, 31), [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31),
                         date(2026, 4, 30)],
     [date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30), date(2026, 5, 31)]),
    # a date on the 30th is the 30th, not month-end
    (date(2026, 4, 30), [date(2026, 4, 30)], [date(2026, 5, 30)]),
    (date(2028, 2, 29), [date(2028, 2, 29)], [date(2028, 3, 29)]),
])
def test_reset_dates_keep_their_anchor_day(first, reset_on, expected):
    client = Client("A", "Alpha", 1, budget_reset_date=first)
    assert resets_by_pure_plan(client, reset_on) == expected


def test_the_service_keeps_the_anchor_day_through_february(tmp_path):
    clock = Clock(at(date(2026, 1, 30), 6))
    svc = make_service(tmp_path / "s.db", clock)
    svc.load_data_set(ADMIN, TIERS.values(),
                      [Client("A", "Alpha", 1, budget_reset_date=date(2026, 1, 30))], [])
    seen = []
    for d in (date(2026, 1, 30), date(2026, 2, 28), date(2026, 3, 30)):
        clock.now = at(d, 6)
        assert svc.reset(ADMIN, "A").changed
        assert not svc.reset(ADMIN, "A").changed  # twice in a period: nothing the second time
        c = svc.client("A")
        seen.append((c.budget_reset_date, c.anchor_day, c.last_reset_period))
    assert seen == [(date(2026, 2, 28), 30, date(2026, 1, 30)),
                    (date(2026, 3, 30), 30, date(2026, 2, 28)),
                    (date(2026, 4, 30), 30, date(2026, 3, 30))]
    assert svc.audit()[0].before["anchor_day"] is None
    assert svc.audit()[0].after["anchor_day"] == 30


def test_a_reset_date_moved_off_the_kept_day_takes_the_new_day():
    """Someone edits Budget Reset Date in Airtable to the 15th: the 15th it is."""
    moved = Client("A", "Alpha", 1, budget_reset_date=date(2026, 3, 15), anchor_day=30)
    assert core.anchor_of(moved) == 15
    assert core.anchor_of(replace(moved, budget_reset_date=date(2026, 2, 28))) == 30
    assert core.anchor_of(replace(moved, budget_reset_date=None)) == 30
    assert core.anchor_of(replace(moved, budget_reset_date=None, anchor_day=None)) == 1


@pytest.mark.parametrize("day", [0, 32, -1])
def test_an_anchor_day_outside_1_to_31_is_refused(day, tmp_path):
    client = Client("A", "Alpha", 1, budget_reset_date=date(2026, 1, 30), anchor_day=day)
    with pytest.raises(BadInput) as e:
        core.anchor_of(client)
    assert (e.value.record, e.value.field) == ("client A", "anchor day")
    assert str(day) in e.value.problem
    with pytest.raises(BadInput) as e:
        core.next_boundary(date(2026, 1, 30), at(date(2026, 2, 1)), 1, day)
    assert (e.value.record, e.value.field) == ("period", "anchor day")
    svc = make_service(tmp_path / "s.db")
    with pytest.raises(sqlite3.IntegrityError):  # the store refuses to keep one either
        svc.load_data_set(ADMIN, TIERS.values(), [client], [])


# every anchor day, monthly and quarterly, over 48 months of daily passes ----------------
ANCHORS = [(anchor, months) for anchor in range(1, 32) for months in (1, 3)]
FOUR_YEARS = 48


def population(year: int, month: int) -> list[Client]:
    """One client per anchor day and period; a reset date that the month clamps keeps
    its anchor day, one that it does not is left to say it (as loaded data does)."""
    out = []
    for anchor, months in ANCHORS:
        first = on_day(year, month, anchor)
        out.append(Client(f"c{anchor:02d}m{months}", f"day {anchor}", 1,
                          budget_reset_date=first, period_months=months,
                          anchor_day=anchor if first.day != anchor else None))
    return out


def expected_resets(clients: list[Client], until: date) -> dict[str, list[date]]:
    return {c.id: boundaries(c.budget_reset_date, int(c.id[1:3]), c.period_months, until)
            for c in clients}


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(n) for n in range((last - first).days + 1)]


@settings(max_examples=6, deadline=None)
@given(year=st.integers(2025, 2031), month=st.integers(1, 12), hour=st.integers(0, 23))
def test_every_anchor_day_by_the_pure_plan(year, month, hour):
    clients = population(year, month)
    first = min(c.budget_reset_date for c in clients)
    last = first + timedelta(days=FOUR_YEARS * 31)
    done: dict[str, list[date]] = {c.id: [] for c in clients}
    for d in days(first, last):
        plan = automation.plan(at(d, hour), clients, [], TIERS, automation.Policy(), set(),
                               {}, lambda cid: {}, False)
        due = {r.client_id for r in plan.resets}
        for r in plan.resets:
            assert r.boundaries == 1  # a daily pass never falls behind
            done[r.client_id].append(d)
        clients = [automation.after_reset(c, at(d, hour)) if c.id in due else c
                   for c in clients]
    assert done == expected_resets(population(year, month), last)
    for c in clients:  # the day is kept, however the last date was clamped
        assert c.anchor_day == int(c.id[1:3])


def test_every_anchor_day_through_the_service_and_store(tmp_path):
    """48 months of daily `run_due` on SQLite: each period reset exactly once, on its
    boundary."""
    start = date(2027, 1, 1)
    clients = population(start.year, start.month)
    clock = Clock(at(start, 3))
    svc = make_service(tmp_path / "s.db", clock)
    svc.load_data_set(ADMIN, TIERS.values(), clients, [])
    last = start + timedelta(days=FOUR_YEARS * 31)
    for d in days(start, last):
        clock.now = at(d, 3)
        svc.run_due(ADMIN)
    done: dict[str, list[date]] = {c.id: [] for c in clients}
    for e in svc.audit():
        if e.action == "reset":
            done[e.client_id].append(e.at.date())
    assert done == expected_resets(clients, last)
    assert {c.id: c.anchor_day for c in svc.store.clients()} == \
        {c.id: int(c.id[1:3]) for c in clients}


# every store keeps the day ----------------------------------------------------------
@pytest.mark.parametrize("store_factory", STORES_AND_SIDECARS, indirect=True)
def test_every_store_keeps_the_anchor_day(store_factory):
    clock = Clock(at(date(2026, 1, 31), 9))
    svc = store_factory.service(clock)
    svc.load_data_set(ADMIN, TIERS.values(), [
        Client("A", "Alpha", 1, budget_reset_date=date(2026, 1, 31)),
        Client("B", "Beta", 1, budget_reset_date=date(2026, 2, 28), anchor_day=30)], [])
    assert svc.client("B").anchor_day == 30
    svc.reset(ADMIN, "A")
    again = store_factory.service(clock)  # a fresh store: read back from where it is kept
    assert (again.client("A").budget_reset_date, again.client("A").anchor_day) == \
        (date(2026, 2, 28), 31)
    clock.now = at(date(2026, 2, 28), 9)
    assert [r.budget_reset_date for r in again.reset_all(ADMIN)] == \
        [date(2026, 3, 31), date(2026, 3, 30)]
    assert not any(r.changed for r in again.reset_all(ADMIN))
    assert [c.anchor_day for c in store_factory.service(clock).store.clients()] == [31, 30]


def test_an_older_sqlite_file_gets_the_column(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the clients table as the first release made it
        conn.execute(
            "CREATE TABLE clients (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
            "service_level INTEGER NOT NULL, token_budget INTEGER, "
            "token_usage INTEGER NOT NULL DEFAULT 0, budget_reset_date TEXT, "
            "last_token_update TEXT, email TEXT NOT NULL DEFAULT '', "
            "account_manager TEXT NOT NULL DEFAULT '', topup INTEGER NOT NULL DEFAULT 0, "
            "period_months INTEGER NOT NULL DEFAULT 1, last_reset_period TEXT, "
            "version INTEGER NOT NULL DEFAULT 0)")
        conn.execute("INSERT INTO clients (id, name, service_level, budget_reset_date) "
                     "VALUES ('A', 'Alpha', 1, '2026-01-30')")
    conn.close()
    client = SQLiteStore(str(path)).client("A")
    assert client is not None and client.anchor_day is None
    assert core.anchor_of(client) == 30
    SQLiteStore(str(path))  # opening again finds the column there


def test_an_older_sidecar_gets_the_column(tmp_path):
    path = tmp_path / "sidecar.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE client_extra (client_id TEXT PRIMARY KEY, "
                     "topup INTEGER NOT NULL DEFAULT 0, "
                     "period_months INTEGER NOT NULL DEFAULT 1, last_reset_period TEXT)")
        conn.execute("INSERT INTO client_extra VALUES ('A', 5, 3, '2026-01-30')")
    conn.close()
    assert SQLiteSidecar(str(path), 1).extras("A") == (5, 3, date(2026, 1, 30), None)


def test_a_postgresql_database_of_the_first_schema_gets_the_column(postgres_databases):
    url = postgres_databases()
    with psycopg.connect(url, autocommit=True) as conn:  # as the first release left it
        assert migrate(conn, "test", {1: MIGRATIONS[1]}) == 1
        conn.execute("INSERT INTO clients (id, name, service_level, budget_reset_date) "
                     "VALUES ('A', 'Alpha', 1, '2026-01-30')")
    store = PostgresStore(url, pool_size=1)
    try:
        assert store.schema_version == LATEST
        client = store.client("A")
        assert client is not None and client.anchor_day is None
        store.save_client(replace(client, anchor_day=30))
        assert store.client("A").anchor_day == 30
    finally:
        store.close()


def test_copy_store_copies_the_anchor_day(tmp_path):
    src = make_service(tmp_path / "src.db")
    src.load_data_set(ADMIN, TIERS.values(), [
        Client("A", "Alpha", 1, budget_reset_date=date(2026, 2, 28), anchor_day=31)], [])
    dst = SQLiteStore(str(tmp_path / "dst.db"))
    assert copy_store(src.store, dst, "o200k_base").equal
    assert dst.client("A").anchor_day == 31
