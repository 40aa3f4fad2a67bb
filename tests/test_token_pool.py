"""Counting on every core: the worker pool counts exactly what the loop counts, is used
above the crossover and not below, starts in a fresh process without forking it (the
Streamlit server's threads make a fork unsafe), survives a killed worker and leaves no
worker behind at exit. No timings here: `make bench` prints them."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest

from budget import token_pool, tokens

ROOT = Path(__file__).resolve().parent.parent
TEXTS = ["Score the lead by intent. " * 40, None, "", "<|endoftext|> kept as text",
         "emoji 🎯 and accents é", "\ud800 lone surrogate", "a"] * 20  # 140 texts


@pytest.fixture
def pool_from_the_first_character(monkeypatch):
    """Thresholds at zero, so any batch goes to the pool; no pool left by an earlier test
    before, the pool stopped after."""
    token_pool.shutdown()
    monkeypatch.setattr(tokens, "BULK_CHARS", 0)
    monkeypatch.setattr(token_pool, "WARM_CROSSOVER_CHARS", 0)
    monkeypatch.setattr(token_pool, "COLD_CROSSOVER_CHARS", 0)
    yield
    token_pool.shutdown()


def loop(texts):
    encode = tokens.get_encoding("o200k_base").encode_ordinary
    return [len(encode(t)) if t else 0 for t in texts]


@pytest.mark.skipif(token_pool.workers() < 2, reason="a pool needs two cores")
def test_the_pool_counts_what_the_loop_counts(pool_from_the_first_character):
    assert not token_pool.running()
    got = tokens.TiktokenCounter("o200k_base").count_many(TEXTS)
    assert token_pool.running()  # the batch went to the pool
    assert got == loop(TEXTS)
    assert tokens.TiktokenCounter("cl100k_base").count_many(TEXTS) == [
        len(tokens.get_encoding("cl100k_base").encode_ordinary(t)) if t else 0 for t in TEXTS]


def test_below_the_crossover_no_pool_starts(monkeypatch):
    token_pool.shutdown()
    c = tokens.TiktokenCounter("o200k_base")
    assert c.count_many(TEXTS) == loop(TEXTS)  # 140 texts, a client's worth: cached
    assert c.cached_texts == 5 and not token_pool.running()
    monkeypatch.setattr(tokens, "BULK_CHARS", 1)  # a bulk batch, far below the pool's
    fresh = tokens.TiktokenCounter("o200k_base")
    assert fresh.count_many(TEXTS) == loop(TEXTS) and fresh.cached_texts == 0  # no keys
    assert not token_pool.running()


def test_a_batch_is_cut_into_pieces_by_its_size(monkeypatch):
    """Near the crossover one piece per worker (a round trip each), a big batch up to
    PIECES_PER_WORKER each, so a worker slowed by other load takes fewer; in order,
    every text once."""
    monkeypatch.setattr(token_pool, "workers", lambda: 2)
    small = [f"text {i} " * 50 for i in range(1_000)]  # about 400,000 characters
    assert [len(p) for p in token_pool.pieces(small)] == [500, 500]
    big = [f"text {i} " * 500 for i in range(20_000)]  # about 80 M characters
    cut = token_pool.pieces(big)
    assert len(cut) == 2 * token_pool.PIECES_PER_WORKER
    assert [t for p in cut for t in p] == big
    mid = big[:2_000]  # about 8 M characters: one piece per PIECE_CHARS
    assert len(token_pool.pieces(mid)) == sum(map(len, mid)) // token_pool.PIECE_CHARS


@pytest.mark.skipif(token_pool.workers() < 2, reason="a pool needs two cores")
def test_a_killed_worker_falls_back_to_the_loop(pool_from_the_first_character):
    pids = token_pool.start("o200k_base")
    os.kill(next(iter(pids)), signal.SIGKILL)
    time.sleep(0.5)
    assert tokens.TiktokenCounter("o200k_base").count_many(TEXTS) == loop(TEXTS)
    assert tokens.TiktokenCounter("o200k_base").count_many(TEXTS) == loop(TEXTS)  # new pool


@pytest.mark.skipif(token_pool.workers() < 2, reason="a pool needs two cores")
def test_a_worker_does_not_run_the_script_that_started_it(pool_from_the_first_character,
                                                          tmp_path, monkeypatch):
    """In the Streamlit server `__main__` is the app script being run; a spawned worker
    that imported it would run the whole app (here: leave a file behind, or fail)."""
    marker = tmp_path / "the app ran in a worker"
    script = tmp_path / "app.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\nraise SystemExit(3)\n")
    page = types.ModuleType("__main__")
    page.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", page)
    assert tokens.TiktokenCounter("o200k_base").count_many(TEXTS) == loop(TEXTS)
    assert token_pool.running()  # counted by the pool, not by the loop after it broke
    assert not marker.exists()
    assert sys.modules["__main__"] is page  # the page's module given back


SCRIPT = textwrap.dedent("""
    import json, os, sys, threading
    from budget import token_pool, tokens

    forks = []
    os.register_at_fork(before=lambda: forks.append(os.getpid()))

    if __name__ == "__main__":
        # a server's threads are running, as in Streamlit, when the pool starts
        stop = threading.Event()
        threading.Thread(target=stop.wait, daemon=True).start()
        texts = [f"lead {i} " * (1 + i % 50) for i in range(30_000)]
        token_pool.COLD_CROSSOVER_CHARS = tokens.BULK_CHARS = 1
        got = tokens.TiktokenCounter("o200k_base").count_many(texts)
        enc = tokens.get_encoding("o200k_base").encode_ordinary
        pids = token_pool.start("o200k_base")
        print(json.dumps({"equal": got == [len(enc(t)) for t in texts], "forks": forks,
                          "pool": token_pool.running(), "workers": sorted(pids),
                          "context": token_pool._pool._mp_context.get_start_method()}))
        stop.set()
""")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is gone but for its exit status
        return f.read().split()[2] != "Z"


@pytest.mark.skipif(token_pool.workers() < 2, reason="a pool needs two cores")
def test_a_fresh_process_counts_on_every_core_without_forking_and_exits_cleanly(tmp_path):
    script = tmp_path / "count.py"
    script.write_text(SCRIPT)
    out = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # no warning about leaked processes or semaphores
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["equal"] and got["pool"] and got["context"] == "spawn"
    assert got["forks"] == []  # workers are fresh interpreters, never forks of the server
    assert len(got["workers"]) == token_pool.workers()
    assert not any(alive(pid) for pid in got["workers"])  # shut down at exit
