"""Budget alert emails, composed: who an alert goes to and what it says.

Pure (the dashboard's wording via `core.format_usage`), so the scheduled pass can plan
every email without touching the network; `budget.smtp` delivers them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from . import core
from .model import AttributeCost, Client, Usage

TOP_ATTRIBUTES = 5  # how many of the costliest attributes an alert lists


@dataclass(frozen=True)
class Email:
    to: tuple[str, ...]
    subject: str
    body: str


def recipients(client: Client, policy: str, managers: Mapping[str, str]) -> tuple[str, ...]:
    """The addresses an alert goes to under `policy` (contact, manager or both); an
    account manager given by name is looked up in `managers`."""
    out: list[str] = []
    if policy in ("contact", "both") and "@" in client.email:
        out.append(client.email.strip())
    if policy in ("manager", "both"):
        manager = client.account_manager.strip()
        address = manager if "@" in manager else managers.get(manager.lower(), "")
        if address and address not in out:
            out.append(address)
    return tuple(out)


def compose(usage: Usage, threshold: int, period: date, period_end: date,
            costs: Sequence[AttributeCost], to: Sequence[str]) -> Email:
    """The alert for the highest threshold reached: usage in the dashboard's words and
    the attributes that cost the most (active ones: they are what counts)."""
    name = usage.client.name
    top = sorted((c for c in costs if c.active and c.client_id == usage.client.id),
                 key=lambda c: (-c.total, c.name))[:TOP_ATTRIBUTES]
    lines = [f"{name} has reached {threshold}% of its token budget.", "",
             f"Usage: {core.format_usage(usage.usage, usage.budget)}",
             f"Budget period: {period:%Y-%m-%d} to {period_end:%Y-%m-%d} "
             f"(the budget resets on {period_end:%Y-%m-%d})", ""]
    if usage.usage > usage.budget:
        lines += [f"It is {usage.usage - usage.budget:,} tokens over budget: changes that add "
                  "tokens are refused until attributes are trimmed or the budget is raised.", ""]
    if top:
        lines.append("The attributes that cost the most:")
        lines += [f"  {c.total:>8,} tokens  {c.name}" for c in top]
    return Email(tuple(to), f"[tokenbudget] {name} reached {threshold}% of its token budget",
                 "\n".join(lines) + "\n")
