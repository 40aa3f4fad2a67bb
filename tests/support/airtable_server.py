"""A loopback HTTP server speaking the part of Airtable's REST API that pyairtable uses.

Real HTTP (stdlib `http.server` in a thread), so the store under test goes through
pyairtable, requests and urllib3 exactly as it does against api.airtable.com:

- records: list (GET and the POST `listRecords` fallback) with pageSize, offset,
  fields[], filterByFormula (a subset: OR, AND, NOT, `=`, `!=`, `<`, `<=`, `>`, `>=`,
  RECORD_ID(), LAST_MODIFIED_TIME(), DATETIME_PARSE(), IS_AFTER(), IS_BEFORE(), {Field},
  quoted strings and numbers), maxRecords; get one; batch create / update (PATCH, PUT)
  / delete, each refused with 422 above 10 records;
- a clock of its own (`now()`, moved by `advance`): every record keeps the time it was
  created or last changed (its inverse links included), as LAST_MODIFIED_TIME() reads;
  `edit` and `delete` change the base as a person in Airtable would, behind the app;
- metadata: list tables, create a table, create a field;
- Airtable's habits: record ids `rec` + 14 characters, empty fields and false
  checkboxes omitted from records, inverse link fields kept in step, unknown fields
  refused with 422 UNKNOWN_FIELD_NAME, bad values with INVALID_VALUE_FOR_COLUMN,
  unknown tables with 404, a wrong token with 401;
- fault switches: `fail(...)` queues an injected status (429, 5xx, 422...), a
  dropped connection, or a garbled 200 (`answer="cut"`: the body cut off mid-way,
  `"html"`: a proxy's HTML page, `"shape"`: JSON that is not Airtable's) for the next
  matching requests (by method, table, kind, or a record in a write's body), a write
  optionally performed first (`apply`); `expire_cursors` makes every
  offset answer LIST_RECORDS_ITERATOR_NOT_AVAILABLE (a number makes only that many);
- `rate_limit`: more requests in a second than that are refused with 429;
- webhooks: create (expiring 7 days later by the base's clock), list, list payloads from
  a cursor (50 a page, `mightHaveMore`), refresh, delete; every record created, changed
  or destroyed (through the API or behind the app) goes into the payloads of each live
  webhook whose specification covers it (`recordChangeScope`, `changeTypes`); past its
  expiration time a webhook is gone (404); `webhook_rights = False` is a token without
  the webhook:manage scope (403 INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND);
- every request is logged (`requests`) so tests can count them.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import re
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from datetime import UTC, datetime
from urllib.parse import parse_qs, unquote, urlsplit

BASE_ID = "appTESTBASE000001"
API_KEY = "patLOOPBACK.secret-token-that-must-never-leak"

WEBHOOK_LIFE = 7 * 24 * 3600.0  # seconds a webhook lives after its creation or refresh
PAYLOADS_PER_PAGE = 50
TEXT_TYPES = {"singleLineText", "multilineText", "richText", "email", "url", "phoneNumber"}


def _rid(prefix: str, rng: random.Random) -> str:
    return prefix + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(14))


@dataclass
class Logged:
    method: str
    path: str
    table: str | None  # table name, when the request is about one table's records
    kind: str  # list, get, create, update, delete, meta
    params: dict
    body: object
    at: float
    status: int = 0


@dataclass
class Fault:
    status: int  # 0 means: drop the connection without an answer
    method: str | None = None
    table: str | None = None
    kind: str | None = None
    times: int = 1
    error_type: str = ""
    message: str = ""
    after: int = 0  # let this many matching requests through first
    record: str | None = None  # only writes whose records include this record id
    apply: bool = False  # for writes: perform the write, then fail (the answer is lost)
    delay: float = 0.0  # seconds to wait before answering (a timeout, with `apply`: late)
    call: Callable[[], None] | None = None  # run when it strikes (after the write, with
    #                                          `apply`): e.g. kill -9 the client process
    answer: str = ""  # garbled 200: "cut" (body cut off), "html" (a page), "shape" (not
    #                   Airtable's JSON); the status is then 200

    def __post_init__(self) -> None:
        if self.answer:
            self.status = 200


@dataclass
class Table:
    id: str
    name: str
    fields: list[dict]
    records: dict[str, dict] = field(default_factory=dict)  # id -> {"id", "createdTime", "fields"}

    def field(self, name: str) -> dict | None:
        for f in self.fields:
            if f["name"] == name or f["id"] == name:
                return f
        return None


@dataclass
class Hook:
    """A webhook: its specification, when it expires (the base's clock), and its
    payloads, the first at cursor 1."""

    id: str
    specification: dict
    expires: float
    payloads: list[dict] = field(default_factory=list)

    def covers(self, table: Table, change: str) -> bool:
        filters = self.specification.get("options", {}).get("filters", {})
        scope = filters.get("recordChangeScope")
        return ("tableData" in filters.get("dataTypes", [])
                and scope in (None, "", table.id)
                and change in (filters.get("changeTypes") or [change]))


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


class _Reject(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


# --- formulas -----------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\")"
                    r"|(?P<num>-?\d+(?:\.\d+)?)"
                    r"|(?P<field>\{(?:\\.|[^}\\])*\})|(?P<op>!=|>=|<=|=|>|<|\(|\)|,)|(?P<name>[A-Z_]+))")


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise _Reject(422, "INVALID_FILTER_BY_FORMULA",
                          f"The formula for filtering records is invalid: {text!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


_COMPARE = {"=": lambda a, b: a == b, "!=": lambda a, b: a != b,
            "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s[1:-1])


class _Formula:
    """Parses the subset of Airtable's formula language the store sends."""

    def __init__(self, text: str, table: Table) -> None:
        self.toks, self.i, self.table = _tokens(text), 0, table
        self.tree = self._expr()
        if self.i != len(self.toks):
            raise _Reject(422, "INVALID_FILTER_BY_FORMULA", f"unexpected text in {text!r}")

    def _peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _take(self, value: str | None = None) -> tuple[str, str]:
        tok = self._peek()
        if tok is None or (value is not None and tok[1] != value):
            raise _Reject(422, "INVALID_FILTER_BY_FORMULA", f"expected {value!r}")
        self.i += 1
        return tok

    def _expr(self):
        left = self._atom()
        tok = self._peek()
        if tok and tok[1] in _COMPARE:
            self._take()
            right = self._atom()
            return ("cmp", tok[1], left, right)
        return left

    def _atom(self):
        kind, value = self._take()
        if kind == "str":
            return ("lit", _unescape(value))
        if kind == "num":
            return ("lit", float(value))
        if kind == "field":
            name = _unescape(value)
            if self.table.field(name) is None:
                raise _Reject(422, "INVALID_FILTER_BY_FORMULA",
                              f"Unknown field names: {name.lower()}")
            return ("field", name)
        if kind == "name":
            self._take("(")
            args = []
            if self._peek() and self._peek()[1] != ")":
                args.append(self._expr())
                while self._peek() and self._peek()[1] == ",":
                    self._take(",")
                    args.append(self._expr())
            self._take(")")
            if value not in ("OR", "AND", "NOT", "RECORD_ID", "TRUE", "FALSE",
                             "LAST_MODIFIED_TIME", "DATETIME_PARSE", "IS_AFTER", "IS_BEFORE"):
                raise _Reject(422, "INVALID_FILTER_BY_FORMULA", f"unknown function {value}")
            return ("call", value, args)
        raise _Reject(422, "INVALID_FILTER_BY_FORMULA", f"unexpected {value!r}")

    def __call__(self, rec: dict) -> bool:
        return bool(self._eval(self.tree, rec))

    def _eval(self, node, rec):
        tag = node[0]
        if tag == "lit":
            return node[1]
        if tag == "field":
            v = rec["fields"].get(node[1])
            if isinstance(v, list):
                return ", ".join(map(str, v))
            return "" if v is None else v
        if tag == "cmp":
            a, b = self._eval(node[2], rec), self._eval(node[3], rec)
            if isinstance(a, (int, float)) and not isinstance(a, bool) and isinstance(b, str):
                b = float(b) if re.fullmatch(r"-?\d+(\.\d+)?", b) else b
            if isinstance(b, (int, float)) and not isinstance(b, bool) and isinstance(a, str):
                a = float(a) if re.fullmatch(r"-?\d+(\.\d+)?", a) else a
            return _COMPARE[node[1]](a, b)
        _, name, args = node
        if name == "RECORD_ID":
            return rec["id"]
        if name == "LAST_MODIFIED_TIME":
            return rec.get("modified", 0.0)
        if name == "TRUE":
            return True
        if name == "FALSE":
            return False
        vals = [self._eval(a, rec) for a in args]
        if name == "OR":
            return any(vals)
        if name == "AND":
            return all(vals)
        if name == "DATETIME_PARSE":  # a time as seconds since the epoch, as records keep it
            return datetime.fromisoformat(str(vals[0]).replace("Z", "+00:00")).timestamp()
        if name == "IS_AFTER":
            return vals[0] > vals[1]
        if name == "IS_BEFORE":
            return vals[0] < vals[1]
        return not vals[0]


# --- the server ---------------------------------------------------------------------
class FakeAirtable:
    """One base; start() it, point pyairtable's `endpoint_url` at `url`."""

    def __init__(self, base_id: str = BASE_ID, api_key: str = API_KEY, seed: int = 1) -> None:
        self.base_id, self.api_key = base_id, api_key
        self.forbidden_keys: set[str] = set()
        self.tables: dict[str, Table] = {}
        self.requests: list[Logged] = []
        self.faults: list[Fault] = []
        self.expire_cursors: bool | int = False
        self.page_delay = 0.0
        self.rate_limit = 0  # requests per second the base accepts (0: any number)
        self._accepted: list[float] = []  # when the last accepted requests came
        self._cursors: dict[str, tuple[str, list[str]]] = {}
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._clock = itertools.count()
        self.clock_offset = 0.0  # seconds the base's clock runs ahead of the machine's
        self.hooks: dict[str, Hook] = {}
        self.webhook_rights = True  # the token has the webhook:manage scope
        self._transaction = itertools.count(1)  # the base's transaction numbers
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle ---------------------------------------------------------------
    def start(self) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # the base's clock ----------------------------------------------------------------
    def now(self) -> float:
        """The base's time (seconds since the epoch): what records' last-modified times
        are taken from."""
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Moves the base's clock on, as if that much time had passed."""
        self.clock_offset += seconds

    # schema and data, for tests (no HTTP, no validation) -------------------------
    def add_table(self, name: str, fields: list[tuple[str, str] | tuple[str, str, dict]]) -> Table:
        with self._lock:
            table = Table(_rid("tbl", self._rng), name, [])
            self.tables[table.id] = table
            for spec in fields:
                self._add_field(table, {"name": spec[0], "type": spec[1],
                                        "options": spec[2] if len(spec) > 2 else None})
            return table

    def link(self, table: str, name: str, other: str, inverse: str) -> None:
        """A link field and its inverse, as Airtable creates them."""
        with self._lock:
            a, b = self.table(table), self.table(other)
            fa = {"id": _rid("fld", self._rng), "name": name, "type": "multipleRecordLinks"}
            fb = {"id": _rid("fld", self._rng), "name": inverse, "type": "multipleRecordLinks"}
            fa["options"] = {"linkedTableId": b.id, "inverseLinkFieldId": fb["id"],
                             "isReversed": False, "prefersSingleRecordLink": False}
            fb["options"] = {"linkedTableId": a.id, "inverseLinkFieldId": fa["id"],
                             "isReversed": False, "prefersSingleRecordLink": False}
            a.fields.append(fa)
            b.fields.append(fb)

    def table(self, name_or_id: str) -> Table:
        for t in self.tables.values():
            if name_or_id in (t.id, t.name):
                return t
        raise KeyError(name_or_id)

    def put(self, table: str, fields: dict, record_id: str | None = None) -> str:
        """Stores a record as given (even a bad one); returns its id."""
        with self._lock:
            t = self.table(table)
            rid = record_id or _rid("rec", self._rng)
            t.records[rid] = {"id": rid, "createdTime": "2026-01-01T00:00:00.000Z",
                              "fields": dict(fields), "modified": self.now()}
            self._sync_links(t, rid)
            self._note(t, "add", [rid])
            return rid

    def edit(self, table: str, rid: str, fields: dict) -> None:
        """Changes a record's fields as a person editing the base in Airtable would:
        the app is not told, only the record's last-modified time moves."""
        with self._lock:
            t = self.table(table)
            t.records[rid]["fields"].update(fields)
            t.records[rid]["modified"] = self.now()
            self._sync_links(t, rid)
            self._note(t, "update", [rid])

    def delete(self, table: str, rid: str) -> None:
        """Deletes a record as a person in Airtable would (its links go with it)."""
        with self._lock:
            t = self.table(table)
            t.records[rid]["fields"] = {}
            self._sync_links(t, rid)
            del t.records[rid]
            self._note(t, "remove", [rid])

    def age(self, seconds: float) -> None:
        """Every record as if last changed that much earlier: data made a while ago."""
        with self._lock:
            for t in self.tables.values():
                for rec in t.records.values():
                    rec["modified"] = rec.get("modified", 0.0) - seconds

    def modified(self, table: str, rid: str) -> float:
        """The record's last-modified time, as LAST_MODIFIED_TIME() reads it."""
        with self._lock:
            return float(self.table(table).records[rid]["modified"])

    def records(self, table: str) -> list[dict]:
        with self._lock:
            t = self.table(table)
            return [self._out(t, r, None) for r in t.records.values()]

    def count(self, kind: str | None = None, table: str | None = None,
              method: str | None = None) -> int:
        return sum(1 for r in self.requests
                   if (kind is None or r.kind == kind) and (table is None or r.table == table)
                   and (method is None or r.method == method))

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def fail(self, status: int, **kw) -> Fault:
        f = Fault(status, **kw)
        with self._lock:
            self.faults.append(f)
        return f

    # internals ---------------------------------------------------------------------
    def _add_field(self, table: Table, spec: dict) -> dict:
        name = spec.get("name")
        if not name or table.field(name) is not None:
            raise _Reject(422, "DUPLICATE_OR_EMPTY_FIELD_NAME",
                          f"Field name {name!r} is empty or already exists in {table.name}")
        f = {"id": _rid("fld", self._rng), "name": name, "type": spec.get("type")}
        if spec.get("options"):
            f["options"] = spec["options"]
        if spec.get("description"):
            f["description"] = spec["description"]
        table.fields.append(f)
        return f

    def _sync_links(self, table: Table, rid: str) -> None:
        """Keeps inverse link fields in step with a record's link fields."""
        for f in table.fields:
            if f["type"] != "multipleRecordLinks":
                continue
            other = self.tables[f["options"]["linkedTableId"]]
            inverse = next(x for x in other.fields
                           if x["id"] == f["options"]["inverseLinkFieldId"])["name"]
            linked = set(table.records[rid]["fields"].get(f["name"]) or []) \
                if rid in table.records else set()
            for orec in other.records.values():
                ids = list(orec["fields"].get(inverse) or [])
                if orec["id"] in linked and rid not in ids:
                    ids.append(rid)
                elif orec["id"] not in linked and rid in ids:
                    ids.remove(rid)
                else:
                    continue
                orec["fields"][inverse] = ids
                orec["modified"] = self.now()  # a link's other end changed too

    @staticmethod
    def _empty(v: object) -> bool:
        return v is None or v == "" or v == [] or v is False

    def _out(self, table: Table, rec: dict, fields: list[str] | None) -> dict:
        out = {k: v for k, v in rec["fields"].items() if not self._empty(v)}
        if fields is not None:
            out = {k: v for k, v in out.items() if k in fields}
        return {"id": rec["id"], "createdTime": rec["createdTime"], "fields": out}

    def _check_value(self, table: Table, name: str, value: object) -> None:
        f = table.field(name)
        if f is None:
            raise _Reject(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
        if value is None:
            return
        t = f["type"]
        bad = ((t == "number" and (isinstance(value, bool) or not isinstance(value, (int, float))))
               or (t == "checkbox" and not isinstance(value, bool))
               or (t in TEXT_TYPES and not isinstance(value, str))
               or (t in ("date", "dateTime") and not isinstance(value, str))
               or (t == "multipleRecordLinks" and not (isinstance(value, list) and all(
                   isinstance(x, str) and x in self.tables[f["options"]["linkedTableId"]].records
                   for x in value))))
        if bad:
            raise _Reject(422, "INVALID_VALUE_FOR_COLUMN",
                          f'Field "{name}" cannot accept the provided value')

    def _write_fields(self, table: Table, fields: dict) -> None:
        for k, v in fields.items():
            self._check_value(table, k, v)

    def handle(self, method: str, raw_path: str, body: object, key: str | None,
               ) -> tuple[int, object, str] | None:
        """(status, JSON payload, how to garble it: "" not at all), or None: drop."""
        split = urlsplit(raw_path)
        parts = [unquote(p) for p in split.path.split("/") if p]
        params = parse_qs(split.query, keep_blank_values=True)
        table_name, kind = self._classify(method, parts, body)
        entry = Logged(method, split.path, table_name, kind, params, body, time.monotonic())
        with self._lock:
            self.requests.append(entry)
            if self._over_rate(entry.at):
                entry.status = 429
                return 429, {"errors": [{"error": "RATE_LIMIT_REACHED", "message":
                                         "Rate limit exceeded. Please try again later"}]}, ""
            fault = self._fault(entry)
        if fault is not None and not fault.apply:
            self._strike(fault)
            entry.status = fault.status
            if fault.status == 0:
                return None
            return fault.status, {"error": {"type": fault.error_type or _TYPES.get(
                fault.status, "SERVER_ERROR"), "message": fault.message or "injected"}}, \
                fault.answer
        try:
            if key != self.api_key and key not in self.forbidden_keys:
                raise _Reject(401, "AUTHENTICATION_REQUIRED", "Authentication required")
            if key in self.forbidden_keys:
                raise _Reject(403, "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
                              "Invalid permissions, or the requested model was not found.")
            with self._lock:
                result = self._route(method, parts, params, body)
        except _Reject as e:
            entry.status = e.status
            return e.status, {"error": {"type": e.error_type, "message": e.message}}, ""
        if fault is not None:  # applied, then the answer is lost
            self._strike(fault)
            entry.status = fault.status
            if fault.status == 0:
                return None
            if fault.answer:
                return 200, result, fault.answer
            return fault.status, {"error": {"type": _TYPES.get(fault.status, "SERVER_ERROR"),
                                            "message": "injected after applying"}}, ""
        entry.status = 200
        return 200, result, ""

    def _over_rate(self, now: float) -> bool:
        """Airtable's 5 requests per second per base, as a sliding window of 1 s over
        the requests it accepted."""
        if not self.rate_limit:
            return False
        self._accepted = [t for t in self._accepted if now - t < 1.0]
        if len(self._accepted) >= self.rate_limit:
            return True
        self._accepted.append(now)
        return False

    @staticmethod
    def _strike(fault: Fault) -> None:
        if fault.call is not None:
            fault.call()
        if fault.delay:
            time.sleep(fault.delay)

    def _classify(self, method: str, parts: list[str], body: object) -> tuple[str | None, str]:
        if len(parts) >= 2 and parts[1] == "meta":
            return None, "meta"
        if len(parts) >= 4 and parts[1] == "bases" and parts[3] == "webhooks":
            return None, "webhook"
        if len(parts) >= 3 and parts[0] == "v0":
            name = parts[2]
            try:
                name = self.table(name).name
            except KeyError:
                pass
            listing = len(parts) == 4 and parts[3] == "listRecords"
            if method == "GET" and len(parts) == 3 or listing:
                return name, "list"
            if method == "GET":
                return name, "get"
            return name, {"POST": "create", "PATCH": "update", "PUT": "update",
                          "DELETE": "delete"}.get(method, "other")
        return None, "other"

    def _fault(self, entry: Logged) -> Fault | None:
        for f in self.faults:
            if f.times <= 0:
                continue
            if ((f.method and f.method != entry.method) or (f.table and f.table != entry.table)
                    or (f.kind and f.kind != entry.kind)
                    or (f.record and f.record not in _record_ids(entry.body))):
                continue
            if f.after > 0:
                f.after -= 1
                continue
            f.times -= 1
            return f
        return None

    def _route(self, method: str, parts: list[str], params: dict, body: object) -> object:
        if len(parts) < 2 or parts[0] != "v0":
            raise _Reject(404, "NOT_FOUND", "Could not find what you are looking for")
        if parts[1] == "meta":
            return self._meta(method, parts[2:], body)
        if parts[1] == "bases" and len(parts) >= 4 and parts[2:4] == [self.base_id, "webhooks"]:
            return self._webhooks(method, parts[4:], params, body)
        if parts[1] != self.base_id:
            raise _Reject(404, "NOT_FOUND", "Could not find what you are looking for")
        if len(parts) < 3:
            raise _Reject(404, "NOT_FOUND", "Could not find what you are looking for")
        try:
            table = self.table(parts[2])
        except KeyError:
            raise _Reject(404, "TABLE_NOT_FOUND",
                          f'Could not find table "{parts[2]}" in application {self.base_id}'
                          ) from None
        rest = parts[3:]
        if method == "GET" and not rest:
            return self._list(table, params)
        if method == "POST" and rest == ["listRecords"]:
            return self._list(table, {k: v if isinstance(v, list) else [v]
                                      for k, v in (body or {}).items()}, from_body=True)
        if method == "GET" and len(rest) == 1:
            rec = table.records.get(rest[0])
            if rec is None:
                raise _Reject(404, "NOT_FOUND", "Could not find what you are looking for")
            return self._out(table, rec, None)
        if method == "POST" and not rest:
            return self._create(table, body)
        if method in ("PATCH", "PUT"):
            if rest:
                return self._update(table, {"records": [{"id": rest[0], **(body or {})}]},
                                    method == "PUT")["records"][0]
            return self._update(table, body, method == "PUT")
        if method == "DELETE" and not rest:
            return self._delete(table, params.get("records[]", []))
        if method == "DELETE" and len(rest) == 1:
            return self._delete(table, rest)["records"][0]
        raise _Reject(404, "NOT_FOUND", "Could not find what you are looking for")

    def _list(self, table: Table, params: dict, from_body: bool = False) -> dict:
        def one(name: str, default: str | None = None) -> str | None:
            v = params.get(name)
            return v[0] if v else default

        fields = params.get("fields[]") if not from_body else params.get("fields")
        if from_body and fields and isinstance(fields[0], list):
            fields = fields[0]
        if fields:
            for f in fields:
                if table.field(f) is None:
                    raise _Reject(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{f}"')
        size = int(one("pageSize", "100") or 100)
        if not 1 <= size <= 100:
            raise _Reject(422, "INVALID_REQUEST_UNKNOWN", "pageSize must be 1..100")
        offset = one("offset")
        if offset:
            if self.expire_cursors is True or (self.expire_cursors and offset in self._cursors):
                if self.expire_cursors is not True:
                    self.expire_cursors -= 1
                raise _Reject(422, "LIST_RECORDS_ITERATOR_NOT_AVAILABLE",
                              "The requested iterator is no longer available")
            if offset not in self._cursors:
                raise _Reject(422, "LIST_RECORDS_ITERATOR_NOT_AVAILABLE",
                              "The requested iterator is no longer available")
            _, ids = self._cursors.pop(offset)
        else:
            formula = one("filterByFormula")
            match = _Formula(formula, table) if formula else (lambda rec: True)
            ids = [rid for rid, rec in table.records.items() if match(rec)]
            max_records = one("maxRecords")
            if max_records:
                ids = ids[:int(max_records)]
        page, rest = ids[:size], ids[size:]
        if self.page_delay:
            time.sleep(self.page_delay)
        out: dict = {"records": [self._out(table, table.records[i], fields)
                                 for i in page if i in table.records]}
        if rest:
            cursor = f"itr{next(self._clock)}/{rest[0]}"
            self._cursors[cursor] = (table.id, rest)
            out["offset"] = cursor
        return out

    def _batch(self, body: object) -> list[dict]:
        records = (body or {}).get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records:
            raise _Reject(422, "INVALID_REQUEST_MISSING_FIELDS", "Could not find field \"records\"")
        if len(records) > 10:
            raise _Reject(422, "INVALID_RECORDS", "You can only send up to 10 records per request")
        return records

    def _create(self, table: Table, body: object) -> dict:
        records = self._batch(body)
        for r in records:
            self._write_fields(table, r.get("fields") or {})
        out = []
        for r in records:
            rid = _rid("rec", self._rng)
            table.records[rid] = {"id": rid, "createdTime": "2026-01-01T00:00:00.000Z",
                                  "fields": dict(r.get("fields") or {}),
                                  "modified": self.now()}
            self._sync_links(table, rid)
            out.append(self._out(table, table.records[rid], None))
        self._note(table, "add", [r["id"] for r in out])
        return {"records": out}

    def _update(self, table: Table, body: object, replace: bool) -> dict:
        records = self._batch(body)
        for r in records:
            if r.get("id") not in table.records:
                raise _Reject(404, "ROW_DOES_NOT_EXIST",
                              f"Record ID {r.get('id')} does not exist in this table")
            self._write_fields(table, r.get("fields") or {})
        out = []
        for r in records:
            rec = table.records[r["id"]]
            if replace:
                rec["fields"] = {}
            rec["fields"].update(r.get("fields") or {})
            rec["modified"] = self.now()
            self._sync_links(table, r["id"])
            out.append(self._out(table, rec, None))
        self._note(table, "update", [r["id"] for r in out])
        return {"records": out}

    def _delete(self, table: Table, ids: list[str]) -> dict:
        if len(ids) > 10:
            raise _Reject(422, "INVALID_RECORDS",
                          "You can only delete up to 10 records per request")
        for i in ids:
            if i not in table.records:
                raise _Reject(404, "ROW_DOES_NOT_EXIST", f"Record ID {i} does not exist")
        for i in ids:
            rec = table.records[i]
            rec["fields"] = {}
            self._sync_links(table, i)
            del table.records[i]
        self._note(table, "remove", ids)
        return {"records": [{"id": i, "deleted": True} for i in ids]}

    # webhooks ------------------------------------------------------------------------
    def _note(self, table: Table, change: str, rids: list[str]) -> None:
        """A transaction of the base: into the payloads of every live webhook that
        covers it, shaped as Airtable's (changedTablesById, by record id)."""
        if not rids:
            return
        number, now = next(self._transaction), self.now()
        if change == "remove":
            changes: dict = {"destroyedRecordIds": list(rids)}
        else:
            key = "createdRecordsById" if change == "add" else "changedRecordsById"
            cells = {rid: {"cellValuesByFieldId": {}} for rid in rids}
            if change == "add":
                cells = {rid: {**c, "createdTime": _iso(now)} for rid, c in cells.items()}
            else:
                cells = {rid: {"current": c} for rid, c in cells.items()}
            changes = {key: cells}
        for hook in self._live_hooks():
            if hook.covers(table, change):
                hook.payloads.append({
                    "timestamp": _iso(now), "baseTransactionNumber": number,
                    "payloadFormat": "v0",
                    "actionMetadata": {"source": "publicApi", "sourceMetadata": {}},
                    "changedTablesById": {table.id: changes}})

    def _live_hooks(self) -> list[Hook]:
        """The webhooks not yet expired; the expired are gone, as in Airtable."""
        now = self.now()
        for hid in [h.id for h in self.hooks.values() if h.expires <= now]:
            del self.hooks[hid]
        return list(self.hooks.values())

    def _webhooks(self, method: str, rest: list[str], params: dict, body: object) -> object:
        if not self.webhook_rights:
            raise _Reject(403, "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
                          "Invalid permissions, or the requested model was not found.")
        live = {h.id: h for h in self._live_hooks()}
        if not rest and method == "POST":
            spec = (body or {}).get("specification") if isinstance(body, dict) else None
            if not isinstance(spec, dict) or not spec.get("options", {}).get("filters"):
                raise _Reject(422, "INVALID_REQUEST_UNKNOWN", "specification is required")
            hook = Hook(_rid("ach", self._rng), spec, self.now() + WEBHOOK_LIFE)
            self.hooks[hook.id] = hook
            secret = base64.b64encode(hook.id.encode()).decode()
            return {"id": hook.id, "macSecretBase64": secret,
                    "expirationTime": _iso(hook.expires)}
        if not rest and method == "GET":
            return {"webhooks": [{
                "id": h.id, "areNotificationsEnabled": False,
                "cursorForNextPayload": len(h.payloads) + 1, "isHookEnabled": True,
                "lastSuccessfulNotificationTime": None, "notificationUrl": None,
                "lastNotificationResult": None, "expirationTime": _iso(h.expires),
                "specification": h.specification} for h in live.values()]}
        hook = live.get(rest[0]) if rest else None
        if hook is None:
            raise _Reject(404, "NOT_FOUND", "Could not find what you are looking for")
        if method == "GET" and rest[1:] == ["payloads"]:
            cursor = int((params.get("cursor") or ["1"])[0])
            page = hook.payloads[cursor - 1:cursor - 1 + PAYLOADS_PER_PAGE]
            return {"payloads": page, "cursor": cursor + len(page),
                    "mightHaveMore": cursor - 1 + len(page) < len(hook.payloads)}
        if method == "POST" and rest[1:] == ["refresh"]:
            hook.expires = self.now() + WEBHOOK_LIFE
            return {"expirationTime": _iso(hook.expires)}
        if method == "DELETE" and len(rest) == 1:
            del self.hooks[hook.id]
            return {}
        raise _Reject(404, "NOT_FOUND", "Could not find what you are looking for")

    def _meta(self, method: str, parts: list[str], body: object) -> object:
        # parts after /v0/meta: bases/{id}/tables[/{table}/fields]
        if len(parts) < 3 or parts[:3] != ["bases", self.base_id, "tables"]:
            raise _Reject(404, "NOT_FOUND", "Could not find what you are looking for")
        if method == "GET" and len(parts) == 3:
            return {"tables": [self._table_schema(t) for t in self.tables.values()]}
        if method == "POST" and len(parts) == 3:
            spec = body or {}
            name = spec.get("name")
            if not name or any(t.name == name for t in self.tables.values()):
                raise _Reject(422, "DUPLICATE_TABLE_NAME", f"Table name {name!r} already exists")
            t = Table(_rid("tbl", self._rng), name, [])
            self.tables[t.id] = t
            for f in spec.get("fields") or []:
                self._add_field(t, f)
            return self._table_schema(t)
        if method == "POST" and len(parts) == 5 and parts[4] == "fields":
            try:
                t = self.table(parts[3])
            except KeyError:
                raise _Reject(404, "TABLE_NOT_FOUND",
                              f"Could not find table {parts[3]!r}") from None
            return self._add_field(t, body or {})
        raise _Reject(404, "NOT_FOUND", "Could not find what you are looking for")

    @staticmethod
    def _table_schema(t: Table) -> dict:
        return {"id": t.id, "name": t.name, "primaryFieldId": t.fields[0]["id"] if t.fields else "",
                "fields": [dict(f) for f in t.fields],
                "views": [{"id": "viw" + t.id[3:], "name": "Grid view", "type": "grid"}]}


def _record_ids(body: object) -> list[str]:
    records = body.get("records") if isinstance(body, dict) else None
    return [r.get("id") for r in records if isinstance(r, dict)] \
        if isinstance(records, list) else []


_TYPES = {429: "RATE_LIMIT_REACHED", 500: "SERVER_ERROR", 502: "BAD_GATEWAY",
          503: "SERVICE_UNAVAILABLE", 422: "INVALID_REQUEST_UNKNOWN",
          401: "AUTHENTICATION_REQUIRED", 403: "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND"}


def _handler(fake: FakeAirtable) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            auth = self.headers.get("Authorization") or ""
            key = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
            answer = fake.handle(self.command, self.path, body, key)
            if answer is None:  # dropped connection
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass
                return
            status, payload, garble = answer
            data = json.dumps(payload).encode()
            kind = "application/json"
            if garble == "html":
                kind, data = "text/html", (b"<html><head><title>502 Bad Gateway</title></head>"
                                           b"<body><h1>502 Bad Gateway</h1></body></html>")
            elif garble == "shape":
                data = json.dumps({"data": payload, "note": "not Airtable's shape"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            if garble == "cut":  # the promised length, half of it sent, then hang up
                data = data[:max(1, len(data) // 2)]
                self.close_connection = True
            # headers and body in one write: no delayed-ACK stall between two segments
            self._headers_buffer.append(b"\r\n" + data)
            self.flush_headers()
            if garble == "cut":
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    return Handler


CLIENT_FIELDS = [("Client Name", "singleLineText"), ("Service Level", "number", {"precision": 0}),
                 ("Token Budget", "number", {"precision": 0}),
                 ("Token Usage", "number", {"precision": 0}),
                 ("Budget Reset Date", "date", {"dateFormat": {"name": "iso"}}),
                 ("Last Token Update", "dateTime", {"timeZone": "utc"}),
                 ("Email", "email"), ("Account Manager", "singleLineText")]
ATTRIBUTE_FIELDS = [("Name", "singleLineText"), ("Active", "checkbox"),
                    ("Instructions", "multilineText"), ("Examples", "multilineText"),
                    ("Signals", "multilineText")]


def standard_base(fake: FakeAirtable, token_fields: bool = True,
                  id_fields: bool = False) -> FakeAirtable:
    """The base the README describes: Clients and Scoring Attributes, linked."""
    cf = [f for f in CLIENT_FIELDS if token_fields or f[0] in ("Client Name", "Service Level",
                                                                "Email", "Account Manager")]
    af = list(ATTRIBUTE_FIELDS)
    if id_fields:
        cf.insert(1, ("Client ID", "singleLineText"))
        af.insert(1, ("Attribute ID", "singleLineText"))
    fake.add_table("Clients", cf)
    fake.add_table("Scoring Attributes", af)
    fake.link("Scoring Attributes", "Client", "Clients", "Scoring Attributes")
    return fake
