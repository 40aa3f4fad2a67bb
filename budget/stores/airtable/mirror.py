"""The mirror: a copy of the two tables the store reads (each record's id and the fields
the store uses) kept in the sidecar, so a read costs no request and a sync asks
Airtable only for what changed.

A sync of a table (kind "c" clients, "a" attributes):
- of an empty mirror, lists the whole table (⌈N/100⌉ requests, the floor);
- later, lists only the records whose `LAST_MODIFIED_TIME()` is at or after the start of
  the sync before, less `sync_overlap` seconds (the machine's clock and Airtable's may
  differ by that much): one request when fewer than 100 changed;
- with a webhook on the base (`webhook`, `AIRTABLE_WEBHOOKS` "auto" and a token that
  may manage webhooks), one request per sync reads its payloads since the cursor: the
  rows of the records destroyed are dropped, and a table no payload names is not
  listed; a table whose rows are not yet known to be covered by that webhook (it was
  made after the table was read, or made anew after the old one expired) is swept
  once. Without one, every `sweep_interval` seconds, the sync also lists the ids alone
  (the first field, the smallest answer Airtable gives) and drops the rows whose
  records are gone: the listing by `LAST_MODIFIED_TIME()` says nothing about deletions.

Syncs are due `sync_interval` seconds after the last one of any process sharing the
sidecar (its start is kept there), and one runs at a time per base in a process (the
`gate`): sessions that read meanwhile answer from the mirror as it is; the tables due
sync together, with one payload read. `sync(force=True)` runs one now (Refresh, and the
whole-table reads inside a write transaction). After a write the records Airtable
answered with replace theirs, so the next read needs no request. The mirror's `version`
changes whenever a row does: what the pages' caches are keyed on."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime

from pyairtable.formulas import GTE, LAST_MODIFIED_TIME, to_formula_str

from .config import AirtableConfig
from .records import Record, clean, id_value, is_record_id
from .sidecar_protocol import MirrorRow, Sidecar
from .tables import KINDS, Tables
from .webhook import ChangeFeed, Feed


def _synced(kind: str) -> str:
    """The state key of the start of the table's last sync (seconds since the epoch)."""
    return f"synced:{kind}"


def _swept(kind: str) -> str:
    """The state key of the start of the table's last id listing."""
    return f"swept:{kind}"


def _covered(kind: str) -> str:
    """The state key of the webhook whose payloads tell every deletion since the table
    was last read whole or swept ("" for none)."""
    return f"covered:{kind}"


class Mirror:
    """Reads with the same calls as `Tables` (`all`, `by_record_ids`, `by_app_ids`),
    answered from the sidecar; `sync` brings it in step with Airtable."""

    def __init__(self, tables: Tables, side: Sidecar, gate: threading.Lock,
                 clock: Callable[[], float] = time.time) -> None:
        self.tables, self.side, self.gate, self.clock = tables, side, gate, clock
        self.config: AirtableConfig = tables.config
        self.feed = ChangeFeed(tables, lambda state: side.mirror_write(KINDS[0], [], [], state))

    # reads ------------------------------------------------------------------------------
    @staticmethod
    def _records(rows: Iterable[tuple[str, str]]) -> list[Record]:
        return [{"id": rid, "fields": json.loads(fields)} for rid, fields in rows]

    def all(self, kind: str) -> list[Record]:
        return self._records(self.side.mirror_rows(kind))

    def by_record_ids(self, kind: str, rids: Sequence[str]) -> list[Record]:
        return self._records(self.side.mirror_rows(kind, rids=list(rids))) if rids else []

    def by_app_ids(self, kind: str, ids: Sequence[str]) -> list[Record]:
        if not self._id_field(kind):
            return self.by_record_ids(kind, [i for i in ids if is_record_id(i)])
        return self._records(self.side.mirror_rows(kind, app_ids=list(ids))) if ids else []

    def matched_at(self) -> datetime | None:
        """When the mirror last matched Airtable (the start of the older of the two
        tables' last syncs); None before the first."""
        state = self.side.mirror_state()
        starts = [state.get(_synced(kind), "") for kind in KINDS]
        if not all(starts):
            return None
        return datetime.fromtimestamp(min(map(float, starts)), UTC)

    def version(self) -> str:
        return self.side.mirror_state().get("version", "")

    # sync ---------------------------------------------------------------------------------
    def sync(self, kinds: Sequence[str] = KINDS, force: bool = False) -> None:
        """Brings the tables' rows in step with Airtable, those whose sync is due (or
        all, with `force`); a StoreError if Airtable cannot be read, the mirror left as
        it was (but for the deletions already dropped)."""
        with self.gate:
            state = self.side.mirror_state()
            started = self.clock()
            due = [kind for kind in kinds
                   if force or started - float(state.get(_synced(kind)) or 0)
                   >= self.config.sync_interval]
            if not due:
                return
            feed = self._read_feed(state, started, 0 if force else self.config.sync_interval)
            for kind in KINDS:  # a table not due yet is vouched for too, when it can be
                if self._unchanged(kind, state, feed):
                    self._write(kind, (), (), {_synced(kind): started}, False)
                elif kind in due:
                    self._sync(kind, state, started, feed.hook)

    def _read_feed(self, state: dict[str, str], started: float, gap: float) -> Feed:
        """The records the webhook says were destroyed, dropped from both tables (unless
        its payloads were read less than `gap` seconds ago); what the webhook told (no
        webhook: the tables are swept instead)."""
        if self.config.webhooks == "off":
            return Feed()
        feed = self.feed.read(state, started, gap, self.config.sweep_interval)
        for kind in KINDS if feed.destroyed else ():
            gone = sorted(set(feed.destroyed) & set(self.side.mirror_ids(kind)))
            if gone:
                self._write(kind, (), gone, {}, False)
        if feed.cursor:  # past what was dropped
            self.feed.save(feed.cursor)
        return feed

    @staticmethod
    def _unchanged(kind: str, state: dict[str, str], feed: Feed) -> bool:
        """Whether the payloads just read vouch that nothing in the table changed since
        its last listing: no payload names it, and the webhook saw every change since
        (the table was listed under it). Its listing is then skipped: an idle sync is
        one payload request, however many tables."""
        return (feed.changed is not None and kind not in feed.changed
                and bool(feed.hook) and state.get(_covered(kind), "") == feed.hook)

    def _sync(self, kind: str, state: dict[str, str], started: float, hook: str) -> None:
        last = float(state.get(_synced(kind)) or 0)
        covered = {_covered(kind): hook}
        if not last:
            self._write(kind, self.tables.all(kind), (), {_synced(kind): started,
                                                          _swept(kind): started, **covered},
                        True)
            return
        since = datetime.fromtimestamp(last - self.config.sync_overlap, UTC)
        changed = self.tables.all(kind, to_formula_str(GTE(LAST_MODIFIED_TIME(), since)))
        moments: dict[str, float | str] = {_synced(kind): started}
        gone: list[str] = []
        if self._sweep_due(kind, state, started, hook):
            first = [self.config.fields(kind)[0]]
            present = {r["id"] for r in self.tables.all(kind, fields=first)}
            present.update(r["id"] for r in changed)  # created during the listing
            gone = sorted(set(self.side.mirror_ids(kind)) - present)
            moments.update({_swept(kind): started, **covered})
        self._write(kind, changed, gone, moments, False)

    def _sweep_due(self, kind: str, state: dict[str, str], started: float, hook: str) -> bool:
        """With a webhook: only if the table's rows may hold deletions it did not
        report (read or swept before it was made). Without: every sweep interval."""
        if hook:
            return state.get(_covered(kind), "") != hook
        return started - float(state.get(_swept(kind)) or 0) >= self.config.sweep_interval

    def absorb(self, answers: Mapping[str, Sequence[Record]]) -> None:
        """The records Airtable answered a write with, in place of their rows: they are
        what the base now holds."""
        for kind, records in answers.items():
            if records:
                self._write(kind, records, (), {}, False)

    def forget(self) -> None:
        """Empties the mirror (the tables were replaced): the next read lists them anew."""
        for kind in KINDS:
            self.side.mirror_write(kind, [], [], {_synced(kind): "", _swept(kind): "",
                                                  _covered(kind): ""}, replace=True)

    def _write(self, kind: str, records: Sequence[Record], gone: Sequence[str],
               moments: Mapping[str, float | str], replace: bool) -> None:
        """Stores the records (only the fields the store uses) and drops `gone`; a new
        version if any row changed."""
        wanted = self.config.fields(kind)
        rows = [self._row(kind, rec, wanted) for rec in records]
        if not replace:
            known = dict(self.side.mirror_rows(kind, rids=[r[0] for r in rows])) if rows else {}
            rows = [r for r in rows if known.get(r[0]) != r[2]]
        state = {key: str(value) for key, value in moments.items()}
        if rows or gone or replace:
            state["version"] = secrets.token_hex(8)
        self.side.mirror_write(kind, rows, gone, state, replace=replace)

    def _row(self, kind: str, rec: Record, wanted: Sequence[str]) -> MirrorRow:
        fields = clean({k: v for k, v in (rec.get("fields") or {}).items() if k in wanted})
        id_field = self._id_field(kind)
        app_id = id_value(fields.get(id_field)) if id_field else rec["id"]
        return rec["id"], app_id, json.dumps(fields, sort_keys=True)

    def _id_field(self, kind: str) -> str:
        return self.config.cf("id") if kind == "c" else self.config.af("id")
