"""Benchmark data: a fast deterministic generator and SQLite files cached by size and seed.

`budget.demo.generate` sizes each client's texts to land near its budget by counting
tokens as it goes, which at 100,000 attributes would cost minutes before anything is
measured. This generator draws from the same sentence pools but aims at a length per
attribute instead (about 1,500 characters), so it needs no tokenizer. Every text
carries numbers of its own, so no two attributes share a text and no cache can make a
recount cheaper than it really is.
"""

from __future__ import annotations

import gc
import os
import random
import sqlite3
from datetime import date, timedelta
from pathlib import Path

from budget import demo, tokens
from budget.model import DEFAULT_TIERS, Actor, Attribute, Client, Tier
from budget.service import BudgetService
from budget.settings import Settings
from budget.stores import SQLiteStore

DATA_DIR = Path(__file__).resolve().parent / ".data"
ENCODING = tokens.DEFAULT_ENCODING  # what the stored counts are counted with, the app's default
TODAY = date(2026, 11, 25)
LOADER = Actor("benchmark", "admin")

INDUSTRIES = ("SaaS", "retail", "logistics", "banking", "healthcare", "manufacturing",
              "insurance", "media", "energy", "public sector", "education", "telecoms")


def _instructions(rng: random.Random, n: int) -> str:
    parts = [rng.choice(demo.INSTRUCTION_SENTENCES) for _ in range(n)]
    parts.insert(rng.randrange(n + 1), f"Add {rng.randint(2, 40)} points when the lead's "
                                       f"headcount grew by more than {rng.randint(5, 60)}% "
                                       f"in the last {rng.randint(2, 24)} months.")
    if rng.random() < 0.12:
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(demo.FOREIGN_SENTENCES))
    return " ".join(parts)


def _examples(rng: random.Random, n: int) -> str:
    return "\n".join(
        f"Example: '{rng.choice(demo.COMPANIES)} {rng.choice(demo.SUFFIXES)}, "
        f"{rng.randint(5, 20_000):,} employees, {rng.choice(INDUSTRIES)}, "
        f"{rng.choice(demo.SIGNALS)}' -> score {rng.randint(0, 100)}." for _ in range(n))


def _signals(rng: random.Random, n: int) -> str:
    picked = rng.sample(demo.SIGNALS, min(n, len(demo.SIGNALS)))
    return ", ".join(f"{s} ({rng.randint(1, 90)}d)" for s in picked)


def generate(clients: int, per_client: int, seed: int = 1
             ) -> tuple[list[Tier], list[Client], list[Attribute]]:
    """`clients` x `per_client` attributes of about 1,500 characters each
    (Instructions ~780, Examples ~520, Signals ~230); the same seed gives the same data."""
    rng = random.Random(seed)
    tiers = [Tier(k, *v) for k, v in DEFAULT_TIERS.items()]
    out_clients: list[Client] = []
    out_attrs: list[Attribute] = []
    for n in range(1, clients + 1):
        cid = f"C{n:05d}"
        company = f"{demo.COMPANIES[(n - 1) % len(demo.COMPANIES)]} " \
                  f"{demo.SUFFIXES[(n * 7) % len(demo.SUFFIXES)]} {n}"
        first = len(out_attrs)
        for k in range(per_client):
            name = demo.ATTRIBUTES[(k + n) % len(demo.ATTRIBUTES)]
            if k >= len(demo.ATTRIBUTES):
                name += f" {k // len(demo.ATTRIBUTES) + 1}"
            out_attrs.append(Attribute(
                f"{cid}-A{k + 1:03d}", cid, name, rng.random() < 0.85,
                _instructions(rng, rng.randint(7, 11)), _examples(rng, rng.randint(4, 8)),
                _signals(rng, rng.randint(6, 12))))
        # most clients have a negotiated budget near their size (about 4.4 characters
        # a token), so the data set has clients that are ok, in warning and over
        estimate = sum(len(a.instructions) + len(a.examples) + len(a.signals)
                       for a in out_attrs[first:] if a.active) / 4.4
        override = round(estimate * rng.uniform(0.85, 1.6), -2) if rng.random() < 0.7 else None
        out_clients.append(Client(
            cid, company, rng.choices(list(DEFAULT_TIERS), demo.TIER_WEIGHTS)[0],
            token_budget=int(override) if override is not None else None,
            budget_reset_date=TODAY + timedelta(days=rng.randint(1, 28)),
            email=f"ops@client{n}.example", account_manager=rng.choice(demo.MANAGERS)))
    return tiers, out_clients, out_attrs


def cached_db(clients: int, per_client: int, seed: int = 1, data_dir: Path | None = None
              ) -> Path:
    """The SQLite file of a size, built once (texts counted with o200k_base and the
    counts stored, as the app does) and reused by later runs; keyed by size and seed."""
    path = (data_dir or DATA_DIR) / f"{clients}x{per_client}-seed{seed}.db"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    svc = BudgetService(SQLiteStore(str(tmp)), Settings(store=f"sqlite:///{tmp}"))
    svc.load_data_set(LOADER, *generate(clients, per_client, seed))
    del svc  # closes its connection, so the journal can be folded in
    gc.collect()
    with sqlite3.connect(tmp) as conn:  # fold the WAL in: one self-contained file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode = DELETE")
    os.replace(tmp, path)
    return path


def copy_db(src: Path, dst: Path) -> Path:
    """A private copy, for measurements that write."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    return dst
