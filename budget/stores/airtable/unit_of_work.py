"""A transaction on a base that has none: reads are cached, writes buffered, and all of
it sent when the outermost transaction ends.

What is sent: 10 records per request, only records whose fields changed, only the
changed fields, attributes first. Before sending, the records about to be written are
read again (one list request per table) and the write is refused with StaleWrite if any
changed in Airtable meanwhile (e.g. `Last Token Update` moved because another instance
wrote). Airtable has no conditional update, so a change landing between that re-read
and the write cannot be detected; the window is one request long.

Before the first request, the writes and their clients' sidecar rows (audit, history,
extras) are journaled and committed; after the last, the sidecar rows of every client
with a write that landed are committed (see `journal`). A failed request's records are
read again to learn whether it landed anyway (an answer lost after the change), so a
change in Airtable never goes without its audit row. What did not land stays unwritten
(Airtable has no rollback): the WriteReport and the raised PartialWrite say exactly
which records were written and which were not, and running the same operation again
completes it without doubling anything (a reset already done is a no-op; the others
are redone)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyairtable.utils import chunked

from ...model import StaleWrite
from ..base import PartialWrite, StoreBusy, StoreError
from .config import AirtableConfig
from .http import AirtableFailure
from .journal import Outcome, learn, settle
from .records import Record, RecordReader, clean
from .deferred import Deferred
from .sidecar_protocol import Extras, Intent, Sidecar
from .tables import Tables

BATCH = 10  # Airtable: records per create/update/delete request
# Airtable's errors that one record of a request can cause (a value its field refuses,
# a record deleted meanwhile), and how many such records are isolated before the rest
# is left unsent
RECORD_ERRORS = {"INVALID_VALUE_FOR_COLUMN", "ROW_DOES_NOT_EXIST"}
MAX_BAD = 3


@dataclass
class WriteReport:
    written: list[str] = field(default_factory=list)  # "Clients rec... (A)"
    not_written: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # sent, but could not be read again
    requests: int = 0
    error: str = ""
    busy: float | None = None  # stopped by a 429: seconds until the same write succeeds
    # the records Airtable answered the writes that landed with, by kind: for the mirror
    answers: dict[str, list[Record]] = field(default_factory=lambda: {"c": [], "a": []})

    @property
    def complete(self) -> bool:
        return not self.not_written and not self.unknown and not self.error

    def raise_for_failure(self) -> None:
        """Raises what the failed write means: nothing written, or exactly what was."""
        if not self.error:
            return
        if self.unknown:
            raise StoreError(f"{self.error}; not known whether it landed: "
                             f"{len(self.unknown)} record(s) ({', '.join(self.unknown)}), "
                             "checked again (and audited if they did) on the next write")
        if not self.written and self.busy is not None:
            raise StoreBusy(f"{self.error}; nothing was written", self.busy)
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
    ops: list[Deferred] = field(default_factory=list)

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

    def defer(self, op: Deferred) -> None:
        """A sidecar write that commits only if the client's Airtable writes land."""
        self.ops.append(op)

    def forget_reads(self) -> None:
        """After the tables were replaced: nothing read before describes them."""
        self.records, self.seen = {"c": {}, "a": {}}, {}
        self.full = {"c": False, "a": False}

    def flush(self, tables: Tables, reader: RecordReader, side: Sidecar) -> WriteReport:
        """Sends the buffered writes inside the caller's sidecar transaction, which the
        journal commits before the first request (or keeps open beside it: the home's
        choice) and the caller commits after the last; raises StaleWrite, writing
        nothing, if a record changed in Airtable meanwhile. A failed request does not
        raise: the report says what was and was not written (see the module docstring
        and `journal`)."""
        pending = {k: v for k, v in self.pending.items() if v}
        # 1. re-read what is about to be written: refuse if it changed in Airtable
        for kind, records in pending.items():
            self._refuse_stale(tables, reader, kind, records)
        # 2. journal the writes and their clients' sidecar rows, committed before sending;
        # the sidecar rows of clients with nothing to send in Airtable are made now
        intents = [Intent(self._client_of(kind, rid, reader, tables.config), kind, rid, f)
                   for kind in ("a", "c") for rid, f in pending.get(kind, {}).items()]
        writing = {i.client_id for i in intents}
        for op in self.ops:
            if op.client_id not in writing:
                op.run(side)
        report = WriteReport()
        if not intents:
            return report
        tx = side.journal(intents, [op for op in self.ops if op.client_id in writing])
        # 3. send; what a failed request did is learnt by reading its records again
        outcome = _Sender(tables, reader, report).send(intents)
        # 4. the sidecar rows of every client with a write that landed, in one commit
        with side.transaction():
            unknown = settle(side, tx, intents, outcome)
        for i in intents:
            label = reader.record_label(i.kind, i.rid)
            state = outcome.get((i.kind, i.rid))
            if state:
                report.written.append(label)
            elif state is None and i.client_id in unknown:
                report.unknown.append(label)
            else:
                report.not_written.append(label)
        return report

    def _refuse_stale(self, tables: Tables, reader: RecordReader, kind: str,
                      records: Mapping[str, Fields]) -> None:
        inverse = tables.config.cf("attributes") if kind == "c" else ""
        fresh = {r["id"]: clean(r.get("fields") or {})
                 for r in tables.by_record_ids(kind, list(records))}
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

    def _client_of(self, kind: str, rid: str, reader: RecordReader, config: AirtableConfig
                   ) -> str:
        """The app id of the client a record write belongs to."""
        if kind == "c":
            return reader.app_id.get(("c", rid), rid)
        links = self.records["a"].get(rid, {}).get(config.af("client")) or [""]
        return reader.app_id.get(("c", links[0]), links[0])


class _Sender:
    """Sends journaled writes 10 records per request, attributes first. A request that
    Airtable refuses because of a record in it (RECORD_ERRORS) is split until the record
    is alone, so the rest are written and the bad one is named by table, record and
    field, up to MAX_BAD records (more are a field or table problem, not a record's);
    any other failure (Airtable down, rate limited, a field unknown) stops the sending.
    A client's record is not sent if one of its attributes' writes did not land."""

    def __init__(self, tables: Tables, reader: RecordReader, report: WriteReport) -> None:
        self.tables, self.reader, self.report = tables, reader, report
        self.outcome: Outcome = {}
        self.stopped = False
        self.errors: list[str] = []
        self.bad: list[str] = []  # records isolated as refused

    def send(self, intents: Sequence[Intent]) -> Outcome:
        for kind in ("a", "c"):
            failed = {i.client_id for i in intents
                      if i.kind == "a" and not self.outcome.get(("a", i.rid))}
            batch = []
            for i in intents:
                if i.kind != kind:
                    continue
                if kind == "c" and i.client_id in failed:
                    self.outcome[("c", i.rid)] = False
                else:
                    batch.append(i)
            for chunk in chunked(batch, BATCH):
                self._send(kind, chunk)
        for i in intents:
            self.outcome.setdefault((i.kind, i.rid), False)
        if self.errors:
            self.report.error = "; ".join(self.errors)
        return self.outcome

    def _send(self, kind: str, chunk: Sequence[Intent]) -> None:
        if self.stopped:
            return
        failure = None
        try:
            self.report.requests += 1
            answer = self.tables[kind].batch_update([{"id": i.rid, "fields": i.fields}
                                                     for i in chunk])
        except AirtableFailure as e:
            failure = e
        if failure is None:
            self.outcome.update({(kind, i.rid): True for i in chunk})
            self.report.answers[kind].extend(answer)
            return
        if 400 <= failure.status < 500:  # refused as a whole: nothing in it landed
            self.outcome.update({(kind, i.rid): False for i in chunk})
            if failure.error_type in RECORD_ERRORS and len(self.bad) < MAX_BAD:
                self._isolate(kind, chunk, failure)
                return
            if failure.status == 429:  # Airtable wants quiet: the same write succeeds later
                self.report.busy = self.tables.config.penalty
        else:  # no answer, a 5xx, an answer garbled: it may have landed all the same
            learnt = learn(self.tables, kind, chunk)
            self.outcome.update(learnt)
            if all(learnt.values()):
                return  # it landed: only the answer was lost
        self.errors.append(str(self.tables.error(failure, kind, "write records")))
        self.stopped = True

    def _isolate(self, kind: str, chunk: Sequence[Intent], failure: AirtableFailure) -> None:
        """Halves a refused request until the record that makes Airtable refuse it is
        alone: the others are written, the bad one named."""
        if len(chunk) > 1:
            half = len(chunk) // 2
            self._send(kind, chunk[:half])
            self._send(kind, chunk[half:])
            return
        self.bad.append(chunk[0].rid)
        self.errors.append(f"{self.tables.error(failure, kind, 'write records')} (record "
                           f"{self.reader.record_label(kind, chunk[0].rid)})")
