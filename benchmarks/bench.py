"""`make bench`: times what matters at 800, 20,000 and 100,000 attributes and writes
benchmarks/results.md.

Each comparison is made in the same run, on the same texts, in this order:
1. token counting: our counter (fresh cache) against the fastest raw tiktoken path,
   the raw loop on every core among them; the worker pool's start-up, crossover and
   memory;
2. incremental recount: one attribute edited through the service, against (1);
3. load and usage of every client from SQLite, with peak memory (2 and 3 each in a
   fresh process, as a server would run them), then from PostgreSQL beside SQLite;
4. Airtable requests to load N records and to write M updates (loopback fake), then
   what each situation of the mirror costs, its size on disk and the validation's data age;
5. server-side render time of the Overview and Client pages (Streamlit AppTest);
6. the pages in headless Chromium, until drawn, against a minimal reference page.

Figures are the best of a few runs (fewer at 100,000 attributes); the machine's load
is printed with them, because other work on it slows everything measured. The method
behind each figure is in benchmarks/notes.md, which results.md ends with.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import (airtable_mirror, airtable_requests, browser, counting, incremental, pages,
               pool, postgres_load, store_load)
from .report import RESULTS, load_avg, progress_line, summary_table, write_results
from .row import Row
from .size import SizeRun, label

SIZES: dict[str, tuple[int, int]] = {"small": (40, 20), "medium": (1_000, 20),
                                     "large": (2_000, 50)}
NOTES = Path(__file__).resolve().parent / "notes.md"


@dataclass(frozen=True)
class Section:
    """A benchmark: the rows it reports for a size, and why its target can be missed
    and what would close it, from what the figures show."""
    rows: Callable[[SizeRun], list[Row]]
    why_missed: str


# in the order they run: incremental reports its share of counting's full recount
SECTIONS: dict[str, Section] = {m.SECTION: Section(m.rows, m.WHY_MISSED) for m in (
    counting, pool, incremental, store_load, postgres_load, airtable_requests,
    airtable_mirror, pages, browser)}
WHY_MISSED = {name: s.why_missed for name, s in SECTIONS.items()}


def run_size(clients: int, per_client: int, seed: int, workdir: Path,
             sections: Sequence[str] = tuple(SECTIONS), data_dir: Path | None = None,
             log: Callable[[str], None] = print) -> list[Row]:
    """The rows of the chosen sections at one size, each logged as it is measured."""
    run = SizeRun.load(clients, per_client, seed, workdir, data_dir)
    rows: list[Row] = []
    for name, section in SECTIONS.items():
        if name in sections:
            for row in section.rows(run):
                log(progress_line(row))
                rows.append(row)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the chosen sizes and sections, prints the targets of the largest size and
    writes the report; 0 when every section ran (a missed target is a figure, not a
    failure)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="small,medium,large",
                   help=f"comma-separated, of {', '.join(SIZES)}")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated, of {', '.join(SECTIONS)}")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--notes", type=Path, default=NOTES,
                   help="text appended to the results (the analysis of missed targets)")
    args = p.parse_args(argv)
    sections = [s for s in args.sections.split(",") if s]
    started = datetime.now(UTC)
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
    write_results(rows, started, load_before, load_after, notes, WHY_MISSED, args.out)
    largest = max((r.attributes for r in rows), default=0)
    print(summary_table([r for r in rows if r.attributes == largest]))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
