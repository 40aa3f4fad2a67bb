"""Tables the pages show, built from the service's results: pandas, no Streamlit.

Formatting for people lives here too, so every page says numbers the same way."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from urllib.parse import quote

import pandas as pd

from .core import format_usage
from .model import Attribute, AttributeCost, Tier, Usage

STATUS_COLOURS = {"ok": "#2e7d32", "warning": "#ed6c02", "exceeded": "#c62828"}
STATUS_LABELS = {"ok": "🟢 ok", "warning": "🟠 warning", "exceeded": "🔴 exceeded"}


def usage_frame(report: Sequence[Usage], tiers: dict[int, Tier]) -> pd.DataFrame:
    """One row per client, sorted with the client closest to its limit first."""
    rows = [{
        "client_id": u.client.id, "client": u.client.name,
        "tier": tiers[u.client.service_level].name if u.client.service_level in tiers
        else f"Level {u.client.service_level}",
        "service_level": u.client.service_level, "usage": u.usage, "budget": u.budget,
        "remaining": u.remaining, "percent_used": u.percent_used, "status": u.status,
        "status_label": STATUS_LABELS[u.status], "next_reset": u.client.budget_reset_date,
        "account_manager": u.client.account_manager, "stored_usage": u.client.token_usage,
        "drifted": u.drifted, "attributes": u.attributes, "active_attributes": u.active_attributes,
    } for u in report]
    frame = pd.DataFrame(rows, columns=[
        "client_id", "client", "tier", "service_level", "usage", "budget", "remaining",
        "percent_used", "status", "status_label", "next_reset", "account_manager",
        "stored_usage", "drifted", "attributes", "active_attributes"])
    return frame.sort_values(["percent_used", "client"], ascending=[False, True],
                             ignore_index=True)


def remaining_text(remaining: int) -> str:
    """'1,250' left, or 'over by 1,250': a minus sign is easy to miss in a table."""
    return f"over by {-remaining:,}" if remaining < 0 else f"{remaining:,}"


def client_label(client_id: str, name: str) -> str:
    """'Acme Energy 1 (C00001)': a client as a list to choose from names it, the id
    telling apart two clients of the same name."""
    return f"{name} ({client_id})"


def counted(n: int, word: str, plural: str | None = None) -> str:
    """'1 attribute', '24 attributes': a count with its noun, never '1 attributes'."""
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


def field_tokens_text(before: int, after: int) -> str:
    """'1,234 tokens (+56 from 1,178)' under a text being edited, or '1,178 tokens'."""
    change = f" ({after - before:+,} from {before:,})" if after != before else ""
    return counted(after, "token") + change


def count_text(n: object) -> str:
    """'12,345', or a dash where there is no figure (never 'None' or 'nan')."""
    return "—" if n is None or pd.isna(n) else f"{int(n):,}"  # type: ignore[call-overload]


def usage_figure(used: int, limit: int) -> str:
    """'5,727 / 6,000': the usage-against-budget figure of a table cell."""
    return f"{used:,} / {limit:,}"


@lru_cache(maxsize=4096)  # a few hundred (percent, status) pairs draw every row of a table
def usage_bar(percent: int, status: str) -> str:
    """A bar of `percent` (full at the budget) in the status colour with the figure next
    to it, as an SVG data URL for an image column: a table's own progress bar has one
    colour per column, not one per row. The zero-padded percent comes first in the URL,
    so sorting the column sorts by percent."""
    width = min(max(percent, 0), 100) * 0.6
    svg = (f"<svg xmlns='http://www.w3.org/2000/svg' data-percent='{percent:05d}' "
           "width='108' height='32' viewBox='0 0 108 32'>"  # a table row's proportions
           "<rect x='0' y='11' width='60' height='10' rx='3' fill='#e0e0e0'/>"
           f"<rect x='0' y='11' width='{width:.1f}' height='10' rx='3' "
           f"fill='{STATUS_COLOURS[status]}'/>"
           "<text x='66' y='20.5' font-family='sans-serif' font-size='13' "
           f"fill='#31333f'>{percent:,}%</text></svg>")
    return "data:image/svg+xml;utf8," + quote(svg)


def usage_display(frame: pd.DataFrame) -> pd.DataFrame:
    """`usage_frame` with the cells a person reads: figure, coloured bar, remaining as
    'over by N', and a dash where a date or a name is missing (never 'None')."""
    return frame.assign(
        figure=[usage_figure(u, b) for u, b in zip(frame["usage"], frame["budget"], strict=True)],
        bar=[usage_bar(p, s) for p, s in zip(frame["percent_used"], frame["status"],
                                             strict=True)],
        remaining_text=frame["remaining"].map(remaining_text),
        next_reset_text=frame["next_reset"].map(lambda d: f"{d:%Y-%m-%d}" if pd.notna(d) else "—"),
        manager=frame["account_manager"].map(lambda m: m if pd.notna(m) and m else "—"))


DISPLAY_COLUMNS = ["figure", "bar", "remaining_text", "next_reset_text", "manager"]


def filter_usage(frame: pd.DataFrame, search: str = "", tiers: Sequence[str] = (),
                 statuses: Sequence[str] = ()) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    if search:
        mask &= (frame["client"].str.contains(search, case=False, regex=False)
                 | frame["client_id"].str.contains(search, case=False, regex=False))
    if tiers:
        mask &= frame["tier"].isin(tiers)
    if statuses:
        mask &= frame["status"].isin(statuses)
    return frame[mask]


def attribute_frame(attrs: Sequence[Attribute], costs: Sequence[AttributeCost]) -> pd.DataFrame:
    """The attribute library: tokens per field and in total, and share of usage."""
    by_id = {c.id: c for c in costs}
    used = sum(c.total for c in costs if c.active)
    rows = []
    for a in attrs:
        t = by_id[a.id].tokens
        rows.append({"attribute_id": a.id, "name": a.name, "active": a.active,
                     "instructions": t.instructions, "examples": t.examples,
                     "signals": t.signals, "tokens": t.total,
                     "share": round(100.0 * t.total / used, 1) if a.active and used else 0.0,
                     "version": a.version})
    frame = pd.DataFrame(rows, columns=["attribute_id", "name", "active", "instructions",
                                        "examples", "signals", "tokens", "share", "version"])
    return frame.sort_values(["active", "tokens"], ascending=[False, False], ignore_index=True)


def label(name: str) -> str:
    """'budget_override' -> 'Budget override', 'attribute.update' -> 'Attribute
    update': a stored key as a person reads it."""
    return name.replace("_", " ").replace(".", " ").capitalize()


def headline(u: Usage) -> str:
    return f"Token Usage: {format_usage(u.usage, u.budget)}"


def status_message(u: Usage) -> str | None:
    """The line under the headline, in the wording account managers repeat to clients."""
    if u.status == "warning":
        return f"Warning: Only {u.remaining:,} tokens remaining"
    if u.status == "exceeded":
        return "Budget exceeded. Please deactivate attributes or upgrade plan."
    return None


def usage_row(u: Usage) -> dict:
    """The keys of `usage --json`, shared with the HTTP API."""
    c = u.client
    return {"client_id": c.id, "name": c.name, "service_level": c.service_level,
            "budget": u.budget, "usage": u.usage, "remaining": u.remaining,
            "percent_used": u.percent_used, "status": u.status,
            "budget_reset_date": c.budget_reset_date.isoformat() if c.budget_reset_date else None}
