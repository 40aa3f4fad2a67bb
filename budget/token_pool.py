"""Counting many texts on every core: a pool of worker processes, one per core, started
at the first batch big enough to pay for it and reused for every later one.

tiktoken's encoder holds the GIL, so threads do not help; processes do. A worker is
*spawned* (a fresh interpreter), never forked: the caller may be the Streamlit server,
whose event loop and session threads can hold a lock at the moment of a fork and leave
the child waiting for it forever. 'forkserver' would avoid that too, but forks every
worker from a server process that is itself started at first use; 'spawn' is one
step, behaves the same on every platform, and a worker's start-up (an interpreter,
tiktoken and one BPE table) is paid once per process anyway.

Below the crossover, the pool's round trips cost more than they save and the caller
counts in its own loop; `make bench` measures both thresholds (benchmarks/pool.py).
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

CONTEXT = "spawn"
# Characters in one batch from which the running pool counts faster than one loop
# (benchmarks/pool.py, "crossover"): 200 attributes of 1,500 characters in two runs,
# 400 in a third under more load; one worker's round trip costs about a millisecond.
WARM_CROSSOVER_CHARS = 500_000
# Characters in one batch that pay for starting the pool as well. Measured in a fresh
# process: at 20,000 attributes (30 M characters) the count with the start-up took
# 4.4 to 5.7 s against 2.1 s for one loop, since the workers' imports compete with the
# caller for the two cores; at 100,000 (150 M) 6.3 s against 9.7 s. Between the two.
COLD_CROSSOVER_CHARS = 75_000_000
CHUNKS_PER_WORKER = 4  # pieces per worker, so one slow worker does not hold up the rest

_pool: ProcessPoolExecutor | None = None
_lock = threading.Lock()


def workers() -> int:
    """One worker per core."""
    return os.cpu_count() or 1


def running() -> bool:
    """Whether this process has started its pool (and not shut it down)."""
    return _pool is not None


def _chunk_lengths(encoding: str, texts: list[str]) -> list[int]:
    """In a worker: the token count of each text (the worker loads the encoding once)."""
    from budget.tokens import get_encoding

    encode = get_encoding(encoding).encode_ordinary
    return [len(encode(t)) if t else 0 for t in texts]


def _usable() -> bool:
    """A pool helps with more than one core, and a daemonic process (itself a pool
    worker somewhere) may not start children."""
    return workers() > 1 and not multiprocessing.current_process().daemon


def worth_it(chars: int) -> bool:
    """Whether a batch of `chars` characters is counted faster by the pool, counting
    its start-up where it is not running yet."""
    if not _usable():
        return False
    return chars >= (WARM_CROSSOVER_CHARS if _pool is not None else COLD_CROSSOVER_CHARS)


def _load(encoding: str) -> None:
    """A worker's start: the encoding of the batch that started the pool, loaded before
    its first piece (others load at their first piece)."""
    from budget.tokens import get_encoding

    get_encoding(encoding)


def _started(encoding: str) -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(workers(), mp_context=multiprocessing.get_context(
                CONTEXT), initializer=_load, initargs=(encoding,))
        return _pool


def _pid_after(seconds: float) -> int:
    """In a worker: its process id, after a pause long enough for every worker to take
    a piece."""
    time.sleep(seconds)
    return os.getpid()


def lengths(encoding: str, texts: Sequence[str | None]) -> list[int] | None:
    """The token count of each text, counted on every core; None when the pool broke
    (a worker killed), so the caller counts in its own loop instead."""
    pool = _started(encoding)
    items = [t or "" for t in texts]
    size = max(1, -(-len(items) // (workers() * CHUNKS_PER_WORKER)))
    chunks = [items[i:i + size] for i in range(0, len(items), size)]
    try:
        parts = list(pool.map(_chunk_lengths, [encoding] * len(chunks), chunks))
    except BrokenProcessPool:
        shutdown()
        return None
    return [n for part in parts for n in part]


def start(encoding: str) -> set[int]:
    """Starts the pool and waits until every worker has loaded `encoding`, so a caller
    that knows a bulk count is coming (or a benchmark) pays the start-up up front; the
    workers' process ids."""
    pool, pids = _started(encoding), set[int]()
    while len(pids) < workers():
        pids |= set(pool.map(_pid_after, [0.05] * workers()))
    return pids


@atexit.register
def shutdown() -> None:
    """Stops the workers and waits for them; a later bulk count starts a new pool."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
