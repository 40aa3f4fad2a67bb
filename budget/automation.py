"""The scheduled pass (`tokenbudget run-due`): which resets, alerts and automatic
deactivations are due at a given time. Pure: data in, a `Plan` out; the service
carries a plan out (`BudgetService.run_due`) and a dry run only prints it.

Decisions, so that they are stated once:
- A reset is due when the client's Budget Reset Date is today or earlier (boundaries
  fall at 00:00 UTC), or when it has none. One reset catches up any number of missed
  periods: `core.next_boundary` jumps to the first boundary after now, so a client
  three months behind gets one reset, one history snapshot and one audit entry.
- Alerts: a threshold (percent of the budget) is reached when usage * 100 >=
  threshold * budget. The alert state is keyed by client, threshold and period (the
  period's first day). When one pass finds several new thresholds (say 80 and 90),
  one email says the highest and every one of them is recorded, so no threshold is
  ever mailed twice in a period and nobody gets two emails at once.
- Automatic deactivation looks at the client after any due reset (a reset drops the
  temporary top-up) and before nothing else; it never touches a client within budget.
  "Newest-activated" means the latest audited switch from inactive to active (every
  activation through the service is audited: edits, bulk changes, restores);
  attributes with no such entry (active since the data was loaded, or switched on
  directly in Airtable) count as the oldest, and among them the larger goes first.
  Attributes of 0 tokens are never switched off: it would not help.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from . import alerts, core
from .model import AttributeCost, AuditEntry, Client, Tier, Usage
from .settings import DEFAULT_THRESHOLDS, AlertSettings, DeactivationSettings

ORDERS: dict[str, str] = {"newest": "newest-activated first", "largest": "largest first"}


@dataclass(frozen=True)
class Policy:
    """What the pass does, from settings; the deactivation switch and order can also
    be kept with the data by an admin (store settings `auto_deactivate`,
    `auto_deactivate_order`), which then win over the environment."""

    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    recipients: str = "both"
    managers: Mapping[str, str] = field(default_factory=dict)
    auto_deactivate: bool = False
    order: str = "newest"

    @classmethod
    def from_settings(cls, alert: AlertSettings, deactivation: DeactivationSettings,
                      stored: Callable[[str], str | None] = lambda key: None) -> Policy:
        """The settings' policy, with the admin's switch and order kept with the data
        (saved by the service as "on"/"off" and an order name) winning over them."""
        switch, order = stored("auto_deactivate"), stored("auto_deactivate_order")
        return cls(alert.thresholds, alert.recipients, alert.managers,
                   deactivation.enabled if switch is None else switch == "on",
                   order if order in ORDERS else deactivation.order)


# the plan ---------------------------------------------------------------------------
@dataclass(frozen=True)
class DueReset:
    client_id: str
    name: str
    due: date | None  # the Budget Reset Date that has passed (None: it had none)
    boundaries: int  # period boundaries passed since the last reset: 1 when on time
    next_reset: date

    def line(self) -> str:
        since = (f"due since {self.due:%Y-%m-%d}" if self.due else "no reset date yet")
        missed = (f", {self.boundaries} period boundaries passed (one reset catches up)"
                  if self.boundaries > 1 else "")
        return (f"reset {self.name} ({self.client_id}): {since}{missed}; "
                f"next reset {self.next_reset:%Y-%m-%d}")


@dataclass(frozen=True)
class DueAlert:
    client_id: str
    name: str
    period: date
    thresholds: tuple[int, ...]  # newly reached; the email names the highest
    usage: int
    budget: int
    email: alerts.Email

    def line(self) -> str:
        to = ", ".join(self.email.to) or "nobody (no contact or manager address)"
        return (f"email {max(self.thresholds)}% alert for {self.name} ({self.client_id}) "
                f"to {to}: {core.format_usage(self.usage, self.budget)}")


@dataclass(frozen=True)
class DueDeactivation:
    client_id: str
    name: str
    usage: int
    budget: int
    order: str
    attributes: tuple[AttributeCost, ...]

    @property
    def after(self) -> int:
        return self.usage - sum(c.total for c in self.attributes)

    def line(self) -> str:
        names = ", ".join(f"{c.name} ({c.total:,} tokens)" for c in self.attributes)
        return (f"deactivate for {self.name} ({self.client_id}), {ORDERS[self.order]}: {names}; "
                f"{core.format_usage(self.usage, self.budget)} -> "
                f"{core.format_usage(self.after, self.budget)}")


@dataclass(frozen=True)
class Plan:
    now: datetime
    resets: tuple[DueReset, ...] = ()
    alerts: tuple[DueAlert, ...] = ()
    deactivations: tuple[DueDeactivation, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.resets or self.alerts or self.deactivations)

    def lines(self, prefix: str = "would ") -> list[str]:
        """What the pass would do, one line per action, for the dry run and the page."""
        actions = [r.line() for r in self.resets] + [a.line() for a in self.alerts]
        actions += [d.line() for d in self.deactivations]
        return [prefix + line for line in actions] + list(self.notes) or ["nothing is due"]


@dataclass(frozen=True)
class RunReport:
    """What a pass did: one line per action, failed sends counted (retried next pass);
    `skipped`: another pass was running, so this one did nothing (its one line says
    who runs)."""

    now: datetime
    run_id: str
    lines: tuple[str, ...]
    failed: int = 0
    skipped: bool = False


# the pure parts -----------------------------------------------------------------------
def _utc_day(now: datetime) -> date:
    return core.as_utc(now).date()


def reset_due(client: Client, now: datetime) -> DueReset | None:
    """The reset a client needs at `now`, or None while its reset date is ahead."""
    due = client.budget_reset_date
    if due is not None and due > _utc_day(now):
        return None
    nxt = core.client_period(client, now)[1]
    passed = 1 if due is None else max(
        1, ((nxt.year - due.year) * 12 + nxt.month - due.month) // client.period_months)
    return DueReset(client.id, client.name, due, passed, nxt)


def after_reset(client: Client, now: datetime) -> Client:
    """The client as `BudgetService.reset` leaves it: no top-up, the next reset date,
    its anchor day kept."""
    period, nxt = core.client_period(client, now)
    return replace(client, topup=0, budget_reset_date=nxt, last_reset_period=period,
                   anchor_day=core.anchor_of(client))


def reached(used: int, limit: int, thresholds: Iterable[int]) -> tuple[int, ...]:
    """The thresholds (percent of the budget) that `used` has reached."""
    if used <= 0:
        return ()
    return tuple(t for t in thresholds if used * 100 >= t * limit)


def activation_times(entries: Iterable[AuditEntry]) -> dict[str, datetime]:
    """attribute id -> when the audit log last saw it switched from off to on."""
    out: dict[str, datetime] = {}
    for e in entries:
        for key, after in e.after.items():
            before = e.before.get(key)
            if (isinstance(after, dict) and isinstance(before, dict)
                    and after.get("active") is True and before.get("active") is False):
                out[key] = max(out.get(key, e.at), e.at)
    return out


def choose_deactivations(costs: Iterable[AttributeCost], used: int, limit: int, order: str,
                         activated: Mapping[str, datetime]) -> tuple[AttributeCost, ...]:
    """Active attributes to switch off, in `order`, stopping as soon as `used` fits
    `limit`; nothing when it already fits."""
    if used <= limit:
        return ()
    candidates = [c for c in costs if c.active and c.total > 0]
    if order == "largest":
        candidates.sort(key=lambda c: (-c.total, c.name, c.id))
    else:
        candidates.sort(key=lambda c: (
            (0, -activated[c.id].timestamp()) if c.id in activated else (1, math.inf),
            -c.total, c.name, c.id))
    chosen = []
    for c in candidates:
        if used <= limit:
            break
        chosen.append(c)
        used -= c.total
    return tuple(chosen)


def plan(now: datetime, clients: Sequence[Client], costs: Sequence[AttributeCost],
         tiers: Mapping[int, Tier], policy: Policy, sent: set[tuple[str, int, date]],
         flags: Mapping[str, bool], activated: Callable[[str], Mapping[str, datetime]],
         email_on: bool, warning: float = core.DEFAULT_WARNING) -> Plan:
    """Everything due at `now`: resets first, then alerts and deactivations on the
    clients as the resets leave them (a reset clears its period's alert state)."""
    resets, emails, offs = [], [], []
    settled = []
    for client in clients:
        due = reset_due(client, now)
        if due is not None:
            resets.append(due)
            client = after_reset(client, now)
        settled.append((client, due is not None))
    by_client: dict[str, list[AttributeCost]] = {}
    for c in costs:
        by_client.setdefault(c.client_id, []).append(c)
    report = {u.client.id: u for u in core.summarize([c for c, _ in settled],
                                                       core.usage_by_client(costs), tiers,
                                                       warning)}
    for client, was_reset in settled:
        u: Usage = report[client.id]
        period, end = core.client_period(client, now)
        already = set() if was_reset else {t for cid, t, p in sent
                                           if cid == client.id and p == period}
        new = tuple(t for t in reached(u.usage, u.budget, policy.thresholds)
                    if t not in already)
        if new:
            to = alerts.recipients(client, policy.recipients, policy.managers)
            email = alerts.compose(u, max(new), period, end, by_client.get(client.id, []), to)
            emails.append(DueAlert(client.id, client.name, period, new, u.usage, u.budget, email))
        if flags.get(client.id, policy.auto_deactivate) and u.usage > u.budget:
            chosen = choose_deactivations(by_client.get(client.id, []), u.usage, u.budget,
                                          policy.order, activated(client.id))
            if chosen:
                offs.append(DueDeactivation(client.id, client.name, u.usage, u.budget,
                                            policy.order, chosen))
    notes = []
    if emails and not email_on:
        notes.append(f"email is off (SMTP_HOST is not set): {len(emails)} alert(s) due are "
                     "not sent and stay due")
    return Plan(now, tuple(resets), tuple(emails), tuple(offs), tuple(notes))
