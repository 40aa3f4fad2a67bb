"""Counting many texts on every core: a pool of worker processes, one per core, started
at the first batch big enough to pay for it and reused for every later one.

tiktoken's encoder holds the GIL, so threads do not help; processes do. A worker is
*spawned* (a fresh interpreter), never forked: the caller may be the Streamlit server,
whose event loop and session threads can hold a lock at the moment of a fork and leave
the child waiting for it forever. 'forkserver' would avoid that too, but forks every
worker from a server process that is itself started at first use; 'spawn' is one
step, behaves the same on every platform, and a worker's start-up (an interpreter,
tiktoken and one BPE table) is paid once per process anyway.

A spawned worker normally imports the parent's `__main__` first. In the Streamlit
server that module is the app script itself (Streamlit runs each page as `__main__`),
so every worker would run the whole app; workers are therefore launched with a bare
`__main__` in place, and no entry point needs an `if __name__ == "__main__"` guard.

Below the crossover, the pool's round trips cost more than they save and the caller
counts in its own loop; `make bench` measures both thresholds (benchmarks/pool.py).
"""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.context
import os
import sys
import threading
import time
import types
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

# Characters in one batch from which the running pool counts faster than one loop
# (benchmarks/pool.py, "crossover"): 200 attributes of 1,500 characters in two runs,
# 400 in a third under more load; one worker's round trip costs about a millisecond.
WARM_CROSSOVER_CHARS = 500_000
# Characters in one batch that pay for starting the pool as well. Measured in a fresh
# process: at 20,000 attributes (30 M characters) the count with the start-up took
# 4.4 to 5.7 s against 2.1 s for one loop, since the workers' imports compete with the
# caller for the two cores; at 100,000 (150 M) 6.3 s against 9.7 s. Between the two.
COLD_CROSSOVER_CHARS = 75_000_000
# A batch is cut into pieces that the workers take in turn, so a worker slowed by other
# load takes fewer and both finish together; the last piece is what one worker may still
# be counting when the other is done. At 100,000 attributes, 16 pieces per worker counted
# 7-9% faster than 4 (3 alternating rounds: 2.97 s against 3.20 s at best). A piece
# is at least PIECE_CHARS (about 0.1 s of encoding), against which a round trip (about a
# millisecond) is lost, so a batch near the crossover goes in one piece per worker.
PIECES_PER_WORKER = 16
PIECE_CHARS = 2_000_000



class _WorkerProcess(multiprocessing.context.SpawnProcess):
    """A spawned worker that does not import the parent's `__main__` (see above)."""

    @staticmethod
    def _Popen(process_obj):
        main, bare = sys.modules.get("__main__"), types.ModuleType("__main__")
        sys.modules["__main__"] = bare  # read while the worker's start is prepared
        try:
            return multiprocessing.context.SpawnProcess._Popen(process_obj)
        finally:  # unless a script run in another thread has put its own in meanwhile
            if main is not None and sys.modules.get("__main__") is bare:
                sys.modules["__main__"] = main


class _WorkerContext(multiprocessing.context.SpawnContext):
    Process = _WorkerProcess


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
            _pool = ProcessPoolExecutor(workers(), mp_context=_WorkerContext(),
                                        initializer=_load, initargs=(encoding,))
        return _pool


def _pid_after(seconds: float) -> int:
    """In a worker: its process id, after a pause long enough for every worker to take
    a piece."""
    time.sleep(seconds)
    return os.getpid()


def pieces(texts: list[str]) -> list[list[str]]:
    """`texts` cut, in order, into the pieces the workers take in turn: one per worker
    for a batch near the crossover, up to PIECES_PER_WORKER each for a big one."""
    n = min(workers() * PIECES_PER_WORKER, max(workers(), sum(map(len, texts)) // PIECE_CHARS))
    size = max(1, -(-len(texts) // n))
    return [texts[i:i + size] for i in range(0, len(texts), size)]


def lengths(encoding: str, texts: Sequence[str | None]) -> list[int] | None:
    """The token count of each text, counted on every core; None when the pool broke
    (a worker killed), so the caller counts in its own loop instead."""
    pool = _started(encoding)
    chunks = pieces([t or "" for t in texts])
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
