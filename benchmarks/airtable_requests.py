"""Airtable requests: how many the AirtableStore sends (pyairtable's real HTTP path,
counted by the loopback fake) to load every record and to write M updates, against
what Airtable's limits require: 100 records a page, 10 records a write. At Airtable's
5 requests a second per base, each request over that count is a fifth of a second."""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from budget.model import Attribute, Client

from .data import ENCODING
from .row import Row
from .size import SizeRun

if TYPE_CHECKING:
    from budget.stores.airtable import AirtableStore
    from tests.support.airtable_server import FakeAirtable

SECTION = "airtable"
AIRTABLE_RATE = 5.0  # requests per second per base
AIRTABLE_UPDATES = 250  # M: attribute updates written in one transaction
FULL_BASE_WRITES = 1_000  # above this many attributes, writes run on a base of M records
WHY_MISSED = (
    "Why: the Airtable store sent more requests than Airtable's limits require (100 "
    "records a page, 10 a write); the rows above give the exact figures. What would "
    "close it: the store's listing or batching (budget/stores/airtable/).")


def seed_fake(fake: FakeAirtable, clients: Sequence[Client], attrs: Sequence[Attribute]
              ) -> None:
    """Puts the data set straight into the fake's tables, links both ways, as Airtable
    holds it. (Creating it over HTTP would be N/10 requests, and they are not what is
    measured; the fake's `put` relinks every record per call, quadratic at this size.)"""
    ctable, atable = fake.table("Clients"), fake.table("Scoring Attributes")
    crid = {c.id: f"recC{n:013d}" for n, c in enumerate(clients)}
    linked: dict[str, list[str]] = {c.id: [] for c in clients}
    for n, a in enumerate(attrs):
        rid = f"recA{n:013d}"
        linked[a.client_id].append(rid)
        atable.records[rid] = {"id": rid, "createdTime": "2026-01-01T00:00:00.000Z", "fields": {
            "Name": a.name, "Active": a.active, "Client": [crid[a.client_id]],
            "Instructions": a.instructions, "Examples": a.examples, "Signals": a.signals}}
    for c in clients:
        ctable.records[crid[c.id]] = {
            "id": crid[c.id], "createdTime": "2026-01-01T00:00:00.000Z", "fields": {
                "Client Name": c.name, "Service Level": c.service_level, "Token Usage": 0,
                "Budget Reset Date": c.budget_reset_date.isoformat()
                if c.budget_reset_date else None,
                "Email": c.email, "Account Manager": c.account_manager,
                "Scoring Attributes": linked[c.id]}}


@contextmanager
def airtable_base(clients: Sequence[Client], attrs: Sequence[Attribute], workdir: Path
                  ) -> Iterator[tuple[FakeAirtable, AirtableStore]]:
    """(fake, store): a loopback base holding the data set, and an AirtableStore on it
    configured as in the tests (no pacing wait: requests are counted, not waited for).
    Imported on use, so that a run without this section imports neither pyairtable
    nor the test support package."""
    from budget.stores.airtable import AirtableStore
    from tests.support.airtable_server import FakeAirtable, standard_base
    from tests.support.factories import airtable_config

    fake = standard_base(FakeAirtable())
    seed_fake(fake, clients, attrs)
    fake.start()
    sidecar = Path(tempfile.mkdtemp(dir=workdir)) / "sidecar.db"
    try:
        yield fake, AirtableStore(airtable_config(fake, sidecar, AIRTABLE_READ_TIMEOUT="120"))
    finally:
        fake.stop()


def measure(clients: Sequence[Client], attrs: Sequence[Attribute], updates: int,
            workdir: Path) -> dict[str, float]:
    """Requests the AirtableStore sends (counted by the fake) to load every client and
    attribute, and to write `updates` attribute updates in one transaction."""
    with airtable_base(clients, attrs, workdir) as (fake, store):
        fake.reset_log()
        t0 = time.perf_counter()
        loaded_clients, loaded = store.clients(), store.attributes()
        load_s = time.perf_counter() - t0
        if (len(loaded_clients), len(loaded)) != (len(clients), len(attrs)):
            raise AssertionError(f"loaded {len(loaded_clients)} clients and {len(loaded)} "
                                 f"attributes of {len(clients)} and {len(attrs)}")
        out = {"clients": len(clients), "attributes": len(attrs),
               "load_clients_requests": fake.count("list", "Clients"),
               "load_attributes_requests": fake.count("list", "Scoring Attributes"),
               "load_requests": len(fake.requests), "load_s": load_s}
    m = min(updates, len(attrs))
    chosen = list(attrs[::max(1, len(attrs) // m)][:m])
    # The fake evaluates a formula in Python for every record it holds (about 0.2 ms a
    # record for the 100-id formulas the store sends), so at 20,000 records and up the
    # write runs on a base holding only the attributes written and their clients:
    # what the store sends for M updates does not depend on the other records.
    full = len(attrs) <= FULL_BASE_WRITES
    owners = {a.client_id for a in chosen}
    base_clients = clients if full else [c for c in clients if c.id in owners]
    with airtable_base(base_clients, attrs if full else chosen, workdir) as (fake, store):
        loaded = store.attributes()
        edited = [replace(a, active=not a.active)
                  for a in loaded[::max(1, len(loaded) // m)][:m]]
        fake.reset_log()
        t0 = time.perf_counter()
        with store.transaction():
            store.save_attributes(edited, ENCODING, {})
        write_s = time.perf_counter() - t0
        now = {a.id: a.active for a in edited}
        landed = sum(1 for r in fake.records("Scoring Attributes")
                     if r["id"] in now and bool(r["fields"].get("Active")) == now[r["id"]])
        if landed != m:
            raise AssertionError(f"{landed} of {m} updates landed")
        out.update({"updates": m, "write_update_requests": fake.count("update"),
                    "write_read_requests": fake.count("list"),
                    "write_requests": len(fake.requests), "write_s": write_s,
                    "write_base_records": len(attrs) if full else len(chosen)})
    return out


def rows(run: SizeRun) -> list[Row]:
    """Requests of a load and of a write against Airtable's minimum, and the wall time
    they imply at Airtable's rate."""
    at = measure(run.store.clients(), run.attrs, AIRTABLE_UPDATES, run.workdir)
    return [
        run.row(SECTION, f"list requests, Clients ({at['clients']:,} records)",
                at["load_clients_requests"], "requests", math.ceil(at["clients"] / 100), "="),
        run.row(SECTION, f"list requests, Scoring Attributes ({at['attributes']:,} records)",
                at["load_attributes_requests"], "requests", math.ceil(at["attributes"] / 100),
                "="),
        run.row(SECTION, f"load: wall time at {AIRTABLE_RATE:g} req/s "
                         f"({at['load_requests']:,} requests)",
                at["load_requests"] / AIRTABLE_RATE, "s"),
        run.row(SECTION, "load: wall time against the loopback fake, unpaced", at["load_s"],
                "s"),
        run.row(SECTION, f"update requests, {at['updates']:,} attribute updates",
                at["write_update_requests"], "requests", math.ceil(at["updates"] / 10), "="),
        run.row(SECTION, "reads in the same write (by id, then the re-check before sending; "
                         f"base of {at['write_base_records']:,} attributes)",
                at["write_read_requests"], "requests"),
        run.row(SECTION, f"write: wall time at {AIRTABLE_RATE:g} req/s "
                         f"({at['write_requests']:,} requests)",
                at["write_requests"] / AIRTABLE_RATE, "s"),
    ]
