"""Incremental recount: one attribute edited through the service, in a fresh process
on a copy of the data set (its counts stored, as on a running server). One edit costs
a fixed few milliseconds whatever the data set's size, so at the target size it must
be a small share (INCREMENTAL_TARGET) of a full recount."""

from __future__ import annotations

import statistics
import time

from budget.model import Change
from budget.service import BudgetService
from budget.settings import Settings
from budget.stores import SQLiteStore

from .data import LOADER, copy_db
from .harness import best, in_child
from .row import Row
from .size import SizeRun

SECTION = "incremental"
EDITS = 5  # edits timed, each of another client's attribute
INCREMENTAL_TARGET = 0.01  # incremental recount / full recount
WHY_MISSED = (
    "Why: apply() is a whole write (the client's attributes read, one text counted, "
    "the attribute, Token Usage, a history row and an audit row written in one SQLite "
    "transaction): a fixed few milliseconds that do not grow with the data. What would "
    "close it: nothing needed at scale; the share shrinks as the data set grows.")


def child(path: str) -> dict[str, float]:
    """Seconds of one text edit through BudgetService.apply (validate, recount the
    edited attribute, save), median of EDITS edits, and of costs() right after."""
    svc = BudgetService(SQLiteStore(path), Settings(store=f"sqlite:///{path}"))
    svc.counter.count("warm")  # the tokenizer is loaded once per process, not per edit
    svc.costs()  # every count is cached in the store already: no tokenizer runs here
    times = []
    for client in svc.store.clients()[:EDITS]:
        first = svc.store.attributes(client.id)[0]
        text = first.instructions.split(". ", 1)[-1]  # a trim: allowed even over budget
        t0 = time.perf_counter()
        result = svc.apply(LOADER, Change(client.id, {first.id: {"Instructions": text}}))
        times.append(time.perf_counter() - t0)
        if svc.store.attributes(ids=[first.id])[0].instructions != text:
            raise AssertionError(f"the edit was not saved: {result}")
    costs_s, costs = best(svc.costs, 3)
    if len(costs) != len(svc.store.attributes()):
        raise AssertionError("costs() after the edits lost attributes")
    return {"apply": statistics.median(times), "costs": costs_s}


def rows(run: SizeRun) -> list[Row]:
    """The edit and costs() in milliseconds, and the edit's share of the full recount
    when the counting section measured one."""
    inc = in_child(child, copy_db(run.db, run.workdir / "incremental.db"))
    out = [
        run.row(SECTION, f"apply one text edit (validate, recount, save; median of {EDITS})",
                inc["apply"] * 1e3, "ms"),
        run.row(SECTION, "costs() of every attribute after the edits (no tokenizer runs)",
                inc["costs"] * 1e3, "ms"),
    ]
    if run.full_recount_s is not None:
        out.append(run.row(SECTION, "one edit applied / full recount by ours",
                           100 * inc["apply"] / run.full_recount_s, "%",
                           run.at_target_size(100 * INCREMENTAL_TARGET)))
    return out
