"""What the Airtable store keeps beside the base (its sidecar), as one protocol with two
homes that `AIRTABLE_SIDECAR` chooses between: a SQLite file for one machine
(`sidecar.py`, a path), or PostgreSQL for several dashboard, API and cron hosts on one
base (`sidecar_postgresql.py`, `postgresql://USER:PASSWORD@HOST:PORT/DB`).

The store never touches a connection: it reads and writes through these methods. Writes
run inside `transaction()`, which is also the base's write lock for every process and
host that shares the sidecar; the store opens it around each of its own transactions
and defers the rows tied to a client's Airtable writes (audit, history, extras,
deactivations) until those writes have landed, and journals them (`journal`) before the
first request is sent. A lock not granted within the store's lock timeout is StoreBusy."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from ...model import AuditEntry, Deactivation, FieldTokens, Notification, Tier
from ..base import PassHolder
from .deferred import Deferred

# a client's top-up, period months, last reset period and anchor day
Extras = tuple[int, int, date | None, int | None]
NO_EXTRAS: Extras = (0, 1, None, None)
# a mirrored record (see `mirror`): record id, app id, the fields the store uses as JSON
MirrorRow = tuple[str, str, str]
POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True)
class Intent:
    """A record write about to be sent (journaled first): the record, the client whose
    change it is part of, and the field values it sets."""

    client_id: str
    kind: str
    rid: str
    fields: dict[str, Any]


class Sidecar(Protocol):
    label: str  # where it lives, for messages ("the local file data/airtable-sidecar.db")

    def transaction(self, client_id: str | None = None) -> AbstractContextManager[None]:
        """Writes inside commit together or not at all. Holds the base's write lock: with
        `client_id`, a home that can lock one client (PostgreSQL) locks only that one, so
        other hosts' work on other clients goes on; nested use joins the open one."""

    def writer_lock(self, timeout: float) -> AbstractContextManager[None]:
        """Held around a whole store transaction, from its first read to its last commit
        (the journal's commit before sending, the settling after), beyond what
        `transaction()` holds; StoreBusy after `timeout` seconds of waiting."""

    def close(self) -> None: ...

    # reads ------------------------------------------------------------------------------
    def tiers(self) -> dict[int, Tier]: ...
    def extras(self, client_id: str) -> Extras: ...
    def counts(self, encoding: str, hashes: Iterable[str]) -> dict[str, FieldTokens]:
        """The token counts known for these text hashes, by hash."""
    def audit(self, client_id: str | None = None) -> list[AuditEntry]: ...
    def history(self, client_id: str | None = None
                ) -> list[tuple[str, datetime, int, int]]: ...
    def setting(self, key: str) -> str | None: ...
    def settings(self) -> dict[str, str]: ...
    def sent_alerts(self) -> set[tuple[str, int, date]]: ...
    def count_sent_alerts(self, client_id: str, period: date) -> int: ...
    def notifications(self, client_id: str | None = None) -> list[Notification]: ...
    def auto_deactivate_flags(self) -> dict[str, bool]: ...
    def deactivations(self, run_id: str | None = None) -> list[Deactivation]: ...

    # writes, inside transaction() ---------------------------------------------------------
    def save_setting(self, key: str, value: str) -> None: ...
    def save_counts(self, encoding: str, counts: Mapping[str, FieldTokens]) -> None:
        """Token counts by text hash."""
    def save_tier(self, tier: Tier) -> None: ...
    def save_extras(self, client_id: str, extras: Extras) -> None: ...
    def add_audit(self, entry: AuditEntry) -> None: ...
    def add_history(self, client_id: str, at: datetime, usage: int, budget: int) -> None: ...
    def clear_alerts(self, client_id: str, period: date) -> None: ...
    def replace(self, tiers: Iterable[Tier], extras: Iterable[tuple[str, Extras]]) -> None:
        """Empties what belongs to the data set being replaced (token counts and settings
        stay), then stores its tiers and client extras."""
    def save_notification(self, notification: Notification) -> None: ...
    def save_auto_deactivate_flag(self, client_id: str, enabled: bool | None) -> None: ...
    def add_deactivation(self, deactivation: Deactivation) -> None: ...
    def mark_restored(self, deactivations: Iterable[Deactivation], at: datetime) -> None: ...

    # the write journal (see `journal`) ------------------------------------------------------
    def journal(self, intents: Iterable[Intent], ops: Iterable[Deferred]) -> str:
        """Records, committed before the first request and while the writer keeps its
        locks, the writes about to be sent and the deferred sidecar writes of their
        clients; returns the entry's id."""
    def journaled(self) -> dict[str, list[Intent]]:
        """The entries of writers that are gone, by entry id."""
    def settle(self, tx: str, landed: Iterable[str], known: Iterable[str]) -> None:
        """Inside `transaction()`: makes the journaled sidecar writes of the clients whose
        writes `landed` (in part or whole) and drops the entry's rows of the clients
        whose outcome is `known`; the others stay for a later look. Two settling the
        same entry at once make its writes once."""

    # the mirror of the base (see `mirror`) -----------------------------------------------
    def mirror_rows(self, kind: str, rids: Sequence[str] | None = None,
                    app_ids: Sequence[str] | None = None) -> list[tuple[str, str]]:
        """(record id, fields JSON) of the table's mirrored records: all, or those with
        these record ids, or those holding these app ids."""
    def mirror_ids(self, kind: str) -> list[str]: ...
    def mirror_state(self) -> dict[str, str]:
        """When each table was last synced and swept, and the mirror's version."""
    def mirror_write(self, kind: str, rows: Iterable[MirrorRow], gone: Iterable[str],
                     state: Mapping[str, str], replace: bool = False) -> None:
        """Stores rows (every row of the table, with `replace`), drops the records
        `gone` and sets the state keys, together. Not the base's write lock: committed at
        once, or with the thread's open transaction where the home has one connection."""

    # committed at once, each in a transaction of its own -----------------------------------
    def claim_alert(self, client_id: str, thresholds: Sequence[int], period: date,
                    holder: str, lease: float) -> bool:
        """As `Store.claim_alert`: seen by every other pass before the email goes out."""
    def pass_lock(self) -> AbstractContextManager[bool]: ...
    def pass_holder(self) -> PassHolder | None: ...


def open_sidecar(location: str, lock_timeout: float) -> Sidecar:
    """The sidecar `AIRTABLE_SIDECAR` names; `lock_timeout`: seconds a writer waits for
    another's lock before StoreBusy."""
    if location.startswith(POSTGRESQL_SCHEMES):
        from .sidecar_postgresql import PostgresSidecar  # psycopg only when used
        return PostgresSidecar(location, lock_timeout=lock_timeout)
    from .sidecar import SQLiteSidecar
    return SQLiteSidecar(location, lock_timeout)
