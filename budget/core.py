"""Budget arithmetic: pure functions over the model, the contract every part agrees on:
usage, budget, status, validation, percent used and period dates."""

from __future__ import annotations

import calendar
import heapq
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, date, datetime

from .model import (AttributeCost, BadInput, Change, Client, FieldTokens, Status, Tier, Usage,
                    Validation)

DEFAULT_WARNING = 0.8
MAX_WHOLE = 2**63 - 1  # the largest whole number SQLite and PostgreSQL can store


def brief(text: str, most: int = 40) -> str:
    """A typed value as a message quotes it: in full when short, else its start and its
    length (a pasted 200,000-character text is not repeated back)."""
    return text if len(text) <= most else f"{text[:most - 10]}… ({len(text):,} characters)"


def _shown(value: object) -> str:
    return brief(repr(value)) if not isinstance(value, str) else repr(brief(value))


def whole_number(record: str, field: str, value: object, low: int = 0,
                 high: int = MAX_WHOLE) -> int:
    """A whole number from an int or its decimal text, from `low` to `high`: what every
    door (page, CLI, API) hands the service as typed, so a figure is refused with a
    message naming record and field instead of being rounded, clamped, or failing
    inside the store (SQLite holds 64 bits; int() stops at 4,300 digits)."""
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise BadInput(record, field, f"must be a whole number, got {_shown(value)}")
        digits = text.lstrip("+-").lstrip("0")
        if len(digits) > len(str(high)):
            raise BadInput(record, field, f"must be from {low} to {high:,}, got a "
                                          f"{len(digits):,}-digit number")
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(record, field, f"must be a whole number, got {_shown(value)}")
    if value < low:
        raise BadInput(record, field, ("must not be negative" if low == 0
                                       else f"must be at least {low}") + f", got {value}")
    if value > high:
        raise BadInput(record, field, f"must be at most {high:,}")
    return value


def usage(costs: Iterable[AttributeCost], client_id: str) -> int:
    """Sum of attribute tokens over one client's active attributes."""
    return sum(c.total for c in costs if c.active and c.client_id == client_id)


def usage_by_client(costs: Iterable[AttributeCost]) -> dict[str, tuple[int, int, int]]:
    """client id -> (usage, attributes, active attributes) in one pass."""
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for c in costs:
        row = acc[c.client_id]
        row[1] += 1
        if c.active:
            row[0] += c.total
            row[2] += 1
    return {k: (v[0], v[1], v[2]) for k, v in acc.items()}


def top_costs(costs: Iterable[AttributeCost], n: int,
              client_ids: Collection[str] | None = None) -> list[AttributeCost]:
    """The active attributes (of `client_ids`' clients; None: everyone's) whose total is
    at least the n-th largest among them, largest first: fewer than n are all of them,
    and every tie at the cut is kept, so whoever orders the list by something else among
    equals (the Analytics page: by label) takes its first n from the right rows. The
    contract the stores' query (stores/top_costs.py) answers too."""
    if n < 1:
        return []
    wanted = None if client_ids is None else set(client_ids)  # a page passes a tuple
    chosen = [c for c in costs if c.active and (wanted is None or c.client_id in wanted)]
    cut = min(heapq.nlargest(n, (c.total for c in chosen)), default=0)
    return sorted((c for c in chosen if c.total >= cut), key=largest_first)


def largest_first(cost: AttributeCost) -> tuple[int, str, str]:
    """The order of `top_costs`: most tokens first, then by client and attribute id."""
    return -cost.total, cost.client_id, cost.id


def budget(client: Client, tiers: Mapping[int, Tier]) -> int:
    """The override when set, else the tier's limit; plus any temporary top-up."""
    if client.token_budget is not None:
        base = client.token_budget
    elif client.service_level in tiers:
        base = tiers[client.service_level].tokens
    else:
        raise BadInput(f"client {client.id}", "Service Level",
                       f"level {client.service_level} is not in the tier table")
    return base + client.topup


def status(used: int, limit: int, warning: float = DEFAULT_WARNING) -> Status:
    """ok below the warning share, warning up to the budget, exceeded above it."""
    if used > limit:
        return "exceeded"
    if used >= warning * limit:
        return "warning"
    return "ok"


def summarize(clients: Iterable[Client], per_client: Mapping[str, tuple[int, int, int]],
              tiers: Mapping[int, Tier], warning: float = DEFAULT_WARNING) -> list[Usage]:
    """Each client's usage against its budget, from `per_client` as `usage_by_client`
    gives it (or a store sums it)."""
    out = []
    for client in clients:
        used, n, active = per_client.get(client.id, (0, 0, 0))
        limit = budget(client, tiers)
        out.append(Usage(client, limit, used, status(used, limit, warning), n, active))
    return out


def projected_usage(costs: Iterable[AttributeCost], change: Change,
                    new_tokens: Mapping[str, FieldTokens]) -> int:
    """Usage of change.client_id once `change` is applied; `new_tokens` holds the
    recounted tokens of every attribute whose text the change edits."""
    total = 0
    for c in costs:
        if c.client_id != change.client_id:
            continue
        if change.active.get(c.id, c.active):
            total += new_tokens[c.id].total if c.id in new_tokens else c.total
    return total


def validate(current: int, projected: int, limit: int) -> Validation:
    """A change may land when it fits the budget or does not raise usage."""
    if projected <= limit:
        return Validation(True, current, projected, limit)
    if projected <= current:
        return Validation(True, current, projected, limit,
                          "over budget, but the change does not raise usage")
    return Validation(False, current, projected, limit,
                      f"would use {projected:,} of {limit:,} tokens "
                      f"({projected - limit:,} over budget)")


def _add_months(d: date, months: int, day: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def as_utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive time is taken to be UTC already. Period
    boundaries fall at 00:00 UTC, so a time given with another offset is converted,
    never relabelled."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC)


def _checked_day(record: str, day: int) -> int:
    if not 1 <= day <= 31:
        raise BadInput(record, "anchor day",
                       f"must be a day of the month from 1 to 31, got {day}")
    return day


def anchor_of(client: Client) -> int:
    """The day of the month the client's periods turn on. The day kept with the client
    wins while its reset date falls on it (that day, or the last day of a shorter month):
    a date read as Feb 28 cannot tell the 28th from the 30th, so the day is kept and
    never inferred again. Without a kept day, or with a reset date moved off it (edited
    in Airtable), the reset date's own day is the anchor; with no date, the 1st."""
    reset, kept = client.budget_reset_date, client.anchor_day
    if kept is not None:
        kept = _checked_day(f"client {client.id}", kept)
    if reset is None:
        return kept or 1
    if kept is not None and _add_months(reset, 0, kept) == reset:
        return kept
    return reset.day


def _day(reset_date: date | None, anchor_day: int | None) -> int:
    if anchor_day is not None:
        return _checked_day("period", anchor_day)
    return reset_date.day if reset_date else 1


def next_boundary(reset_date: date | None, now: datetime, months: int = 1,
                  anchor_day: int | None = None) -> date:
    """The first period boundary strictly after `now`. Boundaries fall every `months`
    months from `reset_date` (the 1st of this month when there is none) on `anchor_day`,
    or on the last day of a shorter month, at 00:00 UTC. Without `anchor_day`, the reset
    date's own day is the anchor: right for every date not clamped yet; a client's kept
    day comes from `anchor_of`."""
    if months < 1:
        raise BadInput("period", "months", f"must be at least 1, got {months}")
    today = as_utc(now).date()
    start = reset_date or date(today.year, today.month, 1)
    day = _day(reset_date, anchor_day)
    # whole periods from the start: floor division puts that boundary in today's month
    # or before it, so the first boundary after today is it or the one after
    diff = (today.year - start.year) * 12 + today.month - start.month
    k = diff // months
    if _add_months(start, k * months, day) <= today:
        k += 1
    return _add_months(start, k * months, day)


def period_start(reset_date: date | None, now: datetime, months: int = 1,
                 anchor_day: int | None = None) -> date:
    """The boundary that opened the period `now` is in."""
    nb = next_boundary(reset_date, now, months, anchor_day)
    return _add_months(nb, -months, _day(reset_date, anchor_day))


def client_period(client: Client, now: datetime) -> tuple[date, date]:
    """(first day, next boundary) of the client's period at `now`, on its anchor day:
    what a reset and the scheduled pass both go by."""
    day = anchor_of(client)
    nxt = next_boundary(client.budget_reset_date, now, client.period_months, day)
    return _add_months(nxt, -client.period_months, day), nxt


def percent_used(used: int, limit: int) -> int:
    """Share of the budget used, in whole percent rounded down, so a figure never claims
    more than was used: 95.45% reads 95, and 100 appears only at or over the budget.
    Integer arithmetic, so no float rounding can push 99.999...% to 100. An empty budget
    is 0% while nothing is used and 100% as soon as anything is (over it)."""
    if limit <= 0:
        return 100 if used > 0 else 0
    return max(0, used) * 100 // limit


def format_usage(used: int, limit: int) -> str:
    """'1,250 / 5,000 tokens (25% used)': how every screen and message says it."""
    return f"{used:,} / {limit:,} tokens ({percent_used(used, limit)}% used)"
