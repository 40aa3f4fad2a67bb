"""AirtableStore: the Store protocol over an Airtable base, its reads and writes.

`transaction()` takes a lock shared by every store of the same base in the process, the
sidecar's writer lock and its write lock (see `sidecar_protocol`), so writers are
serialised across processes, and with the sidecar in PostgreSQL across hosts too (per
client); it first settles what a writer that died left in the journal; inside it,
writes are buffered in a UnitOfWork.

Reads answer from the mirror in the sidecar (`mirror`) after a sync step: outside a
transaction a sync when one is due, inside one a sync of each table read whole, and
records read by id come from Airtable itself, so what a write is checked against is
what Airtable holds now. After a write, the mirror takes Airtable's answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime

from pyairtable.utils import chunked, datetime_to_iso_str

from ...core import as_utc
from ...model import (Attribute, AttributeCost, AuditEntry, BadInput, Client, Deactivation,
                      FieldTokens, Notification, StaleWrite, Tier)
from ...settings import AirtableSettings
from ...settings.schema import DEFAULT_LOCK_TIMEOUT
from ..base import PassHolder, StoreError
from .config import AirtableConfig
from .http import AirtableFailure, Pacer
from .records import Record, RecordReader, clean, id_value, is_record_id
from .deferred import Deferred
from .journal import reconcile
from .mirror import Mirror
from .sidecar_protocol import Extras, open_sidecar
from .tables import KINDS, Tables
from .unit_of_work import BATCH, UnitOfWork, WriteReport
from .versions import text_hash

_SHARED: dict[str, tuple[Pacer, threading.RLock, threading.Lock]] = {}
_SHARED_LOCK = threading.Lock()


def _shared(config: AirtableConfig) -> tuple[Pacer, threading.RLock, threading.Lock]:
    """The request pacer, the writer lock and the mirror's sync gate of the config's
    base, shared by every store of that base in the process: the rate limit, the writes
    and the syncs are the base's. The pacer keeps its schedule in a file of the machine
    (`AirtableConfig.local_file`), shared by its processes."""
    key = f"{config.endpoint_url}|{config.base_id}"
    with _SHARED_LOCK:
        pacer, lock, gate = _SHARED.setdefault(key, (Pacer(config.min_interval,
                                                           config.local_file(".pace")),
                                                     threading.RLock(), threading.Lock()))
        pacer.interval = config.min_interval
    return pacer, lock, gate


class AirtableStore:
    """The Store protocol over an Airtable base (see the package docstring)."""

    def __init__(self, config: AirtableConfig) -> None:
        missing = config.missing_names()
        if missing:
            raise BadInput("settings", ", ".join(missing), "field name must not be empty")
        self.config = config
        self.label = f"Airtable: base {config.base_id}"
        pacer, self._lock, gate = _shared(config)
        self.tables = Tables(config, pacer)
        self.api = self.tables.api
        self._side = open_sidecar(config.sidecar, config.lock_timeout)
        self.mirror = Mirror(self.tables, self._side, gate)
        self._read = RecordReader(config)
        self._tx: UnitOfWork | None = None
        self._tx_owner: int | None = None
        self.last_write: WriteReport | None = None
        self._settle_journal()

    def _settle_journal(self) -> None:
        """What a writer that died left in the journal, settled on opening (every
        transaction does so first as well). Skipped, for the next writer, if another is
        at work (it settles first) or Airtable cannot be read now."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            with self._side.writer_lock(0), self.api.failing_fast():
                reconcile(self.tables, self._side)
        except StoreError:
            pass
        finally:
            self._lock.release()

    def __repr__(self) -> str:
        return f"<AirtableStore base={self.config.base_id}>"

    @property
    def sidecar_label(self) -> str:
        """Where the sidecar lives, for messages."""
        return self._side.label

    def close(self) -> None:
        """Returns the sidecar's connections (a PostgreSQL sidecar's pool)."""
        self._side.close()

    @property
    def warnings(self) -> list[str]:
        return self._read.warnings["c"] + self._read.warnings["a"]

    @property
    def requests_sent(self) -> int:
        return self.api.sent

    # the mirror -------------------------------------------------------------------------
    def sync(self) -> None:
        """Brings the mirror in step with Airtable now (the dashboard's Refresh)."""
        self.mirror.sync(KINDS, force=True)

    def matched_at(self) -> datetime | None:
        """When the mirror last matched Airtable."""
        return self.mirror.matched_at()

    def data_version(self) -> str:
        """Changes when a sync (run now if one is due) or a write changed the mirror, and
        every five minutes, for what other processes wrote in the sidecar."""
        self.mirror.sync(KINDS)
        return f"mirror {self.mirror.version()}|window {int(time.time() // 300)}"

    def _mirrored(self, kind: str) -> list[Record]:
        """Every record of the table, from the mirror after a sync step: inside a
        transaction, always one (what the transaction computes with is what Airtable
        holds, to the request)."""
        self.mirror.sync([kind], force=self._current() is not None)
        return self.mirror.all(kind)

    def _by_id(self, kind: str) -> Tables | Mirror:
        """Where records asked for by id come from: Airtable inside a transaction (the
        records a write is decided on), the mirror after a sync step otherwise."""
        if self._current() is not None:
            return self.tables
        self.mirror.sync([kind])
        return self.mirror

    # transactions ---------------------------------------------------------------
    def _current(self) -> UnitOfWork | None:
        return self._tx if self._tx_owner == threading.get_ident() else None

    def _unit(self) -> UnitOfWork:
        """The unit of work of the transaction a write runs in."""
        tx = self._current()
        assert tx is not None
        return tx

    @contextmanager
    def transaction(self, client_id: str | None = None) -> Iterator[None]:
        tx = self._current()
        if tx is not None:
            tx.depth += 1
            try:
                with self._side.transaction(client_id):  # joins, locking this client too
                    yield
            finally:
                tx.depth -= 1
            return
        self.api.wait_out_penalty()  # before the locks: nobody waits behind the penalty
        with self._lock, self._side.writer_lock(self.config.lock_timeout), \
                self.api.failing_fast():
            reconcile(self.tables, self._side)
            tx = UnitOfWork()
            self._tx, self._tx_owner = tx, threading.get_ident()
            try:
                with self._side.transaction(client_id):
                    yield
                    report = tx.flush(self.tables, self._read, self._side)
            finally:
                self._tx, self._tx_owner = None, None
            self.last_write = report
            self.mirror.absorb(report.answers)
            report.raise_for_failure()  # after the commit of the clients that landed

    def pass_lock(self) -> AbstractContextManager[bool]:
        """In the sidecar: every process and host sharing it, as they share the alert
        state."""
        return self._side.pass_lock()

    def pass_holder(self) -> PassHolder | None:
        return self._side.pass_holder()

    def _remember(self, kind: str, records: Iterable[Record], whole_table: bool = False
                  ) -> list[Record]:
        """Records as read; inside a transaction, cached in its unit of work."""
        tx = self._current()
        if tx is not None:
            return tx.remember(kind, records, whole_table)
        return [{"id": rec["id"], "fields": dict(rec.get("fields") or {})} for rec in records]

    # parsing --------------------------------------------------------------------------
    def _extras(self, client_id: str) -> Extras:
        tx = self._current()
        if tx is not None and client_id in tx.extras:
            return tx.extras[client_id]
        return self._side.extras(client_id)

    def _parse_client(self, rec: Record, tiers: Mapping[int, Tier]) -> Client | None:
        return self._read.client(rec, tiers, self._extras)

    def _ensure_client_ids(self, records: Iterable[Record]) -> None:
        """With a Client ID field, links need the client records' ids: read them once."""
        cf, af = self.config.cf, self.config.af
        if not cf("id"):
            return
        wanted = {x for r in records for x in (r.get("fields") or {}).get(af("client"), [])
                  if isinstance(x, str)}
        unknown = [x for x in wanted if ("c", x) not in self._read.app_id]
        if unknown:
            found = self.mirror.by_record_ids("c", unknown)
            rest = sorted(set(unknown) - {r["id"] for r in found})
            for rec in [*found, *(self.tables.by_record_ids("c", rest) if rest else [])]:
                cid = id_value((rec.get("fields") or {}).get(cf("id")))
                if cid:
                    self._read.app_id[("c", rec["id"])] = cid

    # reads ------------------------------------------------------------------------------
    def tiers(self) -> dict[int, Tier]:
        return self._side.tiers()

    def _client_records(self) -> list[Record]:
        tx = self._current()
        listed = tx.listed("c") if tx is not None else None
        if listed is not None:
            return listed
        return self._remember("c", self._mirrored("c"), whole_table=True)

    def clients(self) -> list[Client]:
        self._read.warnings["c"] = []
        tiers = self.tiers()
        records = self._read.unique("c", self._client_records(), every_holder=True)
        out = [c for c in (self._parse_client(rec, tiers) for rec in records) if c is not None]
        return sorted(out, key=lambda c: (c.name, c.id))

    def _client_record(self, client_id: str) -> Record | None:
        """The client's record; DuplicateId if several hold its id."""
        id_field = self.config.cf("id")
        tx = self._current()
        if tx is not None:
            cached = tx.cached("c", [self._read.rid.get(("c", client_id))])
            if cached and (not id_field or cached[0]["fields"].get(id_field) == client_id):
                self._read.refuse_duplicate("c", client_id)
                return cached[0]
        if id_field:
            records = self._by_id("c").by_app_ids("c", [client_id])
        elif is_record_id(client_id):
            records = self._by_id("c").by_record_ids("c", [client_id])
        else:
            records = []
        records = self._read.unique("c", self._remember("c", records), every_holder=True)
        self._read.refuse_duplicate("c", client_id)
        return records[0] if records else None

    def client(self, client_id: str) -> Client | None:
        rec = self._client_record(client_id)
        return self._parse_client(rec, self.tiers()) if rec else None

    def _attribute_records(self, client_id: str | None, ids: Sequence[str] | None
                           ) -> list[Record]:
        tx = self._current()
        listed = tx.listed("a") if tx is not None else None
        if listed is not None:
            return listed
        if ids is not None:
            cached = tx.cached("a", [self._read.rid.get(("a", i)) for i in ids]) \
                if tx is not None else None
            if cached is not None:
                return cached
            return self._remember("a", self._by_id("a").by_app_ids("a", list(ids)))
        if client_id is None:
            return self._remember("a", self._mirrored("a"), whole_table=True)
        if not self.config.cf("attributes"):  # no inverse link field: read all, filter here
            return self._attribute_records(None, None)
        rec = self._client_record(client_id)
        if rec is None:
            return []
        linked = rec["fields"].get(self.config.cf("attributes")) or []
        rids = [r for r in linked if isinstance(r, str)]
        cached = tx.cached("a", rids) if tx is not None else None
        if cached is not None:
            return cached
        return self._remember("a", self._by_id("a").by_record_ids("a", rids)) if rids else []

    def _load_attributes(self, client_id: str | None = None,
                         ids: Sequence[str] | None = None) -> list[Attribute]:
        """The attributes asked for; DuplicateId if one asked for by id, or one of the
        client's, has an id that several records hold (the client's usage and any
        check against its budget would depend on which record counts)."""
        whole = client_id is None and ids is None
        if whole:
            self._read.warnings["a"] = []
        records = self._attribute_records(client_id, ids)
        self._ensure_client_ids(records)
        kept = self._read.unique("a", records, every_holder=whole)
        if client_id is not None:
            own = self._read.rid.get(("c", client_id), client_id)
            for rec in records:
                fields = rec.get("fields") or {}
                if own in (fields.get(self.config.af("client")) or []):
                    self._read.refuse_duplicate("a", id_value(fields.get(self.config.af("id"))))
        if ids is not None:
            for aid in ids:
                self._read.refuse_duplicate("a", aid)
        out = []
        for rec in kept:
            a = self._read.attribute(rec)
            if a is None:
                continue
            if client_id is not None and a.client_id != client_id:
                continue
            if ids is not None and a.id not in ids:
                continue
            out.append(a)
        return out

    def attributes(self, client_id: str | None = None,
                   ids: Sequence[str] | None = None) -> list[Attribute]:
        return sorted(self._load_attributes(client_id, ids),
                      key=lambda a: (a.client_id, a.name, a.id))

    def costs(self, encoding: str, client_id: str | None = None
              ) -> tuple[list[AttributeCost], list[Attribute]]:
        attrs = self._load_attributes(client_id)
        hashes = {a.id: self._read.hashes[a.id] for a in attrs}
        known = self._side.counts(encoding, hashes.values())
        counted, missing = [], []
        for a in attrs:
            t = known.get(hashes[a.id])
            if t is None:
                missing.append(a)
            else:
                counted.append(AttributeCost(a.id, a.client_id, a.name, a.active, t))
        return counted, missing

    def audit(self, client_id: str | None = None) -> list[AuditEntry]:
        return self._side.audit(client_id)

    def history(self, client_id: str | None = None) -> list[tuple[str, datetime, int, int]]:
        return self._side.history(client_id)

    def setting(self, key: str) -> str | None:
        return self._side.setting(key)

    def settings(self) -> dict[str, str]:
        return self._side.settings()

    # writes --------------------------------------------------------------------------
    def save_setting(self, key: str, value: str) -> None:
        with self.transaction():
            self._side.save_setting(key, value)

    def _op(self, client_id: str | None, method: str, *args: object) -> None:
        """A sidecar write (`method(*args)`) that, for a client, commits only if that
        client's Airtable writes land; with no client, made now."""
        if client_id is None:
            getattr(self._side, method)(*args)
        else:
            self._unit().defer(Deferred(client_id, method, args))

    def save_counts(self, encoding: str, counts: dict[str, FieldTokens]) -> None:
        by_hash = {self._read.hashes[aid]: t for aid, t in counts.items()
                   if aid in self._read.hashes}
        with self.transaction():
            self._side.save_counts(encoding, by_hash)

    @staticmethod
    def _client_out(c: Client) -> dict[str, object]:
        """Airtable field values of a client, by role."""
        updated = c.last_token_update
        return {"id": c.id, "name": c.name, "service_level": c.service_level,
                "token_budget": c.token_budget, "token_usage": c.token_usage,
                "budget_reset_date": c.budget_reset_date.isoformat()
                if c.budget_reset_date else None,
                "last_token_update": datetime_to_iso_str(as_utc(updated))
                if updated is not None else None,
                "email": c.email or None, "account_manager": c.account_manager or None}

    def save_client(self, client: Client) -> Client:
        cf = self.config.cf
        with self.transaction():
            tx = self._unit()
            rec = self._client_record(client.id)
            current = self._parse_client(rec, self.tiers()) if rec else None
            if rec is None or current is None or current.version != client.version:
                raise StaleWrite(f"client {client.id} changed since it was read; reload")
            rid = rec["id"]
            new, old = self._client_out(client), self._client_out(current)
            diff = {cf(role): value for role, value in new.items()
                    if cf(role) and role != "id" and value != old[role]}
            if cf("id") and client.id != current.id:
                raise BadInput(f"client {current.id}", cf("id"), "ids cannot change")
            if diff:
                tx.stage("c", rid, diff)
            extras = (client.topup, client.period_months, client.last_reset_period,
                      client.anchor_day)
            if extras != (current.topup, current.period_months, current.last_reset_period,
                          current.anchor_day):
                tx.extras[client.id] = extras
                self._op(client.id, "save_extras", client.id, extras)
            saved = self._parse_client({"id": rid, "fields": tx.records["c"][rid]}, self.tiers())
        return saved  # type: ignore[return-value]

    def save_attributes(self, attributes: Iterable[Attribute], encoding: str,
                        counts: dict[str, FieldTokens]) -> None:
        af = self.config.af
        with self.transaction():
            tx = self._unit()
            attributes = list(attributes)
            by_id = {a.id: a for a in self._load_attributes(ids=[a.id for a in attributes])}
            for a in attributes:
                current = by_id.get(a.id)
                if current is None or current.version != a.version:
                    raise StaleWrite(f"attribute {a.id} changed since it was read; reload")
                rid = self._read.rid[("a", a.id)]
                diff = {af(role): getattr(a, role) for role in
                        ("name", "active", "instructions", "examples", "signals")
                        if getattr(a, role) != getattr(current, role)}
                if a.client_id != current.client_id:
                    raise BadInput(f"attribute {a.id}", af("client"),
                                   "moving an attribute to another client is not supported")
                if diff:
                    tx.stage("a", rid, diff)
                self._read.hashes[a.id] = text_hash(a.instructions, a.examples, a.signals)
            self.save_counts(encoding, counts)

    def save_tier(self, tier: Tier) -> None:
        with self.transaction():
            self._side.save_tier(tier)

    def add_audit(self, entry: AuditEntry) -> None:
        with self.transaction():
            self._op(entry.client_id, "add_audit", entry)

    def add_history(self, client_id: str, at: datetime, usage: int, budget: int) -> None:
        with self.transaction():
            self._op(client_id, "add_history", client_id, at, usage, budget)

    def clear_alerts(self, client_id: str, period: date) -> int:
        with self.transaction():
            n = self._side.count_sent_alerts(client_id, period)
            self._op(client_id, "clear_alerts", client_id, period)
            return n

    # data sets ------------------------------------------------------------------------
    def replace_all(self, tiers: Iterable[Tier], clients: Iterable[Client],
                    attributes: Iterable[Attribute]) -> None:
        cf, af = self.config.cf, self.config.af
        if not self.config.allow_replace:
            raise StoreError(
                f"Airtable base {self.config.base_id}: loading a data set deletes every record "
                f"in {self.config.clients_table!r} and {self.config.attributes_table!r}; "
                "refused. Set AIRTABLE_ALLOW_REPLACE=1 only for a base that holds test data.")
        tiers, clients, attributes = list(tiers), list(clients), list(attributes)
        with self.transaction():
            tx = self._unit()
            step = "delete records"
            kind = "a"
            failure = None
            try:
                for kind in ("a", "c"):
                    first = [self.config.fields(kind)[0]]
                    rids = [r["id"] for r in self.tables.all(kind, fields=first)]
                    for chunk in chunked(rids, BATCH):
                        self.tables[kind].batch_delete(chunk)
                step, kind = "create records", "c"
                rid_of: dict[str, str] = {}
                for client_chunk in chunked(clients, BATCH):
                    payload = [clean({cf(r): v for r, v in self._client_out(c).items()
                                      if cf(r) and (r != "id" or cf("id"))})
                               for c in client_chunk]
                    created = self.tables["c"].batch_create(payload)
                    for c, rec in zip(client_chunk, created, strict=True):
                        rid_of[c.id] = rec["id"]
                kind = "a"
                for attribute_chunk in chunked(attributes, BATCH):
                    payload = []
                    for a in attribute_chunk:
                        fields = {af("name"): a.name, af("active"): a.active,
                                  af("client"): [rid_of[a.client_id]],
                                  af("instructions"): a.instructions,
                                  af("examples"): a.examples, af("signals"): a.signals}
                        if af("id"):
                            fields[af("id")] = a.id
                        payload.append(clean(fields))
                    created = self.tables["a"].batch_create(payload)
                    for a, rec in zip(attribute_chunk, created, strict=True):
                        h = text_hash(a.instructions, a.examples, a.signals)
                        self._read.hashes[a.id] = self._read.hashes[rec["id"]] = h
                        new_id = a.id if af("id") else rec["id"]
                        self._read.hashes[new_id] = h
            except AirtableFailure as e:
                failure = e
            if failure is not None:
                raise StoreError(f"{self.tables.error(failure, kind, step)}; the data set is "
                                 "only partly loaded: run the same load again to finish it")
            self.mirror.forget()
            self._side.replace(tiers, [
                (c.id if cf("id") else rid_of[c.id],
                 (c.topup, c.period_months, c.last_reset_period, c.anchor_day))
                for c in clients])
            tx.forget_reads()

    # automation: alert state, notifications, deactivation policy and runs, in the
    # sidecar ----------------------------------------------------------------------
    def sent_alerts(self) -> set[tuple[str, int, date]]:
        return self._side.sent_alerts()

    def claim_alert(self, client_id: str, thresholds: Sequence[int], period: date,
                    holder: str, lease: float) -> bool:
        """Committed in the sidecar at once, never deferred to a unit of work: the claim
        must be seen by every other pass before the email goes out."""
        if self._current() is not None:
            raise StoreError("an alert claim is committed at once: claim outside a "
                             "transaction")
        return self._side.claim_alert(client_id, thresholds, period, holder, lease)

    def notifications(self, client_id: str | None = None) -> list[Notification]:
        return self._side.notifications(client_id)

    def save_notification(self, notification: Notification) -> None:
        with self.transaction():
            self._side.save_notification(notification)

    def auto_deactivate_flags(self) -> dict[str, bool]:
        return self._side.auto_deactivate_flags()

    def save_auto_deactivate_flag(self, client_id: str, enabled: bool | None) -> None:
        with self.transaction():
            self._side.save_auto_deactivate_flag(client_id, enabled)

    def deactivations(self, run_id: str | None = None) -> list[Deactivation]:
        return self._side.deactivations(run_id)

    def add_deactivation(self, deactivation: Deactivation) -> None:
        """Commits only if that client's Airtable writes of the transaction all land
        (like its audit and history)."""
        with self.transaction():
            self._op(deactivation.client_id, "add_deactivation", deactivation)

    def mark_restored(self, deactivations: Iterable[Deactivation], at: datetime) -> None:
        with self.transaction():
            for d in deactivations:
                self._op(d.client_id, "mark_restored", [d], at)


def open_airtable(settings: AirtableSettings,
                  lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> AirtableStore:
    return AirtableStore(AirtableConfig.from_settings(settings, lock_timeout))
