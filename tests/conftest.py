from __future__ import annotations

import sqlite3
from datetime import date, datetime, timezone

import pytest

from budget import demo
from budget.model import Actor, Attribute, Client, Tier
from budget.service import BudgetService
from budget.settings import Settings
from budget.stores import SQLiteStore

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


@pytest.fixture
def small(tmp_path):
    """Two clients with hand-made texts: the arithmetic is easy to follow."""
    path = tmp_path / "small.db"
    svc = make_service(path)
    tiers = [Tier(1, "Basic", 100), Tier(2, "Professional", 200)]
    clients = [Client("A", "Alpha", 1, budget_reset_date=date(2026, 12, 1)),
               Client("B", "Beta", 2, budget_reset_date=date(2026, 12, 10))]
    attrs = [Attribute("a1", "A", "Size", True, words(40), "", ""),
             Attribute("a2", "A", "Industry", True, words(30), words(10), ""),
             Attribute("a3", "A", "Intent", False, words(25), "", ""),
             Attribute("b1", "B", "Size", True, words(150), "", "")]
    svc.load_data_set(ADMIN, tiers, clients, attrs)
    return svc
