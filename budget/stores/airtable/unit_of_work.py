"""A transaction on a base that has none: reads are cached, writes buffered, and all of
it sent when the outermost transaction ends.

What is sent: 10 records per request, only records whose fields changed, only the
changed fields, attributes first. Before sending, the records about to be written are
read again (one list request per table) and the write is refused with StaleWrite if any
changed in Airtable meanwhile (e.g. `Last Token Update` moved because another instance
wrote). Airtable has no conditional update, so a change landing between that re-read
and the write cannot be detected; the window is one request long.

If a request fails part-way, the records already sent stay written (Airtable has no
rollback): the WriteReport and the raised PartialWrite say exactly which records were
written and which were not, the sidecar rows (audit, history, extras) of the clients
whose writes did not all land are not committed, and running the same operation again
completes it without doubling anything (a reset already done is a no-op; the others
are redone)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pyairtable.utils import chunked

from ...model import StaleWrite
from ..base import PartialWrite, StoreError
from .http import AirtableFailure
from .records import Record, RecordReader, clean
from .sidecar_protocol import Extras
from .tables import Tables

BATCH = 10  # Airtable: records per create/update/delete request


@dataclass
class WriteReport:
    written: list[str] = field(default_factory=list)  # "Clients rec... (A)"
    not_written: list[str] = field(default_factory=list)
    requests: int = 0
    error: str = ""

    @property
    def complete(self) -> bool:
        return not self.not_written and not self.error

    def raise_for_failure(self) -> None:
        """Raises what the failed write means: nothing written, or exactly what was."""
        if not self.error:
            return
        if not self.written:
            raise StoreError(f"{self.error}; nothing was written")
        raise PartialWrite(
            f"{self.error}. Written: {len(self.written)} record(s)"
            + (f" ({', '.join(self.written)})" if self.written else "")
            + f"; not written: {len(self.not_written)} ({', '.join(self.not_written)}). "
            "Run the same operation again to finish it.",
            self.written, self.not_written)


Fields = dict[str, Any]


@dataclass
class UnitOfWork:
    """One transaction's state, by kind ("c" clients, "a" attributes) and record id."""

    depth: int = 1
    records: dict[str, dict[str, Fields]] = field(default_factory=lambda: {"c": {}, "a": {}})
    seen: dict[tuple[str, str], Fields] = field(default_factory=dict)  # as first read
    full: dict[str, bool] = field(default_factory=lambda: {"c": False, "a": False})
    pending: dict[str, dict[str, Fields]] = field(default_factory=lambda: {"c": {}, "a": {}})
    extras: dict[str, Extras] = field(default_factory=dict)
    ops: list[tuple[str, Callable[[], None]]] = field(default_factory=list)  # client id, write

    def remember(self, kind: str, records: Iterable[Record], whole_table: bool = False
                 ) -> list[Record]:
        """Caches records as read, with this unit's pending writes on top; `whole_table`:
        they are every record of the table, so later listings need no request."""
        out: list[Record] = []
        for rec in records:
            rid = rec["id"]
            fields = dict(rec.get("fields") or {})
            self.seen.setdefault((kind, rid), clean(fields))
            fields.update(self.pending[kind].get(rid, {}))
            self.records[kind][rid] = fields
            out.append({"id": rid, "fields": fields})
        if whole_table:
            self.full[kind] = True
        return out

    def listed(self, kind: str) -> list[Record] | None:
        """Every record of the table, if this unit has listed it all."""
        if not self.full[kind]:
            return None
        return [{"id": r, "fields": f} for r, f in self.records[kind].items()]

    def cached(self, kind: str, rids: Iterable[str | None]) -> list[Record] | None:
        """These records, if this unit has read them all (None: one is not known)."""
        wanted = list(rids)
        found = [r for r in wanted if r is not None and r in self.records[kind]]
        if len(found) != len(wanted):
            return None
        return [{"id": r, "fields": self.records[kind][r]} for r in found]

    def stage(self, kind: str, rid: str, changed: Fields) -> None:
        """Buffers changed fields of a record that this unit has read."""
        self.pending[kind].setdefault(rid, {}).update(changed)
        self.records[kind][rid].update(changed)

    def defer(self, client_id: str, write: Callable[[], None]) -> None:
        """A sidecar write that commits only if the client's Airtable writes all land."""
        self.ops.append((client_id, write))

    def forget_reads(self) -> None:
        """After the tables were replaced: nothing read before describes them."""
        self.records, self.seen = {"c": {}, "a": {}}, {}
        self.full = {"c": False, "a": False}

    def flush(self, tables: Tables, reader: RecordReader) -> WriteReport:
        """Sends the buffered writes and makes the deferred sidecar writes of the clients
        whose writes all landed, in the sidecar transaction that the caller then commits;
        raises StaleWrite, writing nothing, if a record changed in Airtable meanwhile.
        A failed request does not raise: the report says what was and was not written."""
        config = tables.config
        pending = {k: v for k, v in self.pending.items() if v}
        report = WriteReport()
        # 1. re-read what is about to be written: refuse if it changed in Airtable
        for kind, records in pending.items():
            fresh = {r["id"]: clean(r.get("fields") or {})
                     for r in tables.by_record_ids(kind, list(records))}
            inverse = config.cf("attributes") if kind == "c" else ""
            for rid in records:
                if rid not in fresh:
                    raise StaleWrite(f"{reader.record_label(kind, rid)} was deleted in "
                                     "Airtable since it was read; nothing written; reload")
                was = {k: v for k, v in self.seen.get((kind, rid), {}).items() if k != inverse}
                now = {k: v for k, v in fresh[rid].items() if k != inverse}
                if was != now:
                    changed = sorted(k for k in {*was, *now} if was.get(k) != now.get(k))
                    raise StaleWrite(f"{reader.record_label(kind, rid)}: "
                                     f"{', '.join(changed)} changed in Airtable since it was "
                                     "read; nothing written; reload")
        # 2. write, attributes first, 10 records per request
        failure: tuple[AirtableFailure, str] | None = None
        queue = [(kind, rid, f) for kind in ("a", "c") for rid, f in pending.get(kind, {}).items()]
        done: set[tuple[str, str]] = set()
        for kind in ("a", "c"):
            items = [(rid, f) for k, rid, f in queue if k == kind]
            for chunk in chunked(items, BATCH):
                if failure:
                    break
                try:
                    report.requests += 1
                    tables[kind].batch_update([{"id": r, "fields": f} for r, f in chunk])
                except AirtableFailure as e:
                    failure = (e, kind)
                    break
                for rid, _ in chunk:
                    done.add((kind, rid))
                    report.written.append(reader.record_label(kind, rid))
        failed_clients: set[str] = set()
        for kind, rid, _ in queue:
            if (kind, rid) in done:
                continue
            report.not_written.append(reader.record_label(kind, rid))
            if kind == "c":
                failed_clients.add(reader.app_id.get(("c", rid), rid))
            else:
                links = self.records["a"].get(rid, {}).get(config.af("client")) or []
                failed_clients.update(reader.app_id.get(("c", x), x) for x in links)
        # 3. the sidecar rows of the clients whose writes all landed (one commit, after)
        for client_id, write in self.ops:
            if client_id not in failed_clients:
                write()
        if failure:
            report.error = str(tables.error(failure[0], failure[1], "write records"))
        return report
