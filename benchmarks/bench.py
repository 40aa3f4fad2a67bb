"""`make bench`: times what matters at 800, 20,000 and 100,000 attributes and writes
benchmarks/results.md.

Each comparison is made in the same run, on the same texts, in this order:
1. token counting: our counter (fresh cache) against the fastest raw tiktoken path;
2. incremental recount: one attribute edited through the service, against (1);
3. load and usage of every client from SQLite, with peak memory (2 and 3 each in a
   fresh process, as a server would run them);
4. Airtable requests to load N records and to write M updates (loopback fake);
5. server-side render time of the Overview and Client pages (Streamlit AppTest).

Figures are the best of a few runs (fewer at 100,000 attributes); the machine's load
is printed with them, because other work on it slows everything measured. The method
behind each figure is in benchmarks/notes.md, which results.md ends with.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import tiktoken

from budget import tokens
from budget.model import Attribute, Change, Client
from budget.service import BudgetService
from budget.settings import Settings
from budget.stores import SQLiteStore

from .data import LOADER, cached_db, copy_db

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.md"
ENCODING = tokens.DEFAULT_ENCODING
SIZES: dict[str, tuple[int, int]] = {"small": (40, 20), "medium": (1_000, 20),
                                     "large": (2_000, 50)}
AIRTABLE_RATE = 5.0  # requests per second per base
AIRTABLE_UPDATES = 250  # M: attribute updates written in one transaction
FULL_BASE_WRITES = 1_000  # above this many attributes, writes run on a base of M records
COUNT_TARGET = 1.1  # our full recount / fastest raw tiktoken path
OURS = "ours: budget.tokens counter, fresh cache"
# rounds of the two paths whose ratio is COUNT_TARGET: one round of the same path varies
# by a quarter on this machine, and a round at 100,000 attributes takes about 10 s
RATIO_ROUNDS = {800: 10, 20_000: 10, 100_000: 6}  # up to this many attributes: rounds
INCREMENTAL_TARGET = 0.01  # incremental recount / full recount
LOAD_TARGET = 1.0  # seconds, at 100,000 attributes
PAGE_TARGET = 2.0  # seconds, at 100,000 attributes
TARGET_ATTRIBUTES = 100_000


@dataclass(frozen=True)
class Row:
    size: str  # "2,000 x 50"
    attributes: int
    section: str
    measure: str
    value: float
    unit: str  # s, ms, x, %, MiB, requests
    limit: float | None = None  # the target, where this row has one
    op: str = "<"  # how value must compare with limit: <, <= or =

    def _fmt(self, v: float) -> str:
        if self.unit == "s":
            return f"{v:,.3f} s"
        if self.unit == "ms":
            return f"{v:,.1f} ms"
        if self.unit == "x":
            return f"{v:.3f}x"
        if self.unit == "%":
            return f"{v:.3f} %"
        if self.unit == "MiB":
            return f"{v:,.1f} MiB"
        return f"{v:,.0f} {self.unit}"

    @property
    def figure(self) -> str:
        return self._fmt(self.value)

    @property
    def target(self) -> str:
        return "" if self.limit is None else f"{self.op} {self._fmt(self.limit)}"

    @property
    def met(self) -> bool | None:
        if self.limit is None:
            return None
        return {"<": self.value < self.limit, "<=": self.value <= self.limit,
                "=": self.value == self.limit}[self.op]

    @property
    def verdict(self) -> str:
        return "" if self.met is None else ("met" if self.met else "**MISSED**")

    @property
    def shortfall(self) -> str:
        """By how much a missed target is missed."""
        assert self.limit is not None
        diff = self.value - self.limit
        share = f" ({diff / self.limit:+.0%})" if self.limit else ""
        return f"{self._fmt(abs(diff))} {'over' if diff > 0 else 'under'}{share}"


def label(clients: int, per_client: int) -> str:
    return f"{clients:,} x {per_client:,}"


def best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """(shortest wall time of `repeat` calls, the last result)."""
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def repeats(attributes: int) -> int:
    return 5 if attributes <= 1_000 else 2 if attributes <= 20_000 else 1


# 1. token counting ---------------------------------------------------------------------
def bench_counting(texts: Sequence[str], repeat: int, ratio_rounds: int
                   ) -> tuple[dict[str, float], dict[str, float]]:
    """(wall seconds, CPU seconds) per full count of `texts` by each path: the best of
    `repeat` rounds, and of at least `ratio_rounds` for the loop and ours, whose ratio is
    the target. Rounds interleave the paths so a burst of load on the machine does not
    land on one only; CPU time leaves out the waits for other processes' turns."""
    enc = tokens.get_encoding(ENCODING)
    cores = os.cpu_count() or 1
    paths: dict[str, Callable[[], int]] = {
        "tiktoken encode_ordinary loop": lambda: sum(len(enc.encode_ordinary(t)) for t in texts),
        "tiktoken encode_ordinary_batch, 1 thread": lambda: sum(
            map(len, enc.encode_ordinary_batch(list(texts), num_threads=1))),
        f"tiktoken encode_ordinary_batch, {cores} threads": lambda: sum(
            map(len, enc.encode_ordinary_batch(list(texts), num_threads=cores))),
        OURS: lambda: sum(tokens.TiktokenCounter(ENCODING).count_many(texts)),
        "chars4 counter, fresh cache": lambda: sum(tokens.Chars4Counter().count_many(texts)),
    }
    times: dict[str, list[float]] = {k: [] for k in paths}
    cpu: dict[str, list[float]] = {k: [] for k in paths}
    totals: dict[str, int] = {}
    ratio_paths = {"tiktoken encode_ordinary loop", OURS}
    for round_ in range(max(repeat, ratio_rounds)):
        order = list(paths.items())
        for name, fn in order if round_ % 2 == 0 else reversed(order):  # no path always first
            if round_ >= repeat and name not in ratio_paths:
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            totals[name] = fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    tiktoken_totals = {v for k, v in totals.items() if not k.startswith("chars4")}
    if len(tiktoken_totals) != 1:  # every path must count the same tokens
        raise AssertionError(f"token paths disagree: {totals}")
    return {k: min(v) for k, v in times.items()}, {k: min(v) for k, v in cpu.items()}


# 2 and 3 run in a fresh process each, as a server would: the benchmark's own process
# holds every text and attribute of the data set, and a garbage collection walking
# those would be charged to whatever runs when it falls.
def in_child(kind: str, path: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench", "--child", kind, str(path)],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# 2. incremental recount ------------------------------------------------------------------
EDITS = 5  # edits timed, each of another client's attribute


def incremental_child(path: str) -> dict[str, float]:
    """Milliseconds of one text edit through BudgetService.apply (validate, recount the
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
    if len(costs) != len(svc.store.attributes()):  # type: ignore[arg-type]
        raise AssertionError("costs() after the edits lost attributes")
    return {"apply": statistics.median(times), "costs": costs_s}


def bench_incremental(db: Path, workdir: Path) -> dict[str, float]:
    return in_child("incremental", copy_db(db, workdir / "incremental.db"))


# 3. load and usage from SQLite -----------------------------------------------------------
def peak_rss_mib() -> float:
    """This process's peak resident memory. Linux's VmHWM, because ru_maxrss carries the
    parent's peak across exec and the parent here is the (larger) benchmark itself."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_child(path: str) -> dict[str, float]:
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


def bench_load(db: Path) -> dict[str, float]:
    return in_child("load", db)


CHILDREN = {"load": load_child, "incremental": incremental_child}


# 4. Airtable requests -----------------------------------------------------------------------
def seed_fake(fake, clients: Sequence[Client], attrs: Sequence[Attribute]) -> None:
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
def airtable_base(clients: Sequence[Client], attrs: Sequence[Attribute], workdir: Path):
    """(fake, store): a loopback base holding the data set, and an AirtableStore on it
    configured as in the tests (no pacing wait: requests are counted, not waited for)."""
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


def bench_airtable(clients: Sequence[Client], attrs: Sequence[Attribute], updates: int,
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


# 5. pages -----------------------------------------------------------------------------------
@contextmanager
def app_on(db: Path):
    """The app's settings pointed at `db` for the duration, with fresh caches; the
    environment and caches are put back afterwards (the smoke test shares a process)."""
    import streamlit as st

    before = os.environ.get("TOKENBUDGET_STORE")
    os.environ["TOKENBUDGET_STORE"] = f"sqlite:///{db}"
    try:
        yield
    finally:
        if before is None:
            del os.environ["TOKENBUDGET_STORE"]
        else:
            os.environ["TOKENBUDGET_STORE"] = before
        st.cache_data.clear()
        st.cache_resource.clear()


def bench_pages(db: Path) -> dict[str, float]:
    """Server-side render time of Overview and Client in AppTest: the first render
    (empty caches: opens the store and loads the data) and the next one (cached). Each
    AppTest runs once untimed first: its first run scans the installed packages for
    components (about 0.3 s), which a server does once at start, not per page view."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    first = SQLiteStore(str(db)).clients()[0]
    out: dict[str, float] = {}
    with app_on(db):
        for page, params in (("overview", {}), ("client", {"client": first.id})):
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
            for k, v in params.items():
                at.query_params[k] = v
            at.run()
            st.cache_data.clear()
            st.cache_resource.clear()
            for run in ("first", "cached"):
                t0 = time.perf_counter()
                at.run()
                out[f"{page}_{run}"] = time.perf_counter() - t0
                if at.exception:
                    raise AssertionError(f"{page} page failed: {at.exception}")
            if page == "client" and at.title[0].value != first.name:
                raise AssertionError("the client page did not open the client asked for")
    return out


# the run -------------------------------------------------------------------------------------
SECTIONS = ("counting", "incremental", "load", "airtable", "pages")


def run_size(clients: int, per_client: int, seed: int, workdir: Path,
             sections: Sequence[str] = SECTIONS, data_dir: Path | None = None,
             log: Callable[[str], None] = print) -> list[Row]:
    n = clients * per_client
    size = label(clients, per_client)
    large = n >= TARGET_ATTRIBUTES
    rows: list[Row] = []

    def add(section: str, measure: str, value: float, unit: str, limit: float | None = None,
            op: str = "<") -> None:
        rows.append(Row(size, n, section, measure, value, unit, limit, op))
        log(f"  {size:>12}  {section:<11} {measure:<66} {rows[-1].figure:>14}  "
            f"{rows[-1].target} {rows[-1].verdict}")

    def at_target_size(limit: float) -> float | None:
        return limit if large else None

    db = cached_db(clients, per_client, seed, data_dir=data_dir)
    store = SQLiteStore(str(db))
    attrs = store.attributes()
    texts = [t for a in attrs for t in (a.instructions, a.examples, a.signals)]
    full_ours = None
    if "counting" in sections:
        times, cpu = bench_counting(texts, repeats(n), next(
            (v for k, v in RATIO_ROUNDS.items() if n <= k), min(RATIO_ROUNDS.values())))
        raw = {k: v for k, v in times.items() if k.startswith("tiktoken")}
        fastest = min(raw, key=raw.__getitem__)
        full_ours = times[OURS]
        chars = sum(map(len, texts))
        for name, sec in times.items():
            add("counting", f"{name} ({chars / sec / 1e6:,.1f} M chars/s)", sec, "s")
        keys, _ = best(lambda: [tokens._digest(t) for t in texts], repeats(n))
        add("counting", "of ours: the cache keys alone (blake2b of every text)", keys, "s")
        add("counting", f"ours / fastest raw ({fastest.removeprefix('tiktoken ')})",
            full_ours / raw[fastest], "x", COUNT_TARGET, "<=")
        add("counting", "the same in CPU time (leaves out waits for other processes)",
            cpu[OURS] / cpu[fastest], "x")
    if "incremental" in sections:
        inc = bench_incremental(db, workdir)
        add("incremental", f"apply one text edit (validate, recount, save; median of {EDITS})",
            inc["apply"] * 1e3, "ms")
        add("incremental", "costs() of every attribute after the edits (no tokenizer runs)",
            inc["costs"] * 1e3, "ms")
        if full_ours is not None:
            add("incremental", "one edit applied / full recount by ours",
                100 * inc["apply"] / full_ours, "%", at_target_size(100 * INCREMENTAL_TARGET))
    if "load" in sections:
        load = bench_load(db)
        add("load", "usage of every client from SQLite, fresh process (first run)",
            load["first"], "s")
        add("load", "usage of every client from SQLite (best of 4 runs)", load["best"], "s",
            at_target_size(LOAD_TARGET))
        add("load", "peak traced memory of one load (tracemalloc)", load["traced_peak_mib"],
            "MiB")
        add("load", f"peak RSS of the process (from {load['baseline_maxrss_mib']:,.0f} MiB "
                    "after imports)", load["maxrss_mib"], "MiB")
    if "airtable" in sections:
        at = bench_airtable(store.clients(), attrs, AIRTABLE_UPDATES, workdir)
        add("airtable", f"list requests, Clients ({at['clients']:,} records)",
            at["load_clients_requests"], "requests", math.ceil(at["clients"] / 100), "=")
        add("airtable", f"list requests, Scoring Attributes ({at['attributes']:,} records)",
            at["load_attributes_requests"], "requests", math.ceil(at["attributes"] / 100), "=")
        add("airtable", f"load: wall time at {AIRTABLE_RATE:g} req/s "
                        f"({at['load_requests']:,} requests)",
            at["load_requests"] / AIRTABLE_RATE, "s")
        add("airtable", "load: wall time against the loopback fake, unpaced", at["load_s"], "s")
        add("airtable", f"update requests, {at['updates']:,} attribute updates",
            at["write_update_requests"], "requests", math.ceil(at["updates"] / 10), "=")
        add("airtable", "reads in the same write (by id, then the re-check before sending; "
                        f"base of {at['write_base_records']:,} attributes)",
            at["write_read_requests"], "requests")
        add("airtable", f"write: wall time at {AIRTABLE_RATE:g} req/s "
                        f"({at['write_requests']:,} requests)",
            at["write_requests"] / AIRTABLE_RATE, "s")
    if "pages" in sections:
        pages = bench_pages(db)
        for page in ("overview", "client"):
            for run in ("first", "cached"):
                add("pages", f"{page.title()} page, {run} render", pages[f"{page}_{run}"], "s",
                    at_target_size(PAGE_TARGET))
    return rows


# why a target can be missed and what would close it, from what the figures show
WHY_MISSED = {
    "counting": (
        "Why: ours runs the same per-text encode_ordinary loop plus, per text, the cache key "
        "(a blake2b digest of the UTF-8 bytes: its own row, about 4 % of the encoding), "
        "three dict operations and a method call. Rounds of one path vary by up to a quarter "
        "on this machine, but that does not explain all of it: at 20,000 attributes ours "
        "was 1.16x to 1.33x in four of five full runs on a quiet machine, 1.10x in a run "
        "of the counting section alone, and 0.98x in a standalone script, so the state of "
        "the process (Streamlit loaded by the smaller size's page renders) weighs on ours "
        "more than on the plain loop; the cause is not found yet. What would close it (in "
        "budget/tokens.py, not changed here): counting without the key and cache when every "
        "text is new (a full recount), and finding what the process state costs ours."),
    "incremental": (
        "Why: apply() is a whole write (the client's attributes read, one text counted, "
        "the attribute, Token Usage, a history row and an audit row written in one SQLite "
        "transaction): a fixed few milliseconds that do not grow with the data. What would "
        "close it: nothing needed at scale; the share shrinks as the data set grows."),
    "load": (
        "Why: the load reads one row of counts per attribute and builds an AttributeCost for "
        "each before summing per client. What would close it: summing per client in SQL "
        "(a store method returning usage per client, which the Airtable store would need "
        "too), or keeping per-client totals up to date on every write."),
    "airtable": (
        "Why: the Airtable store sent more requests than Airtable's limits require (100 "
        "records a page, 10 a write); the rows above give the exact figures. What would "
        "close it: the store's listing or batching (budget/stores/airtable.py)."),
    "pages": (
        "Why: a first render loads every client's usage (the load section) before it draws; "
        "a cached render reuses it. What would close it: a faster load (see there), or "
        "computing the usage table when the data version moves instead of on first view."),
}


def render_table(rows: Sequence[Row]) -> str:
    lines = ["| size (clients x attributes) | section | measure | figure | target | |",
             "|---|---|---|---:|---|---|"]
    lines += [f"| {r.size} | {r.section} | {r.measure} | {r.figure} | {r.target} | {r.verdict} |"
              for r in rows]
    return "\n".join(lines)


def machine() -> dict[str, str]:
    return {"cores": str(os.cpu_count()), "python": platform.python_version(),
            "tiktoken": tiktoken.__version__, "platform": platform.platform()}


def load_avg() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def summary_table(rows: Sequence[Row]) -> str:
    """The targets alone; those of the largest size are the README's short table."""
    lines = ["| target | size | figure | target | |", "|---|---|---:|---|---|"]
    lines += [f"| {r.measure} | {r.size} | {r.figure} | {r.target} | {r.verdict} |"
              for r in rows if r.limit is not None]
    return "\n".join(lines)


def write_results(rows: Sequence[Row], started: datetime, load_before: str, load_after: str,
                  notes: str, path: Path = RESULTS) -> None:
    m = machine()
    missed = [r for r in rows if r.met is False]
    text = [
        "# Benchmark results",
        "",
        f"Written by `make bench` on {started:%Y-%m-%d %H:%M} UTC. Machine: **{m['cores']} "
        f"cores**, Python {m['python']}, tiktoken {m['tiktoken']}, {m['platform']}.",
        f"Load average (1, 5, 15 min) before the run: {load_before}; after: {load_after}. "
        "The machine is shared, so other work slows every figure; ratios measured in the "
        "same run (counting) suffer least.",
        "",
        "Data: generated by `benchmarks/data.py` (about 1,500 characters per attribute, "
        "every text distinct), counted with o200k_base. Counting: best of 5 rounds at 800 "
        "attributes, 2 at 20,000, 1 at 100,000; for the loop and ours, whose ratio is the "
        "target, best of "
        f"{', '.join(f'{v} rounds at {k:,}' for k, v in RATIO_ROUNDS.items())}.",
        "",
        "## Targets" + (" (some missed: see below)" if missed else ": all met"),
        "",
        summary_table(rows),
        "",
        "## Every figure",
        "",
        render_table(rows),
        "",
    ]
    if missed:
        text += ["## Targets missed", ""]
        text += [f"- **{r.size}, {r.measure}**: {r.figure} against {r.target}, "
                 f"{r.shortfall}. {WHY_MISSED[r.section]}" for r in missed]
        text.append("")
    if notes:
        text += [notes.strip(), ""]
    path.write_text("\n".join(text))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="small,medium,large",
                   help=f"comma-separated, of {', '.join(SIZES)}")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sections", default=",".join(SECTIONS))
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--notes", type=Path, default=Path(__file__).resolve().parent / "notes.md",
                   help="text appended to the results (the analysis of missed targets)")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child[0]](args.child[1])))
        return 0
    sections = [s for s in args.sections.split(",") if s]
    started = datetime.now(timezone.utc)
    load_before = load_avg()
    print(f"tokenbudget benchmark: {os.cpu_count()} cores, load average {load_before}")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tokenbudget-bench-") as tmp:
        for name in args.sizes.split(","):
            clients, per_client = SIZES[name]
            print(f"{label(clients, per_client)} = {clients * per_client:,} attributes")
            rows += run_size(clients, per_client, args.seed, Path(tmp), sections)
    load_after = load_avg()
    print(f"load average after: {load_after}")
    notes = args.notes.read_text() if args.notes.exists() else ""
    write_results(rows, started, load_before, load_after, notes, args.out)
    largest = max((r.attributes for r in rows), default=0)
    print(summary_table([r for r in rows if r.attributes == largest]))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
