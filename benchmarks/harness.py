"""How a figure is measured: the best of a few rounds, rounds of competing paths
interleaved in alternating order, peak memory, and a fresh process for measurements
that the benchmark's own heap would distort.

The machine is shared and one round of the same path varies by up to a quarter, so a
single timing says little; the best of several, taken while the competitors run in
between, says what the code costs when nothing else gets in the way.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

ROOT = Path(__file__).resolve().parent.parent  # the project: app.py, `-m benchmarks...`
R = TypeVar("R")


def best(fn: Callable[[], R], repeat: int) -> tuple[float, R]:
    """(shortest wall time of `repeat` calls, the last result): the shortest, because
    other work on the machine only ever adds time."""
    times: list[float] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def repeats(attributes: int) -> int:
    """Rounds for a size: fewer as the data grows, since one round at 100,000
    attributes takes seconds and the spread between rounds shrinks with the length."""
    return 5 if attributes <= 1_000 else 2 if attributes <= 20_000 else 1


@dataclass(frozen=True)
class Timings(Generic[R]):
    """Best wall and CPU seconds of each path, and the result of its last call."""
    wall: dict[str, float]
    cpu: dict[str, float]
    results: dict[str, R]


def interleaved(paths: Mapping[str, Callable[[], R]], rounds: Mapping[str, int]
                ) -> Timings[R]:
    """Runs every path `rounds[name]` times, one round of each path after the other, in
    alternating order, so that a burst of load on the machine does not land on one path
    only and no path is always first. CPU time leaves out the waits for other processes'
    turns, which wall time includes."""
    times: dict[str, list[float]] = {k: [] for k in paths}
    cpu: dict[str, list[float]] = {k: [] for k in paths}
    results: dict[str, R] = {}
    for round_ in range(max(rounds.values(), default=0)):
        order = list(paths.items())
        for name, fn in order if round_ % 2 == 0 else reversed(order):
            if round_ >= rounds[name]:
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            results[name] = fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return Timings({k: min(v) for k, v in times.items()},
                   {k: min(v) for k, v in cpu.items()}, results)


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


def in_child(fn: Callable[[str], dict[str, float]], path: Path | str) -> dict[str, float]:
    """`fn(path)`, a module-level function, in a fresh Python process (benchmarks.child)
    as a server would run it, its figures read back as JSON: the benchmark's
    own process holds every text and attribute of the data set, and a garbage
    collection walking those would be charged to whatever runs when it falls."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.child",
                          f"{fn.__module__}:{fn.__qualname__}", str(path)],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
