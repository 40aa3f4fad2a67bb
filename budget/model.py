"""The domain's types. Plain frozen dataclasses: no I/O, no Streamlit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

FIELDS: tuple[str, ...] = ("Instructions", "Examples", "Signals")
Status = Literal["ok", "warning", "exceeded"]
ROLES: tuple[str, ...] = ("viewer", "analyst", "admin")

DEFAULT_TIERS: dict[int, tuple[str, int]] = {
    1: ("Basic", 3_000),
    2: ("Professional", 6_000),
    3: ("Enterprise", 12_000),
    4: ("Unlimited", 25_000),
}


class BadInput(ValueError):
    """Input that names a record and a field; the CLI exits 2 on it."""

    def __init__(self, record: str, field_name: str, problem: str) -> None:
        self.record, self.field, self.problem = record, field_name, problem
        super().__init__(f"{record}: {field_name}: {problem}")


class NotAllowed(PermissionError):
    """The actor's role may not do this."""


class StaleWrite(RuntimeError):
    """The record changed since the caller read it."""


@dataclass(frozen=True)
class Tier:
    level: int
    name: str
    tokens: int


@dataclass(frozen=True)
class Client:
    id: str
    name: str
    service_level: int
    token_budget: int | None = None  # override; None means the tier's limit
    token_usage: int = 0  # the stored copy, may have drifted
    budget_reset_date: date | None = None
    last_token_update: datetime | None = None
    email: str = ""
    account_manager: str = ""
    topup: int = 0  # temporary extra tokens until the next reset
    period_months: int = 1
    last_reset_period: date | None = None
    # the day (1-31) periods turn on, kept once a reset sets a date: a reset date read
    # as Feb 28 cannot say whether the client is anchored on the 28th or the 30th.
    # None: the day of the reset date as it stands.
    anchor_day: int | None = None
    version: int = 0


@dataclass(frozen=True)
class FieldTokens:
    instructions: int = 0
    examples: int = 0
    signals: int = 0

    @property
    def total(self) -> int:
        return self.instructions + self.examples + self.signals

    def of(self, field_name: str) -> int:
        """The count of one field by its name, as `Attribute.text` reads its text."""
        return {"Instructions": self.instructions, "Examples": self.examples,
                "Signals": self.signals}[field_name]


@dataclass(frozen=True)
class Attribute:
    id: str
    client_id: str
    name: str
    active: bool
    instructions: str = ""
    examples: str = ""
    signals: str = ""
    version: int = 0

    def text(self, field_name: str) -> str:
        return {"Instructions": self.instructions, "Examples": self.examples,
                "Signals": self.signals}[field_name]


@dataclass(frozen=True)
class AttributeCost:
    """What the budget needs of an attribute: no text, just its counts."""

    id: str
    client_id: str
    name: str
    active: bool
    tokens: FieldTokens

    @property
    def total(self) -> int:
        return self.tokens.total


@dataclass(frozen=True)
class Usage:
    client: Client
    budget: int
    usage: int
    status: Status
    attributes: int = 0
    active_attributes: int = 0

    @property
    def remaining(self) -> int:
        return self.budget - self.usage

    @property
    def percent_used(self) -> int:
        """Whole percent, rounded down: the one figure every page, CSV, CLI and API show."""
        from .core import percent_used  # core builds on this module's types
        return percent_used(self.usage, self.budget)

    @property
    def drifted(self) -> bool:
        return self.client.token_usage != self.usage


@dataclass(frozen=True)
class Validation:
    allowed: bool
    current: int
    projected: int
    budget: int
    reason: str = ""

    @property
    def delta(self) -> int:
        return self.projected - self.current

    @property
    def over_by(self) -> int:
        return max(0, self.projected - self.budget)

    def as_dict(self) -> dict[str, int | bool]:
        return {"allowed": self.allowed, "current": self.current, "projected": self.projected,
                "budget": self.budget, "delta": self.delta, "over_by": self.over_by}


@dataclass(frozen=True)
class Change:
    """One change to a client's attributes: texts of one attribute and/or active flags.

    `fields` maps a field name to its new text; `active` maps attribute ids to
    their new flag (several ids make a bulk change, checked as one)."""

    client_id: str
    fields: dict[str, dict[str, str]] = field(default_factory=dict)  # attr id -> field -> text
    active: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    client_id: str | None
    before: dict
    after: dict


@dataclass(frozen=True)
class Actor:
    name: str
    role: str = "admin"


# the scheduled pass: what it records --------------------------------
@dataclass(frozen=True)
class Notification:
    """The state of one alert: client, threshold (percent) and budget period (its
    first day) make the key; `status` is "sent" or "failed" (retried next pass)."""

    client_id: str
    threshold: int
    period: date
    status: Literal["sent", "failed"]
    at: datetime
    recipients: tuple[str, ...]
    subject: str
    error: str = ""
    attempts: int = 1


@dataclass(frozen=True)
class Deactivation:
    """One attribute switched off by an automatic-deactivation run; `restored_at` is
    set when the run was undone."""

    run_id: str
    at: datetime
    client_id: str
    attribute_id: str
    name: str
    tokens: int
    reason: str
    restored_at: datetime | None = None
