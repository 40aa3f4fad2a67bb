"""copy-store: everything one store holds into another, empty one, then a check that
both hold the same: the row count of every table and the usage of every client.

The copy goes through the Store protocol alone, so any two stores work (SQLite to
PostgreSQL when a deployment grows past one machine, PostgreSQL to SQLite for a local
copy). The source is read inside one transaction, so no writer changes it half-way,
and the destination is written inside one, so a failed copy leaves it empty.

Alert state and notifications have one writer, `save_notification`, which counts the
attempts and enters a sent alert into the state that a reset clears; each row is
rebuilt by replaying the attempts that made it, and the periods whose alerts a reset
cleared are cleared again, so the destination says "already sent" exactly where the
source does."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date

from .. import core
from ..model import (Attribute, AttributeCost, AuditEntry, BadInput, Client, Deactivation,
                     FieldTokens, Notification, Tier)
from ..tokens import ENCODINGS, counter
from .base import Store


@dataclass(frozen=True)
class Contents:
    """Everything a store holds, read in one transaction."""

    tiers: list[Tier]
    clients: list[Client]
    attributes: list[Attribute]
    counts: dict[str, dict[str, FieldTokens]]  # encoding -> attribute id -> tokens
    history: list[tuple]
    audit: list[AuditEntry]
    settings: dict[str, str]
    notifications: list[Notification]
    sent_alerts: set[tuple[str, int, date]]
    auto_deactivate_flags: dict[str, bool]
    deactivations: list[Deactivation]

    def rows(self) -> dict[str, int]:
        """Rows per table, named as the SQL stores name them."""
        return {"tiers": len(self.tiers), "clients": len(self.clients),
                "attributes": len(self.attributes),
                "token_counts": sum(map(len, self.counts.values())),
                "usage_history": len(self.history), "audit_log": len(self.audit),
                "settings": len(self.settings), "notifications": len(self.notifications),
                "alerts_sent": len(self.sent_alerts),
                "auto_deactivate_policy": len(self.auto_deactivate_flags),
                "deactivations": len(self.deactivations)}


def read(store: Store) -> Contents:
    with store.transaction():
        return Contents(
            list(store.tiers().values()), store.clients(), store.attributes(),
            {enc: {c.id: c.tokens for c in store.costs(enc)[0]} for enc in ENCODINGS},
            store.history(), store.audit(), store.settings(), store.notifications(),
            store.sent_alerts(), store.auto_deactivate_flags(), store.deactivations())


def usage(store: Store, encoding: str) -> dict[str, int]:
    """Each client's usage with `encoding`, counting (not saving) texts never counted."""
    counted, uncounted = store.costs(encoding)
    texts = [t for a in uncounted for t in (a.instructions, a.examples, a.signals)]
    n = counter(encoding).count_many(texts)
    fresh = [AttributeCost(a.id, a.client_id, a.name, a.active,
                           FieldTokens(*n[3 * i:3 * i + 3]))
             for i, a in enumerate(uncounted)]
    used = core.usage_by_client([*counted, *fresh])
    return {c.id: used.get(c.id, (0, 0, 0))[0] for c in store.clients()}


@dataclass(frozen=True)
class CopyReport:
    source: str
    destination: str
    encoding: str
    rows: dict[str, tuple[int, int]]  # table -> (source rows, destination rows)
    usage: dict[str, tuple[int, int]] = field(default_factory=dict)  # client -> (src, dst)

    @property
    def equal(self) -> bool:
        return all(a == b for a, b in (*self.rows.values(), *self.usage.values()))

    def lines(self) -> list[str]:
        out = [f"copied {self.source} -> {self.destination}"]
        out += [f"  {table:<24} {a:>9,} {b:>9,}{'' if a == b else '  DIFFERENT'}"
                for table, (a, b) in self.rows.items()]
        differ = [cid for cid, (a, b) in self.usage.items() if a != b]
        total = [sum(u[i] for u in self.usage.values()) for i in (0, 1)]
        out.append(f"  usage ({self.encoding}) of {len(self.usage)} clients: "
                   f"{total[0]:,} and {total[1]:,} tokens, "
                   + (f"different for {', '.join(differ)}" if differ else "equal per client"))
        out.append("verified: the copy holds the same" if self.equal
                   else "NOT verified: the copy differs (see above)")
        return out


def check_empty(store: Store) -> None:
    held = ", ".join(f"{n:,} {table}" for table, n in read(store).rows().items() if n)
    if held:
        raise BadInput("copy-store", "--to",
                       f"{store.label} is not empty ({held}); copy into an empty store")


def copy_store(source: Store, destination: Store, encoding: str) -> CopyReport:
    """Copies everything from `source` into the empty `destination` and compares them;
    `encoding` is the one the usage figures are compared in (the service's)."""
    check_empty(destination)
    data = read(source)
    with destination.transaction():
        write(destination, data)
    after = read(destination)
    src_rows, dst_rows = data.rows(), after.rows()
    src_use, dst_use = usage(source, encoding), usage(destination, encoding)
    return CopyReport(source.label, destination.label, encoding,
                      {t: (src_rows[t], dst_rows[t]) for t in src_rows},
                      {c: (src_use[c], dst_use.get(c, 0)) for c in src_use})


def write(store: Store, data: Contents) -> None:
    """Inside the destination's transaction."""
    store.replace_all(data.tiers, data.clients, data.attributes)
    for encoding, counts in data.counts.items():
        if counts:
            store.save_counts(encoding, counts)
    for cid, at, used, budget in data.history:
        store.add_history(cid, at, used, budget)
    for entry in data.audit:
        store.add_audit(entry)
    for key, value in data.settings.items():
        store.save_setting(key, value)
    _replay_notifications(store, data.notifications, data.sent_alerts)
    for cid, enabled in data.auto_deactivate_flags.items():
        store.save_auto_deactivate_flag(cid, enabled)
    for d in data.deactivations:  # in the source's order, which ties keep
        store.add_deactivation(replace(d, restored_at=None))
        if d.restored_at is not None:
            store.mark_restored([d], d.restored_at)


def _replay_notifications(store: Store, notifications: Iterable[Notification],
                          sent: set[tuple[str, int, date]]) -> None:
    by_period: dict[tuple[str, date], list[Notification]] = defaultdict(list)
    for n in notifications:
        by_period[n.client_id, n.period].append(n)
    for (cid, period), group in by_period.items():
        cleared = [n for n in group if (cid, n.threshold, period) not in sent]
        for n in cleared:  # a reset cleared their alert state: write them, then clear it
            _attempts(store, n)
        if cleared:
            store.clear_alerts(cid, period)
        for n in group:
            if (cid, n.threshold, period) in sent:
                _attempts(store, n)


def _attempts(store: Store, n: Notification) -> None:
    """The attempts before the last as failed ones (they leave no alert state), then
    the last as it was: the row ends with the same attempt count and outcome."""
    for _ in range(n.attempts - 1):
        store.save_notification(replace(n, status="failed", attempts=1))
    store.save_notification(replace(n, attempts=1))
