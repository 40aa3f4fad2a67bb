"""The counting pool (budget/token_pool.py): its start-up in a fresh process, the first
full count there (start-up included, as a server's first load pays it), peak memory of
the caller and of one worker, and the crossover: the smallest batch that the running
pool counts faster than one loop, which token_pool's thresholds are set from."""

from __future__ import annotations

import time

from budget import token_pool, tokens
from budget.stores import SQLiteStore

from .data import ENCODING
from .harness import in_child, interleaved, peak_rss_mib
from .row import Row
from .size import SizeRun

SECTION = "pool"
LADDER = (10, 25, 50, 100, 200, 400, 800, 1_600, 3_200)  # attributes per batch
WHY_MISSED = "Why: the pool's rows have no targets; they are what the counting targets rest on."


def _worker_peak(_: int) -> float:
    """In a worker: its peak resident memory."""
    return peak_rss_mib()


def child(path: str) -> dict[str, float]:
    """In a fresh process: the first full count of the data set (the pool starts inside
    it when the batch pays for that), then the pool's start-up alone after a shutdown,
    and peak memory here and in a worker."""
    attrs = SQLiteStore(path).attributes()
    texts = [t for a in attrs for t in (a.instructions, a.examples, a.signals)]
    tokens.get_encoding(ENCODING)  # the caller's own tokenizer is loaded at start
    t0 = time.perf_counter()
    tokens.TiktokenCounter(ENCODING).count_many(texts)
    first = time.perf_counter() - t0
    started_by_count = token_pool.running()
    token_pool.shutdown()
    t0 = time.perf_counter()
    token_pool.start(ENCODING)
    startup = time.perf_counter() - t0
    token_pool.lengths(ENCODING, texts)
    worker_peak = max(token_pool._started(ENCODING).map(_worker_peak, range(
        2 * token_pool.workers())))
    return {"first": first, "started_by_count": float(started_by_count),
            "startup": startup, "peak": peak_rss_mib(), "worker_peak": worker_peak}


def crossover(texts: list[str]) -> tuple[int | None, dict[int, float]]:
    """The smallest rung of LADDER (attributes) from which the running pool counts
    faster than the loop, rounds alternating; and pool / loop at every rung."""
    enc = tokens.get_encoding(ENCODING).encode_ordinary
    token_pool.start(ENCODING)
    ratios: dict[int, float] = {}
    for n in (n for n in LADDER if 3 * n <= len(texts)):
        batch = texts[:3 * n]
        t = interleaved({"loop": lambda b=batch: [len(enc(x)) for x in b],
                         "pool": lambda b=batch: token_pool.lengths(ENCODING, b)},
                        {"loop": 5, "pool": 5}).wall
        ratios[n] = t["pool"] / t["loop"]
    wins = [n for n, r in ratios.items() if r < 1 and all(
        ratios[m] < 1 for m in ratios if m > n)]
    return (min(wins) if wins else None), ratios


def rows(run: SizeRun) -> list[Row]:
    """Start-up, the first count, memory, and the crossover with its ladder."""
    fresh = in_child(child, run.db)
    chars_per_attr = sum(map(len, run.texts)) / run.attributes
    at, ratios = crossover(run.texts)
    ladder = ", ".join(f"{n:,}: {r:.2f}" for n, r in ratios.items())
    out = [
        run.row(SECTION, f"pool start-up, {token_pool.workers()} workers, fresh process",
                fresh["startup"], "s"),
        run.row(SECTION, "first full count in a fresh process ("
                + ("pool started inside it" if fresh["started_by_count"] else "one loop")
                + ")", fresh["first"], "s"),
        run.row(SECTION, "peak RSS of the counting process", fresh["peak"], "MiB"),
        run.row(SECTION, "peak RSS of one worker", fresh["worker_peak"], "MiB"),
    ]
    if at is not None:
        out.append(run.row(
            SECTION, f"crossover, running pool (~{at * chars_per_attr:,.0f} chars; "
                     f"pool / loop by attributes: {ladder})", at, "attributes"))
    else:
        out.append(run.row(SECTION, f"crossover above the ladder (pool / loop: {ladder})",
                           max(ratios, default=0), "attributes"))
    return out
