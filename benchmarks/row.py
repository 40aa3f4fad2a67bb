"""One reported figure: what was measured, at which size, and the target it is judged
against, so the table, the summary and the list of missed targets all read the same
record."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """A figure and its target; `op` says how the value must compare with `limit`."""
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
        """The value in its unit, as printed."""
        return self._fmt(self.value)

    @property
    def target(self) -> str:
        """The target as printed ("<= 1.100x"), empty where the row has none."""
        return "" if self.limit is None else f"{self.op} {self._fmt(self.limit)}"

    @property
    def met(self) -> bool | None:
        """Whether the target is met; None where the row has no target."""
        if self.limit is None:
            return None
        return {"<": self.value < self.limit, "<=": self.value <= self.limit,
                "=": self.value == self.limit}[self.op]

    @property
    def verdict(self) -> str:
        """The table's last column: a missed target stands out."""
        return "" if self.met is None else ("met" if self.met else "**MISSED**")

    @property
    def shortfall(self) -> str:
        """By how much a missed target is missed."""
        assert self.limit is not None
        diff = self.value - self.limit
        share = f" ({diff / self.limit:+.0%})" if self.limit else ""
        return f"{self._fmt(abs(diff))} {'over' if diff > 0 else 'under'}{share}"
