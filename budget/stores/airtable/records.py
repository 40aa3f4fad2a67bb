"""Airtable records read as Clients and Attributes. A record with a field missing or of
the wrong kind is skipped with a warning naming the record and the field; the rest of
the data still loads. Airtable omits empty fields and false checkboxes from records."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from ...model import Attribute, BadInput, Client, Tier
from .config import AirtableConfig
from .sidecar_protocol import Extras
from .versions import text_hash, version_of

Record = Mapping[str, Any]  # {"id": record id, "fields": {field name: value}}
_RECORD_ID = re.compile(r"rec[A-Za-z0-9]{14}")


def is_record_id(value: str) -> bool:
    return bool(_RECORD_ID.fullmatch(value))


def whole(value: object) -> int | None:
    """An int from a number or its decimal text; None if it is not a whole number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    return None


def id_value(raw: object) -> str:
    """The app's id from an id field's value (text or a number, e.g. an autonumber);
    "" when the field is empty or holds something else."""
    return str(raw).strip() if isinstance(raw, (str, int)) and not isinstance(raw, bool) else ""


def clean(fields: Mapping[str, object]) -> dict[str, Any]:
    """A record's fields as Airtable returns them: no empty values, no false checkboxes."""
    return {k: v for k, v in fields.items() if v not in (None, "", [], False)}


class DuplicateId(BadInput):
    """Two or more records hold one app id: which of them a read or a write would reach
    is Airtable's listing order, so a budget could be checked against one record and
    summed over both. Every read and write of that id is refused with this, naming the
    records, until one of them is changed in Airtable."""


class _Skip(Exception):
    """The record cannot be read: `field_name` is missing or holds `problem`."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(field_name, problem)
        self.field_name, self.problem = field_name, problem


class RecordReader:
    """Parses records and remembers what parsing learnt: which record holds which app id
    (an id field's value when one is configured, else the record id), the hash of each
    attribute's texts, and the warnings of the last load, by kind ("c", "a")."""

    def __init__(self, config: AirtableConfig) -> None:
        self.config = config
        self.warnings: dict[str, list[str]] = {"c": [], "a": []}
        self.rid: dict[tuple[str, str], str] = {}  # (kind, app id) -> record id
        self.app_id: dict[tuple[str, str], str] = {}  # (kind, record id) -> app id
        self.hashes: dict[str, str] = {}  # attribute id -> hash of its texts
        # (kind, app id) -> (record, field, problem) of the DuplicateId it is refused with
        self.duplicates: dict[tuple[str, str], tuple[str, str, str]] = {}

    def warn(self, kind: str, message: str) -> None:
        if message not in self.warnings[kind]:
            self.warnings[kind].append(message)

    def label(self, kind: str, rid: str, fields: Mapping[str, Any]) -> str:
        """How a warning names a record: table, record id and name."""
        return f"{self.config.table(kind)} record {self._named(kind, rid, fields)}"

    def _named(self, kind: str, rid: str, fields: Mapping[str, Any]) -> str:
        """A record id with the record's name: "rec... (Acme)"."""
        name = fields.get(self.config.cf("name") if kind == "c" else self.config.af("name"))
        return rid + (f" ({name})" if isinstance(name, str) and name else "")

    def record_label(self, kind: str, rid: str) -> str:
        """How a write report names a record: table, record id and app id."""
        app_id = self.app_id.get((kind, rid))
        return f"{self.config.table(kind)} {rid}" + (
            f" ({app_id})" if app_id and app_id != rid else "")

    def id_field(self, kind: str) -> str:
        return self.config.cf("id") if kind == "c" else self.config.af("id")

    def unique(self, kind: str, records: Sequence[Record], every_holder: bool
               ) -> list[Record]:
        """The records whose app id no other record holds. Ids held by several are
        remembered as duplicates (with a warning naming every record) and their records
        left out, as are the records of ids already known as duplicates. `every_holder`:
        the records are all that hold their ids (a whole listing, a lookup by app id),
        so an id seen once is no longer a duplicate (it was fixed in Airtable)."""
        id_field = self.id_field(kind)
        if not id_field:
            return list(records)  # record ids are unique
        holders: dict[str, list[Record]] = defaultdict(list)
        for rec in records:
            holders[id_value((rec.get("fields") or {}).get(id_field))].append(rec)
        out: list[Record] = []
        for app_id, recs in holders.items():
            if app_id and len(recs) > 1:
                labels = [self._named(kind, r["id"], r.get("fields") or {}) for r in recs]
                record = (f"Airtable table {self.config.table(kind)!r} records "
                          + ", ".join(labels[:-1]) + " and " + labels[-1])
                self.duplicates[(kind, app_id)] = (
                    record, id_field, f"duplicate id {app_id!r}; every read and write of "
                    f"{app_id} is refused until one of them is given another id in Airtable")
                self.warn(kind, str(DuplicateId(*self.duplicates[(kind, app_id)])))
                continue
            if every_holder:
                self.duplicates.pop((kind, app_id), None)
            if (kind, app_id) not in self.duplicates:
                out.extend(recs)
        return out

    def refuse_duplicate(self, kind: str, app_id: str) -> None:
        """Raises DuplicateId if `app_id` is known to be held by several records."""
        known = self.duplicates.get((kind, app_id))
        if known is not None:
            raise DuplicateId(*known)

    def client(self, rec: Record, tiers: Mapping[int, Tier],
               extras: Callable[[str], Extras]) -> Client | None:
        """The client, or None (with a warning) if the record cannot be one."""
        label = self.label("c", rec["id"], rec.get("fields") or {})
        try:
            return self._client(rec, tiers, extras, label)
        except _Skip as s:
            self.warn("c", f"{label}: {s.field_name}: {s.problem}; record skipped")
            return None

    def _client(self, rec: Record, tiers: Mapping[int, Tier], extras: Callable[[str], Extras],
                label: str) -> Client:
        cf = self.config.cf
        rid, f = rec["id"], rec.get("fields") or {}
        cid = _own_id(rid, f, cf("id"))
        name = f.get(cf("name"))
        if not isinstance(name, str) or not name.strip():
            name = cid
        lvl_field, raw_level = cf("service_level"), f.get(cf("service_level"))
        if raw_level is None:
            raise _Skip(lvl_field, "missing")
        level = whole(raw_level)
        if level is None or level < 1:
            raise _Skip(lvl_field, f"not a service level number: {raw_level!r}")
        budget: int | None = None
        raw_budget = f.get(cf("token_budget"))
        if raw_budget is not None:
            budget = whole(raw_budget)
            if budget is None:
                raise _Skip(cf("token_budget"), f"not a whole number: {raw_budget!r}")
            if budget < 0:
                raise _Skip(cf("token_budget"), f"negative: {budget}")
        if budget is None and level not in tiers:
            raise _Skip(lvl_field, f"level {level} is not in the tier table "
                                   f"({', '.join(map(str, tiers))})")
        usage = whole(f.get(cf("token_usage"), 0))
        if usage is None or usage < 0:
            self.warn("c", f"{label}: {cf('token_usage')}: not a token count: "
                           f"{f.get(cf('token_usage'))!r}; read as 0")
            usage = 0
        reset = self._date(f.get(cf("budget_reset_date")), label, cf("budget_reset_date"))
        updated = self._datetime(f.get(cf("last_token_update")), label,
                                 cf("last_token_update"))
        email = f.get(cf("email"), "") if cf("email") else ""
        manager = f.get(cf("account_manager"), "") if cf("account_manager") else ""
        topup, months, last_period, anchor = extras(cid)
        client = Client(cid, name, level, budget, usage, reset, updated,
                        email if isinstance(email, str) else "",
                        manager if isinstance(manager, str) else "",
                        topup, months, last_period, anchor)
        self.rid[("c", cid)], self.app_id[("c", rid)] = rid, cid
        return replace(client, version=version_of(client))

    def _date(self, raw: object, label: str, field_name: str) -> date | None:
        if raw in (None, ""):
            return None
        try:
            return date.fromisoformat(str(raw)[:10])
        except ValueError:
            self.warn("c", f"{label}: {field_name}: not a date: {raw!r}; read as empty")
            return None

    def _datetime(self, raw: object, label: str, field_name: str) -> datetime | None:
        if raw in (None, ""):
            return None
        try:
            value = datetime.fromisoformat(str(raw))
        except ValueError:
            self.warn("c", f"{label}: {field_name}: not a date and time: {raw!r}; read as empty")
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    def attribute(self, rec: Record) -> Attribute | None:
        """The attribute, or None (with a warning) if the record cannot be one. With a
        Client ID field, the linked client's record must have been read first."""
        label = self.label("a", rec["id"], rec.get("fields") or {})
        try:
            return self._attribute(rec)
        except _Skip as s:
            self.warn("a", f"{label}: {s.field_name}: {s.problem}; record skipped")
            return None

    def _attribute(self, rec: Record) -> Attribute:
        af = self.config.af
        rid, f = rec["id"], rec.get("fields") or {}
        aid = _own_id(rid, f, af("id"))
        links = f.get(af("client"))
        if not links:
            raise _Skip(af("client"), "linked to no client")
        if not isinstance(links, list) or not all(isinstance(x, str) for x in links):
            raise _Skip(af("client"), f"not a link to a client: {links!r}")
        if len(links) > 1:
            raise _Skip(af("client"), f"linked to {len(links)} clients "
                                      f"({', '.join(links)}); link exactly one")
        cid = links[0]
        if self.config.cf("id"):
            cid = self.app_id.get(("c", links[0]), "")
            if not cid:
                raise _Skip(af("client"), f"linked to client record {links[0]}, "
                                          "which has no usable id")
        name = f.get(af("name"), "")
        name = name if isinstance(name, str) else str(name)
        active = f.get(af("active"), False)
        if not isinstance(active, bool):
            raise _Skip(af("active"), f"not a checkbox value: {active!r}")
        texts = []
        for role in ("instructions", "examples", "signals"):
            v = f.get(af(role), "")
            if not isinstance(v, str):
                raise _Skip(af(role), f"must be text, got {type(v).__name__}")
            texts.append(v)
        instructions, examples, signals = texts
        attr = Attribute(aid, cid, name, active, instructions, examples, signals)
        self.rid[("a", aid)], self.app_id[("a", rid)] = rid, aid
        self.hashes[aid] = text_hash(instructions, examples, signals)
        return replace(attr, version=version_of(attr))


def _own_id(rid: str, fields: Mapping[str, object], id_field: str) -> str:
    """The record's id in the app: its id field's value when one is configured (a record
    without one is skipped), else Airtable's record id."""
    if not id_field:
        return rid
    own = id_value(fields.get(id_field))
    if not own:
        raise _Skip(id_field, "missing")
    return own
