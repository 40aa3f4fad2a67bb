"""Airtable mirror: the requests each situation of the issue's table costs now (counted
by the loopback fake, real HTTP through pyairtable) against what a full read of both
tables costs (⌈N/100⌉ a table: what every read sent before the mirror), the seconds
each takes at Airtable's 5 requests a second, the mirror's size on disk, and how old
the data a save is validated on can be."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

from .airtable_requests import AIRTABLE_RATE, airtable_base
from .data import ENCODING
from .row import Row
from .size import SizeRun

SECTION = "airtable_mirror"
INTERVAL = 30.0  # AIRTABLE_SYNC_INTERVAL's default
SWEEP = 3600.0  # AIRTABLE_SWEEP_INTERVAL's default
WHY_MISSED = (
    "Why: a situation sent more requests than the issue's table allows; the rows give "
    "the figures. What would close it: the sync step or the sweep in "
    "budget/stores/airtable/mirror.py, or the webhook's payloads in webhook.py.")


def _sidecar_bytes(path: Path) -> int:
    """The SQLite sidecar with its write-ahead log: what the mirror takes on disk."""
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def rows(run: SizeRun) -> list[Row]:
    """One row per situation (requests now, target), with its seconds at Airtable's rate
    and the full read it replaces; then the mirror's size and the validation's data age."""
    from budget.stores.airtable import AirtableStore

    clients, attrs = run.store.clients(), run.attrs
    full = math.ceil(len(clients) / 100) + math.ceil(len(attrs) / 100)
    out: list[Row] = []

    def situation(name: str, now: int, limit: float, op: str = "<=") -> None:
        out.append(run.row(SECTION, f"{name}: requests (before the mirror: {full:,}, "
                                    f"{full / AIRTABLE_RATE:,.1f} s)", now, "requests",
                           limit, op))
        out.append(run.row(SECTION, f"{name}: wall time at {AIRTABLE_RATE:g} req/s",
                           now / AIRTABLE_RATE, "s"))

    with airtable_base(clients, attrs, run.workdir) as (fake, store):
        config = store.config
        sidecar = Path(str(config.sidecar))
        fake.age(60)
        store.mirror.clock = fake.now
        fake.reset_log()
        store.clients(), store.attributes()
        situation("first start, empty mirror", len(fake.requests), full, "=")

        edited = replace(store.attributes()[0], signals="Series B funding.")
        store.sync()  # the first read took longer than an interval at this size: the page
        fake.reset_log()  # after the edit is measured within the interval, as it is served
        t0 = time.perf_counter()
        with store.transaction(edited.client_id):
            store.save_attributes([edited], ENCODING, {})
        write_s = time.perf_counter() - t0
        write = len(fake.requests)
        fake.reset_log()
        store.clients(), store.attributes()
        situation("page render after an edit made in the app", len(fake.requests), 0, "=")

        fake.advance(INTERVAL)
        fake.reset_log()
        store.data_version()
        situation("idle dashboard, per sync interval", len(fake.requests), 2)

        fake.advance(INTERVAL)
        fresh = AirtableStore(config)
        fresh.mirror.clock = fake.now
        fake.reset_log()
        fresh.clients(), fresh.attributes()
        situation("new process (`tokenbudget usage`), mirror present, nothing changed",
                  len(fake.requests), 2)

        (arid,) = [r["id"] for r in fake.records("Scoring Attributes")][:1]
        fake.edit("Scoring Attributes", arid, {"Examples": "Edited in Airtable."})
        fake.advance(INTERVAL)
        fake.reset_log()
        store.clients(), store.attributes()
        situation("one record edited in Airtable, then a page render", len(fake.requests), 3)

        gone = fake.records("Scoring Attributes")[-1]["id"]
        fake.delete("Scoring Attributes", gone)
        fake.advance(SWEEP)
        fake.reset_log()
        store.clients()
        left = store.attributes()
        if len(left) != len(attrs) - 1:
            raise AssertionError(f"{len(left)} attributes after the sweep, {len(attrs) - 1} "
                                 "expected")
        situation("one record deleted in Airtable, gone within one sweep (incl. the sync)",
                  len(fake.requests), 2 + full)

        hooked = AirtableStore(replace(config, webhooks="auto"))  # the setting's default
        hooked.mirror.clock = fake.now
        fake.advance(INTERVAL)
        hooked.clients(), hooked.attributes()  # the webhook made, each table swept once
        gone = fake.records("Scoring Attributes")[-1]["id"]
        fake.delete("Scoring Attributes", gone)
        fake.advance(INTERVAL)
        fake.reset_log()
        hooked.clients()
        if len(hooked.attributes()) != len(attrs) - 2:
            raise AssertionError("the deletion the webhook reported is still mirrored")
        situation("one record deleted in Airtable, gone within one sync (webhook)",
                  len(fake.requests), 2)
        fake.advance(INTERVAL)
        fake.reset_log()
        hooked.data_version()
        situation("idle dashboard, per sync interval (webhook: the payloads only)",
                  len(fake.requests), 1)
        hooked.close()
        fresh.close()
        store.close()
        out.append(run.row(SECTION, f"mirror's size on disk ({len(attrs):,} attributes)",
                           _sidecar_bytes(sidecar) / 2**20, "MiB"))
    out += [
        run.row(SECTION, "validation data age, preview before Save (the mirror): at most "
                         "one sync interval", INTERVAL, "s"),
        run.row(SECTION, f"validation data age, check inside the write (read from Airtable "
                         f"in the lock; the whole write of {write} requests, unpaced)",
                write_s, "s"),
        run.row(SECTION, f"validation data age, check inside the write, at "
                         f"{AIRTABLE_RATE:g} req/s (its {write} requests)",
                write / AIRTABLE_RATE, "s"),
    ]
    return out
