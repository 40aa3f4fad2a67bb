"""Token counting: our counter, with a fresh cache, against the raw tiktoken paths on
the same texts in the same run. Ours must stay within COUNT_TARGET of the fastest raw
path: the cache may cost a little on a full recount, never a lot."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from budget import tokens

from .data import ENCODING
from .harness import Timings, best, interleaved, repeats
from .row import Row
from .size import SizeRun

SECTION = "counting"
COUNT_TARGET = 1.1  # our full recount / fastest raw tiktoken path
OURS = "ours: budget.tokens counter, fresh cache"
LOOP = "tiktoken encode_ordinary loop"
# rounds of the two paths whose ratio is COUNT_TARGET: one round of the same path varies
# by a quarter on this machine, and a round at 100,000 attributes takes about 10 s
RATIO_ROUNDS = {800: 10, 20_000: 10, 100_000: 6}  # up to this many attributes: rounds
WHY_MISSED = (
    "Why: ours runs the same per-text encode_ordinary loop plus, per text, the cache key "
    "(a blake2b digest of the UTF-8 bytes: its own row, about 4 % of the encoding), "
    "three dict operations and a method call. Rounds of one path vary by up to a quarter "
    "on this machine, but that does not explain all of it: at 20,000 attributes ours "
    "was 1.16x to 1.33x in four of five full runs on a quiet machine, 1.10x in a run "
    "of the counting section alone, and 0.98x in a standalone script, so the state of "
    "the process (Streamlit loaded by the smaller size's page renders) weighs on ours "
    "more than on the plain loop; the cause is not found yet. What would close it (in "
    "budget/tokens.py, not changed here): counting without the key and cache when every "
    "text is new (a full recount), and finding what the process state costs ours.")


def rounds_for_ratio(attributes: int) -> int:
    """Rounds of the loop and ours at a size (RATIO_ROUNDS)."""
    return next((v for k, v in RATIO_ROUNDS.items() if attributes <= k),
                min(RATIO_ROUNDS.values()))


def measure(texts: Sequence[str], repeat: int, ratio_rounds: int) -> Timings[int]:
    """Each path's full count of `texts`: the best of `repeat` rounds, and of at least
    `ratio_rounds` for the loop and ours, whose ratio is the target. Stops the run when
    the tiktoken paths disagree on the total, since then one of them is not counting
    what the others count."""
    enc = tokens.get_encoding(ENCODING)
    cores = os.cpu_count() or 1
    paths: dict[str, Callable[[], int]] = {
        LOOP: lambda: sum(len(enc.encode_ordinary(t)) for t in texts),
        "tiktoken encode_ordinary_batch, 1 thread": lambda: sum(
            map(len, enc.encode_ordinary_batch(list(texts), num_threads=1))),
        f"tiktoken encode_ordinary_batch, {cores} threads": lambda: sum(
            map(len, enc.encode_ordinary_batch(list(texts), num_threads=cores))),
        OURS: lambda: sum(tokens.TiktokenCounter(ENCODING).count_many(texts)),
        "chars4 counter, fresh cache": lambda: sum(tokens.Chars4Counter().count_many(texts)),
    }
    ratio = max(repeat, ratio_rounds)
    timings = interleaved(paths, {k: ratio if k in (LOOP, OURS) else repeat for k in paths})
    tiktoken_totals = {v for k, v in timings.results.items() if not k.startswith("chars4")}
    if len(tiktoken_totals) != 1:
        raise AssertionError(f"token paths disagree: {timings.results}")
    return timings


def rows(run: SizeRun) -> list[Row]:
    """Every path's time and speed, the cache keys' share, and ours against the fastest
    raw path, in wall and in CPU time; leaves ours for the incremental section."""
    texts, n = run.texts, run.attributes
    timings = measure(texts, repeats(n), rounds_for_ratio(n))
    times, cpu = timings.wall, timings.cpu
    raw = {k: v for k, v in times.items() if k.startswith("tiktoken")}
    fastest = min(raw, key=raw.__getitem__)
    run.full_recount_s = times[OURS]
    chars = sum(map(len, texts))
    out = [run.row(SECTION, f"{name} ({chars / sec / 1e6:,.1f} M chars/s)", sec, "s")
           for name, sec in times.items()]
    keys, _ = best(lambda: [tokens._digest(t) for t in texts], repeats(n))
    out += [
        run.row(SECTION, "of ours: the cache keys alone (blake2b of every text)", keys, "s"),
        run.row(SECTION, f"ours / fastest raw ({fastest.removeprefix('tiktoken ')})",
                times[OURS] / raw[fastest], "x", COUNT_TARGET, "<="),
        run.row(SECTION, "the same in CPU time (leaves out waits for other processes)",
                cpu[OURS] / cpu[fastest], "x"),
    ]
    return out
