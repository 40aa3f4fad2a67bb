"""The one Store protocol every backend implements; the service is its only user."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Protocol

from ..model import (Attribute, AttributeCost, AuditEntry, Client, Deactivation, FieldTokens,
                     Notification, Tier)


class StoreError(RuntimeError):
    """The backend failed; the message names the table and field, never a secret."""


class StoreBusy(StoreError):
    """Another writer held the store's lock past the lock timeout. Nothing was changed,
    and the same request can simply be tried again ("busy, try again"), which is why the
    CLI and the API tell it apart from a store that is down. `retry_after`: seconds
    until it can succeed, when the store knows (Airtable's penalty after a 429)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PartialWrite(StoreError):
    """Some records were written, some were not (a backend without transactions);
    `written`/`not_written` name them, and running the same operation again finishes it."""

    def __init__(self, message: str, written: list[str], not_written: list[str]) -> None:
        super().__init__(message)
        self.written, self.not_written = written, not_written


@dataclass(frozen=True)
class PassHolder:
    """Who runs a scheduled pass: what a second pass reports while the first holds the
    pass lock. `id` tells two passes of one process apart."""

    host: str
    pid: int
    since: datetime
    id: str = field(default_factory=lambda: secrets.token_hex(8))

    @classmethod
    def this_process(cls) -> PassHolder:
        return cls(socket.gethostname(), os.getpid(), datetime.now(UTC))

    def describe(self) -> str:
        return f"since {self.since.astimezone(UTC):%H:%M} UTC, on {self.host} pid {self.pid}"


class Store(Protocol):
    label: str  # what the sidebar shows, e.g. "SQLite: data/tokenbudget.db"

    @property
    def warnings(self) -> list[str]:
        """Records skipped on the last load, each naming record and field."""

    def transaction(self, client_id: str | None = None) -> AbstractContextManager[None]:
        """Reads and writes inside run as one unit that no other writer interleaves.
        With `client_id`, the work touches that client only: a store that can lock one
        client (PostgreSQL) lets other clients' work run meanwhile; the others lock all."""

    def tiers(self) -> dict[int, Tier]: ...
    def clients(self) -> list[Client]: ...
    def client(self, client_id: str) -> Client | None: ...
    def attributes(self, client_id: str | None = None,
                   ids: Sequence[str] | None = None) -> list[Attribute]: ...
    def costs(self, encoding: str, client_id: str | None = None
              ) -> tuple[list[AttributeCost], list[Attribute]]:
        """Counted attributes, and the ones with no count for `encoding` yet (with text)."""
    def audit(self, client_id: str | None = None) -> list[AuditEntry]: ...
    def setting(self, key: str) -> str | None:
        """An admin setting kept with the data (e.g. the encoding in use)."""
    def settings(self) -> dict[str, str]:
        """Every admin setting kept with the data (copy-store takes them along)."""
    def save_setting(self, key: str, value: str) -> None: ...
    def history(self, client_id: str | None = None) -> list[tuple[str, datetime, int, int]]: ...

    def save_counts(self, encoding: str, counts: dict[str, FieldTokens]) -> None: ...
    def save_attributes(self, attributes: Iterable[Attribute], encoding: str,
                        counts: dict[str, FieldTokens]) -> None:
        """Writes each attribute if its version is unchanged (else StaleWrite)."""
    def save_client(self, client: Client) -> Client:
        """Writes the client if its version is unchanged (else StaleWrite); returns it
        with its new version."""
    def save_tier(self, tier: Tier) -> None: ...
    def add_audit(self, entry: AuditEntry) -> None: ...
    def add_history(self, client_id: str, at: datetime, usage: int, budget: int) -> None: ...
    def clear_alerts(self, client_id: str, period: date) -> int: ...
    def replace_all(self, tiers: Iterable[Tier], clients: Iterable[Client],
                    attributes: Iterable[Attribute]) -> None:
        """Loads a whole data set (demo data), replacing what was there."""

    # automation: alert state, notifications, deactivation policy and runs
    def pass_lock(self) -> AbstractContextManager[bool]:
        """Holds the scheduled pass's lock while the `with` body runs, if no other pass
        holds it, whichever process or host started it; yields whether it got it. Never
        waits: a second pass skips. A holder that dies loses it (with its connection, or
        when the lease it stopped renewing runs out)."""
    def pass_holder(self) -> PassHolder | None:
        """Who holds the pass lock now (None: nobody, or the store cannot tell)."""
    def sent_alerts(self) -> set[tuple[str, int, date]]:
        """(client id, threshold, period start) of every alert sent and not cleared."""
    def claim_alert(self, client_id: str, thresholds: Sequence[int], period: date,
                    holder: str, lease: float) -> bool:
        """Claims the alert's keys (client, threshold, period) for `holder` before it is
        sent: all or none, committed before it returns (never buffered, never inside
        another transaction). False when one is sent already or claimed by another
        holder whose lease (seconds) has not run out: someone else sends it. Recording
        the outcome (`save_notification`) ends the claim."""
    def notifications(self, client_id: str | None = None) -> list[Notification]:
        """The last attempt per (client, threshold, period), newest first."""
    def save_notification(self, notification: Notification) -> None:
        """Records an attempt and ends its claim; a sent one also enters the alert
        state."""
    def auto_deactivate_flags(self) -> dict[str, bool]:
        """Per-client automatic-deactivation choices; a client not listed follows the
        global setting."""
    def save_auto_deactivate_flag(self, client_id: str, enabled: bool | None) -> None: ...
    def deactivations(self, run_id: str | None = None) -> list[Deactivation]: ...
    def add_deactivation(self, deactivation: Deactivation) -> None:
        """Inside the transaction that switches the attribute off."""
    def mark_restored(self, deactivations: Iterable[Deactivation], at: datetime) -> None: ...
