"""What landed in Airtable, learnt by reading the records again, and the write journal
settled from it: a write is never left in Airtable without its audit row.

Airtable has no transactions, and an answer can be lost after the change landed (a
body cut off, a timeout, a connection dropped after sending, a 500 from a proxy in
front of a write that went through). So every write is journaled in the sidecar before
it is sent (`Sidecar.journal`): the field values it sets, and the audit, history and
extras rows of its client. After a failed request the records are read again, and a
record whose fields now hold the values sent has landed; the sidecar rows of every
client with a write that landed are committed. A writer that died (`kill -9`) leaves its
entry behind, and the next writer (or the next store opened) settles it the same way
(`reconcile`) before doing anything else."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..base import StoreError
from .records import clean
from .sidecar_protocol import Intent, Sidecar
from .tables import Tables

# per record (kind, record id): landed, not landed, or not known (the re-read failed)
Outcome = dict[tuple[str, str], bool | None]


def holds(now: Mapping[str, Any] | None, fields: Mapping[str, Any]) -> bool:
    """Whether a record read as `now` (None: it is gone) holds the values `fields` sets;
    Airtable omits empty values and false checkboxes, so those read as absent."""
    if now is None:
        return False
    return all(clean({k: v}).get(k) == now.get(k) for k, v in fields.items())


def learn(tables: Tables, kind: str, intents: Sequence[Intent]) -> Outcome:
    """Reads the records of `intents` again: which of them landed; all None if Airtable
    cannot be read now."""
    try:
        now = {r["id"]: clean(r.get("fields") or {})
               for r in tables.by_record_ids(kind, [i.rid for i in intents])}
    except StoreError:
        return {(kind, i.rid): None for i in intents}
    return {(kind, i.rid): holds(now.get(i.rid), i.fields) for i in intents}


def settle(side: Sidecar, tx: str, intents: Iterable[Intent], outcome: Outcome) -> set[str]:
    """Commits (in the caller's transaction) the sidecar rows of each client with a write
    that landed, and clears the entry of each client whose outcome is known; returns the
    clients left unknown."""
    states: dict[str, list[bool | None]] = {}
    for i in intents:
        states.setdefault(i.client_id, []).append(outcome.get((i.kind, i.rid)))
    landed = {c for c, s in states.items() if True in s}
    unknown = {c for c, s in states.items() if c not in landed and None in s}
    side.settle(tx, landed, set(states) - unknown)
    return unknown


def reconcile(tables: Tables, side: Sidecar) -> int:
    """Settles the journal entries of writers that are gone; the caller holds the
    sidecar's writer lock and no sidecar transaction. Returns how many entries it looked at."""
    entries = side.journaled()
    if not entries:
        return 0
    outcome: Outcome = {}
    for kind in ("a", "c"):
        intents = [i for e in entries.values() for i in e if i.kind == kind]
        if intents:
            outcome.update(learn(tables, kind, intents))
    with side.transaction():
        for tx, intents in entries.items():
            settle(side, tx, intents, outcome)
    return len(entries)
