"""Load and usage of every client from SQLite, in a fresh process as a server starts,
with its peak memory: what the Overview page waits for before it draws anything."""

from __future__ import annotations

import time
import tracemalloc

from budget.service import BudgetService
from budget.settings import Settings
from budget.stores import SQLiteStore

from .harness import best, in_child, peak_rss_mib
from .row import Row
from .size import SizeRun

SECTION = "load"
LOAD_TARGET = 1.0  # seconds, at 100,000 attributes
WHY_MISSED = (
    "Why: the load reads one row of counts per attribute and builds an AttributeCost for "
    "each before summing per client. What would close it: summing per client in SQL "
    "(a store method returning usage per client, which the Airtable store would need "
    "too), or keeping per-client totals up to date on every write.")


def child(path: str) -> dict[str, float]:
    """Usage of every client from a cold start, then its peak memory (tracemalloc in a
    second pass, since tracing slows the first)."""
    baseline = peak_rss_mib()
    settings = Settings(store=f"sqlite:///{path}")

    def once() -> int:
        return len(BudgetService(SQLiteStore(path), settings).usage_report())

    t0 = time.perf_counter()
    clients = once()
    first = time.perf_counter() - t0
    repeat_s, _ = best(once, 3)
    maxrss = peak_rss_mib()
    tracemalloc.start()
    once()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"clients": clients, "first": first, "best": min(first, repeat_s),
            "traced_peak_mib": peak / 2**20, "maxrss_mib": maxrss,
            "baseline_maxrss_mib": baseline}


def rows(run: SizeRun) -> list[Row]:
    """The first load, the best of four, traced peak memory and the process's peak."""
    load = in_child(child, run.db)
    return [
        run.row(SECTION, "usage of every client from SQLite, fresh process (first run)",
                load["first"], "s"),
        run.row(SECTION, "usage of every client from SQLite (best of 4 runs)", load["best"],
                "s", run.at_target_size(LOAD_TARGET)),
        run.row(SECTION, "peak traced memory of one load (tracemalloc)",
                load["traced_peak_mib"], "MiB"),
        run.row(SECTION, f"peak RSS of the process (from {load['baseline_maxrss_mib']:,.0f} "
                         "MiB after imports)", load["maxrss_mib"], "MiB"),
    ]
