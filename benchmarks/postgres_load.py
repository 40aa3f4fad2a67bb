"""Usage of every client from PostgreSQL beside SQLite, in the same run, each in a fresh
process: the data set is copied into a real server started for the run (Debian's
`postgresql`, as the tests start it: tests/support/postgres_server.py) with
`copy-store`'s own code, then both stores are read by the same measurement.

Skipped, with the reason printed, where the PostgreSQL programs are not installed."""

from __future__ import annotations

import time
from collections.abc import Callable

from budget.service import BudgetService
from budget.settings import Settings
from budget.stores import SQLiteStore, open_store
from budget.stores.copy import copy_store
from tests.support.postgres_server import PostgresServer, missing_reason

from .data import ENCODING
from .harness import best, in_child
from .row import Row
from .size import SizeRun

SECTION = "postgresql"
WHY_MISSED = "Why: no target; PostgreSQL's figures are read beside SQLite's."


def child(url: str) -> dict[str, float]:
    """Usage of every client through the service, the store opened once as a server
    opens it: the first run, then the best of 3."""
    store = open_store(url)
    svc = BudgetService(store, Settings(store=url))

    def once() -> int:
        return len(svc.usage_report())

    t0 = time.perf_counter()
    clients = once()
    first = time.perf_counter() - t0
    again, _ = best(once, 3)
    close: Callable[[], None] | None = getattr(store, "close", None)
    if close is not None:
        close()
    return {"clients": clients, "first": first, "best": min(first, again)}


def rows(run: SizeRun, log: Callable[[str], None] = print) -> list[Row]:
    """The copy, both stores' first and best load, and PostgreSQL / SQLite; none, and
    the reason logged, without a server to start."""
    reason = missing_reason()
    if reason is not None:
        log(f"  {run.label}: postgresql section skipped: {reason}")
        return []
    server = PostgresServer()
    server.start()
    try:
        url = server.create_database()
        t0 = time.perf_counter()
        report = copy_store(SQLiteStore(str(run.db)), open_store(url), ENCODING)
        copy_s = time.perf_counter() - t0
        if not report.equal:
            raise AssertionError("\n".join(report.lines()))
        # in the order SQLite, PostgreSQL, PostgreSQL, SQLite: a burst of load on the
        # machine does not land on one store only
        lite_url = f"sqlite:///{run.db}"
        sqlite = [in_child(child, lite_url)]
        pg = [in_child(child, url), in_child(child, url)]
        sqlite.append(in_child(child, lite_url))
    finally:
        server.stop()
    if {r["clients"] for r in sqlite + pg} != {run.clients}:
        raise AssertionError(f"client counts differ: {sqlite}, {pg}")
    lite, post = min(r["best"] for r in sqlite), min(r["best"] for r in pg)
    return [
        run.row(SECTION, "usage of every client, PostgreSQL / SQLite (best of each)",
                post / lite, "x"),
        run.row(SECTION, "usage of every client from PostgreSQL, fresh process (first run)",
                min(r["first"] for r in pg), "s"),
        run.row(SECTION, "usage of every client from PostgreSQL (best of 8 runs)", post, "s"),
        run.row(SECTION, "usage of every client from SQLite, same measurement (best of 8)",
                lite, "s"),
        run.row(SECTION, "copy-store from SQLite into PostgreSQL (verified)", copy_s, "s"),
    ]
