"""One size of the benchmark: its data set, loaded once and shared by every section
measured on it, and the rows those sections report.

The data set stays loaded for the whole size, as in a server holding its data, so
the sections that run in this process see the same heap whichever of them are chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from budget.model import Attribute
from budget.stores import SQLiteStore

from .data import cached_db
from .row import Row

TARGET_ATTRIBUTES = 100_000  # the size the targets are judged at


def label(clients: int, per_client: int) -> str:
    """How a size is named in the table: "2,000 x 50"."""
    return f"{clients:,} x {per_client:,}"


@dataclass
class SizeRun:
    """The data set of one size and what one section leaves for a later one."""
    clients: int
    per_client: int
    db: Path  # the SQLite file of the data set, counts stored; copy it before writing
    workdir: Path  # scratch space for copies and sidecars, removed after the run
    store: SQLiteStore
    attrs: list[Attribute]
    texts: list[str]  # three per attribute, in the store's order
    # the full recount by our counter (counting), which the incremental section is
    # judged against; None when counting did not run
    full_recount_s: float | None = None

    @classmethod
    def load(cls, clients: int, per_client: int, seed: int, workdir: Path,
             data_dir: Path | None = None) -> SizeRun:
        """The size's data set, built into `data_dir` on first use and then reused."""
        db = cached_db(clients, per_client, seed, data_dir=data_dir)
        store = SQLiteStore(str(db))
        attrs = store.attributes()
        texts = [t for a in attrs for t in (a.instructions, a.examples, a.signals)]
        return cls(clients, per_client, db, workdir, store, attrs, texts)

    @property
    def attributes(self) -> int:
        """How many attributes the data set holds."""
        return self.clients * self.per_client

    @property
    def label(self) -> str:
        """The size as the table names it."""
        return label(self.clients, self.per_client)

    def at_target_size(self, limit: float) -> float | None:
        """`limit` where this size is the one targets are judged at, else no target:
        fixed costs dominate a small data set, so its shares say nothing about scale."""
        return limit if self.attributes >= TARGET_ATTRIBUTES else None

    def row(self, section: str, measure: str, value: float, unit: str,
            limit: float | None = None, op: str = "<") -> Row:
        """A row of this size."""
        return Row(self.label, self.attributes, section, measure, value, unit, limit, op)
