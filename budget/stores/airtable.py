"""The production store: the user's Airtable base, through pyairtable.

Where each thing lives
----------------------
*In Airtable* (what Airtable users see and edit): the client master table
(`Clients`: name, Service Level, Token Budget, Token Usage, Budget Reset Date,
Last Token Update, Email, Account Manager) and the attributes table
(`Scoring Attributes`: Name, Client link, Active, Instructions, Examples, Signals).
Table and field names are settings (see `AirtableConfig`). Client and attribute ids
are Airtable record ids unless an id field is configured (`AIRTABLE_CLIENT_ID_FIELD`,
`AIRTABLE_ATTRIBUTE_ID_FIELD`).

*In a local SQLite sidecar file* (`AIRTABLE_SIDECAR`, default
`data/airtable-sidecar.db`): what Airtable cannot hold natively or what only the
app needs -- the tier table, the audit log, the usage history, the token-count
cache (keyed by a hash of the texts, so an edit made directly in Airtable is
recounted), the alert state, the admin settings kept with the data (e.g. the encoding) and the
per-client extras (temporary top-up, period
length, last reset period). Why not Airtable tables: the audit entry, history
snapshot and extras of a change must commit together, which one SQLite transaction
gives and Airtable (no transactions, 10 records per write) does not; and they would
spend the base's 5 requests per second on data no Airtable user reads. The cost:
the sidecar must sit on persistent storage that every app instance shares (the
README says so); `tokenbudget airtable migrate` creates it and says where it is.

Versions: Airtable has none, so a record's version is a hash of its content (what
the app reads of it, plus the sidecar extras). A write compares the caller's
version with the record as read inside the transaction, and before sending,
re-reads the records it is about to write (one list request per table) and refuses
with StaleWrite if any changed in Airtable meanwhile (e.g. `Last Token Update`
moved because another instance wrote). Airtable has no conditional update, so a
change landing between that re-read and the write cannot be detected; the window is
one request long.

Transactions: `transaction()` takes a lock shared by every store of the same base in
the process and the sidecar's SQLite write lock (BEGIN IMMEDIATE), so writers on one
machine are serialised, across processes too. Writes inside it are buffered and
sent when the outermost transaction ends: 10 records per request, only records whose
fields changed, only the changed fields. If a request fails part-way, the records
already sent stay written (Airtable has no rollback): `last_write` and the raised
`PartialWrite` say exactly which records were written and which were not, the
sidecar rows (audit, history, extras) of the clients whose writes did not all land
are not committed, and running the same operation again completes it without
doubling anything (a reset already done is a no-op; the others are redone).

Requests: paced under Airtable's 5 per second per base (`AIRTABLE_MIN_INTERVAL`),
a 429 waits out Airtable's penalty (`AIRTABLE_RATE_LIMIT_PENALTY`, 30 s) and is
retried, idempotent requests (GET, PATCH with absolute values, DELETE, list) are
retried on 5xx and dropped connections with backoff, an expired list cursor restarts
the listing, list requests ask only for the fields the store uses, user text in
formulas is escaped with pyairtable's formula helpers. Error messages name the table
and field and never contain the API key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone

import requests
from pyairtable import Api
from pyairtable.formulas import OR, RECORD_ID, EQ, Field, to_formula_str

from ..model import (DEFAULT_TIERS, Attribute, AttributeCost, AuditEntry, BadInput, Client,
                     FieldTokens, StaleWrite, Tier)
from .base import PartialWrite, StoreError
from . import automation_sql  # issue 6: the automation tables in the sidecar

# role -> (setting, default field name); "" means: not used
CLIENT_FIELDS: dict[str, tuple[str, str]] = {
    "id": ("AIRTABLE_CLIENT_ID_FIELD", ""),
    "name": ("AIRTABLE_CLIENT_NAME_FIELD", "Client Name"),
    "service_level": ("AIRTABLE_SERVICE_LEVEL_FIELD", "Service Level"),
    "token_budget": ("AIRTABLE_TOKEN_BUDGET_FIELD", "Token Budget"),
    "token_usage": ("AIRTABLE_TOKEN_USAGE_FIELD", "Token Usage"),
    "budget_reset_date": ("AIRTABLE_BUDGET_RESET_DATE_FIELD", "Budget Reset Date"),
    "last_token_update": ("AIRTABLE_LAST_TOKEN_UPDATE_FIELD", "Last Token Update"),
    "email": ("AIRTABLE_EMAIL_FIELD", "Email"),
    "account_manager": ("AIRTABLE_ACCOUNT_MANAGER_FIELD", "Account Manager"),
    # the inverse of the attributes' Client link, which Airtable adds by itself
    "attributes": ("AIRTABLE_CLIENT_ATTRIBUTES_FIELD", "Scoring Attributes"),
}
ATTRIBUTE_FIELDS: dict[str, tuple[str, str]] = {
    "id": ("AIRTABLE_ATTRIBUTE_ID_FIELD", ""),
    "name": ("AIRTABLE_ATTRIBUTE_NAME_FIELD", "Name"),
    "client": ("AIRTABLE_ATTRIBUTE_CLIENT_FIELD", "Client"),
    "active": ("AIRTABLE_ACTIVE_FIELD", "Active"),
    "instructions": ("AIRTABLE_INSTRUCTIONS_FIELD", "Instructions"),
    "examples": ("AIRTABLE_EXAMPLES_FIELD", "Examples"),
    "signals": ("AIRTABLE_SIGNALS_FIELD", "Signals"),
}
TOKEN_FIELDS = ("token_budget", "token_usage", "budget_reset_date", "last_token_update")
BATCH = 10  # Airtable: records per create/update/delete request
IDS_PER_FORMULA = 100
ITERATOR_EXPIRED = "LIST_RECORDS_ITERATOR_NOT_AVAILABLE"
_RECORD_ID = re.compile(r"rec[A-Za-z0-9]{14}")


def _truthy(v: object) -> bool:
    return str(v).strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class AirtableConfig:
    api_key: str = field(repr=False)
    base_id: str
    endpoint_url: str = "https://api.airtable.com"
    clients_table: str = "Clients"
    attributes_table: str = "Scoring Attributes"
    client_fields: Mapping[str, str] = field(
        default_factory=lambda: {k: v[1] for k, v in CLIENT_FIELDS.items()})
    attribute_fields: Mapping[str, str] = field(
        default_factory=lambda: {k: v[1] for k, v in ATTRIBUTE_FIELDS.items()})
    sidecar: str = "data/airtable-sidecar.db"
    min_interval: float = 0.22  # seconds between requests: 4.5 per second, under 5
    penalty: float = 30.0  # Airtable's wait after a 429
    retries: int = 5
    backoff: float = 1.0  # first wait before retrying a 5xx / dropped connection
    timeout: tuple[float, float] = (10.0, 60.0)
    allow_replace: bool = False  # demo-data wipes both tables: only on a test base

    @classmethod
    def from_settings(cls, raw: Mapping[str, object] | None) -> AirtableConfig:
        raw = dict(raw or {})
        nested = raw.get("airtable")  # a [airtable] table in secrets.toml
        if isinstance(nested, Mapping):
            raw = {**{f"AIRTABLE_{k}".upper(): v for k, v in nested.items()}, **raw}

        def get(key: str, default: str = "") -> str:
            v = raw.get(key)
            return default if v is None else str(v).strip()

        key = get("AIRTABLE_API_KEY")
        if not key:
            raise BadInput("settings", "AIRTABLE_API_KEY",
                           "not set; put it in the environment or .streamlit/secrets.toml")
        base = get("AIRTABLE_BASE_ID")
        if not re.fullmatch(r"app[A-Za-z0-9]{14}", base):
            raise BadInput("settings", "AIRTABLE_BASE_ID",
                           "not set or not a base id (app followed by 14 letters and digits)")

        def number(name: str, default: float) -> float:
            try:
                value = float(get(name, str(default)))
            except ValueError:
                raise BadInput("settings", name, f"must be a number, got {get(name)!r}") from None
            if value < 0:
                raise BadInput("settings", name, f"must not be negative, got {value}")
            return value

        timeout = (number("AIRTABLE_CONNECT_TIMEOUT", 10.0), number("AIRTABLE_READ_TIMEOUT", 60.0))
        return cls(
            api_key=key, base_id=base,
            endpoint_url=get("AIRTABLE_ENDPOINT_URL", cls.endpoint_url).rstrip("/"),
            clients_table=get("AIRTABLE_CLIENTS_TABLE", cls.clients_table),
            attributes_table=get("AIRTABLE_ATTRIBUTES_TABLE", cls.attributes_table),
            client_fields={k: get(s, d) for k, (s, d) in CLIENT_FIELDS.items()},
            attribute_fields={k: get(s, d) for k, (s, d) in ATTRIBUTE_FIELDS.items()},
            sidecar=get("AIRTABLE_SIDECAR", cls.sidecar),
            min_interval=number("AIRTABLE_MIN_INTERVAL", cls.min_interval),
            penalty=number("AIRTABLE_RATE_LIMIT_PENALTY", cls.penalty),
            retries=int(number("AIRTABLE_RETRIES", cls.retries)),
            backoff=number("AIRTABLE_RETRY_BACKOFF", cls.backoff),
            timeout=timeout,
            allow_replace=_truthy(get("AIRTABLE_ALLOW_REPLACE", "0")))

    def missing_names(self) -> list[str]:
        """Required field roles that are set to nothing."""
        return [f"{CLIENT_FIELDS[r][0]}" for r in ("name", "service_level", *TOKEN_FIELDS)
                if not self.client_fields.get(r)] + \
               [f"{ATTRIBUTE_FIELDS[r][0]}" for r in ("client", "active", "instructions",
                                                       "examples", "signals")
                if not self.attribute_fields.get(r)]


# --- HTTP: pacing, retries, errors ---------------------------------------------------
class _Pacer:
    """Spaces requests to one base at least `interval` seconds apart, across threads."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            at = max(now, self._next)
            self._next = at + self.interval
        if at > now:
            time.sleep(at - now)

    def penalise(self, seconds: float) -> None:
        with self._lock:
            self._next = max(self._next, time.monotonic() + seconds)


_SHARED: dict[str, tuple[_Pacer, threading.RLock]] = {}
_SHARED_LOCK = threading.Lock()


class AirtableFailure(Exception):
    """One failed request, reduced to plain strings: no response, request or headers,
    so nothing that carries the API key travels with it."""

    def __init__(self, status: int, error_type: str, message: str, method: str) -> None:
        self.status, self.error_type, self.message, self.method = (status, error_type,
                                                                   message, method)
        super().__init__(f"{status or 'network'} {error_type}: {message}")


@dataclass
class WriteReport:
    written: list[str] = field(default_factory=list)  # "Clients rec... (A)"
    not_written: list[str] = field(default_factory=list)
    requests: int = 0
    error: str = ""

    @property
    def complete(self) -> bool:
        return not self.not_written and not self.error


_IDEMPOTENT = {"GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


class _PacedApi(Api):
    """pyairtable's Api with Airtable's limits respected: every request (records and
    metadata alike) goes through `request`, so pacing and retries cover them all."""

    def __init__(self, config: AirtableConfig, pacer: _Pacer) -> None:
        super().__init__(config.api_key, endpoint_url=config.endpoint_url, retry_strategy=None,
                         timeout=config.timeout)  # type: ignore[arg-type]
        self._config, self._pacer = config, pacer
        self.sent = 0  # requests sent, retries included

    def request(self, method: str, url: str, fallback=None, options=None, params=None,
                json=None):  # noqa: A002 - pyairtable's signature
        idempotent = method.upper() in _IDEMPOTENT or str(url).endswith("/listRecords")
        attempt = 0
        while True:
            self._pacer.wait()
            self.sent += 1
            failure = None
            try:
                return super().request(method, url, fallback=fallback, options=options,
                                       params=params, json=json)
            except requests.HTTPError as e:
                failure = self._failure(e.response, method)
            except (requests.ConnectionError, requests.Timeout) as e:
                failure = AirtableFailure(0, "NETWORK", f"no answer from "
                                          f"{self._config.endpoint_url} ({type(e).__name__})",
                                          method)
            except AirtableFailure:
                raise  # from a nested fallback request
            # decided outside the except blocks: no exception context to leak
            if attempt >= self._config.retries:
                raise failure
            if failure.status == 429:
                self._pacer.penalise(self._config.penalty)
            elif idempotent and (failure.status >= 500 or failure.status == 0):
                time.sleep(self._config.backoff * 2 ** attempt)
            else:
                raise failure
            attempt += 1

    def _failure(self, response: requests.Response | None, method: str) -> AirtableFailure:
        status = response.status_code if response is not None else 0
        error_type, message = "", ""
        try:
            err = response.json().get("error") if response is not None else None
        except ValueError:
            err = None
        if isinstance(err, dict):
            error_type, message = str(err.get("type", "")), str(err.get("message", ""))
        elif isinstance(err, str):
            error_type = err
        key = self._config.api_key
        return AirtableFailure(status, _scrub(error_type, key), _scrub(message, key), method)


# --- the sidecar -------------------------------------------------------------------
SIDECAR_SCHEMA = """
CREATE TABLE IF NOT EXISTS tiers (level INTEGER PRIMARY KEY, name TEXT NOT NULL,
                                  tokens INTEGER NOT NULL CHECK (tokens >= 0));
CREATE TABLE IF NOT EXISTS client_extra (
    client_id TEXT PRIMARY KEY, topup INTEGER NOT NULL DEFAULT 0,
    period_months INTEGER NOT NULL DEFAULT 1, last_reset_period TEXT);
CREATE TABLE IF NOT EXISTS token_counts (
    text_hash TEXT NOT NULL, encoding TEXT NOT NULL, instructions INTEGER NOT NULL,
    examples INTEGER NOT NULL, signals INTEGER NOT NULL, PRIMARY KEY (text_hash, encoding)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage_history (client_id TEXT NOT NULL, at TEXT NOT NULL,
                                          usage INTEGER NOT NULL, budget INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS usage_history_client ON usage_history(client_id, at);
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, client_id TEXT, before TEXT NOT NULL, after TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts_sent (
    client_id TEXT NOT NULL, threshold INTEGER NOT NULL, period TEXT NOT NULL,
    sent_at TEXT NOT NULL, PRIMARY KEY (client_id, threshold, period));
"""


class _Sidecar:
    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, exist_ok=True)
            conn = self.conn()
            conn.executescript(SIDECAR_SCHEMA)
            if not conn.execute("SELECT 1 FROM tiers LIMIT 1").fetchall():
                conn.executemany("INSERT OR IGNORE INTO tiers VALUES (?, ?, ?)",
                                 [(lvl, n, t) for lvl, (n, t) in DEFAULT_TIERS.items()])
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open the Airtable sidecar file {path}: {e}") from None

    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = conn
        return conn

    def query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        return self.conn().execute(sql, params).fetchall()


# --- helpers -------------------------------------------------------------------------
def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()


def _version(obj: Client | Attribute) -> int:
    state = {k: v for k, v in obj.__dict__.items() if k != "version"}
    return int(_digest(type(obj).__name__, state)[:12], 16)


def text_hash(instructions: str, examples: str, signals: str) -> str:
    return _digest(instructions, examples, signals)


def _iso_datetime(v: datetime | None) -> str | None:
    if v is None:
        return None
    if v.tzinfo is None:
        v = v.replace(tzinfo=timezone.utc)
    v = v.astimezone(timezone.utc)
    return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z"


def _whole(value: object) -> int | None:
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


def _id_value(raw: object) -> str:
    """The app's id from an id field's value (text or a number, e.g. an autonumber);
    "" when the field is empty or holds something else."""
    return str(raw).strip() if isinstance(raw, (str, int)) and not isinstance(raw, bool) else ""


def _chunks(items: Sequence, n: int) -> Iterator[Sequence]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _clean(fields: Mapping[str, object]) -> dict:
    """A record's fields as Airtable returns them: no empty values, no false checkboxes."""
    return {k: v for k, v in fields.items() if v not in (None, "", [], False)}


@dataclass
class _Tx:
    depth: int = 1
    records: dict[str, dict[str, dict]] = field(default_factory=lambda: {"c": {}, "a": {}})
    seen: dict[tuple[str, str], dict] = field(default_factory=dict)  # as first read
    full: dict[str, bool] = field(default_factory=lambda: {"c": False, "a": False})
    pending: dict[str, dict[str, dict]] = field(default_factory=lambda: {"c": {}, "a": {}})
    extras: dict[str, tuple[int, int, date | None]] = field(default_factory=dict)
    ops: list[tuple[str, str, tuple]] = field(default_factory=list)  # client id, sql, params


class AirtableStore:
    """The Store protocol over an Airtable base (see the module docstring)."""

    def __init__(self, config: AirtableConfig) -> None:
        missing = config.missing_names()
        if missing:
            raise BadInput("settings", ", ".join(missing), "field name must not be empty")
        self.config = config
        self.label = f"Airtable: base {config.base_id}"
        self.sidecar_path = config.sidecar
        key = f"{config.endpoint_url}|{config.base_id}"
        with _SHARED_LOCK:
            pacer, lock = _SHARED.setdefault(key, (_Pacer(config.min_interval), threading.RLock()))
            pacer.interval = config.min_interval
        self._lock = lock
        self.api = _PacedApi(config, pacer)
        self._tables = {"c": self.api.table(config.base_id, config.clients_table),
                        "a": self.api.table(config.base_id, config.attributes_table)}
        self._names = {"c": config.clients_table, "a": config.attributes_table}
        self._side = _Sidecar(config.sidecar)
        self._tx: _Tx | None = None
        self._tx_owner: int | None = None
        self._warnings: dict[str, list[str]] = {"c": [], "a": []}
        self._rid: dict[tuple[str, str], str] = {}  # (kind, app id) -> record id
        self._app_id: dict[tuple[str, str], str] = {}  # (kind, record id) -> app id
        self._hashes: dict[str, str] = {}  # attribute id -> hash of its texts
        self.last_write: WriteReport | None = None

    def __repr__(self) -> str:
        return f"<AirtableStore base={self.config.base_id}>"

    # settings-derived names --------------------------------------------------------
    def cf(self, role: str) -> str:
        return self.config.client_fields.get(role, "")

    def af(self, role: str) -> str:
        return self.config.attribute_fields.get(role, "")

    def _fields(self, kind: str) -> list[str]:
        names = self.config.client_fields if kind == "c" else self.config.attribute_fields
        return [v for v in names.values() if v]

    @property
    def warnings(self) -> list[str]:
        return self._warnings["c"] + self._warnings["a"]

    @property
    def requests_sent(self) -> int:
        return self.api.sent

    # errors ---------------------------------------------------------------------
    def _error(self, f: AirtableFailure, kind: str | None, action: str) -> StoreError:
        where = f"Airtable table {self._names[kind]!r}" if kind else \
            f"Airtable base {self.config.base_id}"
        if f.status == 401:
            detail = "the API key was refused (401); check AIRTABLE_API_KEY"
        elif f.status == 403:
            detail = ("no access (403 " + (f.error_type or "forbidden") + "); check that "
                      "AIRTABLE_BASE_ID is right and the token may read and write this base")
        elif f.status == 404:
            detail = (f"not found (404 {f.error_type}: {f.message}); check AIRTABLE_BASE_ID "
                      "and the table names (AIRTABLE_CLIENTS_TABLE, AIRTABLE_ATTRIBUTES_TABLE)")
        elif f.status == 422:
            detail = f"refused (422 {f.error_type}): {f.message}"
            if "field" in f.error_type.lower() or "field" in f.message.lower():
                detail += "; run `tokenbudget airtable check`"
        elif f.status == 429:
            detail = f"rate limited (429) after {self.config.retries} retries"
        elif f.status == 0:
            detail = f"network failure: {f.message}"
        else:
            detail = f"Airtable answered {f.status} {f.error_type}: {f.message}".rstrip(": ")
        return StoreError(_scrub(f"{where}: {action}: {detail}", self.config.api_key))

    def _call(self, kind: str | None, action: str, fn, *args, **kwargs):
        failure = None
        try:
            return fn(*args, **kwargs)
        except AirtableFailure as f:
            failure = f
        raise self._error(failure, kind, action)

    # transactions ---------------------------------------------------------------
    def _current(self) -> _Tx | None:
        return self._tx if self._tx_owner == threading.get_ident() else None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        tx = self._current()
        if tx is not None:
            tx.depth += 1
            try:
                yield
            finally:
                tx.depth -= 1
            return
        with self._lock:
            conn = self._side.conn()
            conn.execute("BEGIN IMMEDIATE")
            self._tx, self._tx_owner = _Tx(), threading.get_ident()
            try:
                yield
                self._flush(self._tx)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                self._tx, self._tx_owner = None, None

    # listing ------------------------------------------------------------------------
    def _list(self, kind: str, formula: str | None = None,
              fields: list[str] | None = None) -> list[dict]:
        """Every matching record, 100 per request; a listing whose cursor expired is
        started again (Airtable keeps a cursor for a limited time)."""
        table = self._tables[kind]
        options: dict = {"page_size": 100, "fields": fields or self._fields(kind)}
        if formula:
            options["formula"] = formula
        failure = None
        for _ in range(3):
            try:
                return table.all(**options)
            except AirtableFailure as f:
                failure = f
                if f.error_type != ITERATOR_EXPIRED:
                    break
        raise self._error(failure, kind, "list records")  # type: ignore[arg-type]

    def _by_record_ids(self, kind: str, rids: Sequence[str]) -> list[dict]:
        out: list[dict] = []
        for chunk in _chunks(list(rids), IDS_PER_FORMULA):
            formula = to_formula_str(OR(*[EQ(RECORD_ID(), r) for r in chunk]))
            out.extend(self._list(kind, formula))
        return out

    def _by_app_ids(self, kind: str, ids: Sequence[str]) -> list[dict]:
        id_field = self.cf("id") if kind == "c" else self.af("id")
        if not id_field:
            return self._by_record_ids(kind, [i for i in ids if _RECORD_ID.fullmatch(i)])
        out: list[dict] = []
        for chunk in _chunks(list(ids), IDS_PER_FORMULA):
            formula = to_formula_str(OR(*[EQ(Field(id_field), i) for i in chunk]))
            out.extend(self._list(kind, formula))
        return out

    def _remember(self, kind: str, records: Iterable[dict]) -> list[dict]:
        """Caches records read inside a transaction (with its pending writes on top)."""
        tx = self._current()
        out = []
        for rec in records:
            rid = rec["id"]
            fields = dict(rec.get("fields") or {})
            if tx is not None:
                tx.seen.setdefault((kind, rid), _clean(fields))
                fields.update(tx.pending[kind].get(rid, {}))
                tx.records[kind][rid] = fields
            out.append({"id": rid, "fields": fields})
        return out

    # parsing --------------------------------------------------------------------------
    def _warn(self, kind: str, message: str) -> None:
        if message not in self._warnings[kind]:
            self._warnings[kind].append(message)

    def _label(self, kind: str, rid: str, fields: Mapping) -> str:
        name = fields.get(self.cf("name") if kind == "c" else self.af("name"))
        return f"{self._names[kind]} record {rid}" + (f" ({name})" if isinstance(name, str)
                                                      and name else "")

    def _extras(self, client_id: str) -> tuple[int, int, date | None]:
        tx = self._current()
        if tx is not None and client_id in tx.extras:
            return tx.extras[client_id]
        rows = self._side.query("SELECT topup, period_months, last_reset_period FROM "
                                "client_extra WHERE client_id = ?", (client_id,))
        if not rows:
            return 0, 1, None
        t, m, p = rows[0]
        return t, m, date.fromisoformat(p) if p else None

    def _parse_client(self, rec: dict, tiers: Mapping[int, Tier]) -> Client | None:
        rid, f = rec["id"], rec.get("fields") or {}
        label = self._label("c", rid, f)

        def skip(field_name: str, problem: str) -> None:
            self._warn("c", f"{label}: {field_name}: {problem}; record skipped")

        cid = rid
        if self.cf("id"):
            cid = _id_value(f.get(self.cf("id")))
            if not cid:
                return skip(self.cf("id"), "missing")
        name = f.get(self.cf("name"))
        if not isinstance(name, str) or not name.strip():
            name = cid
        lvl_field, raw_level = self.cf("service_level"), f.get(self.cf("service_level"))
        if raw_level is None:
            return skip(lvl_field, "missing")
        level = _whole(raw_level)
        if level is None or level < 1:
            return skip(lvl_field, f"not a service level number: {raw_level!r}")
        budget: int | None = None
        raw_budget = f.get(self.cf("token_budget"))
        if raw_budget is not None:
            budget = _whole(raw_budget)
            if budget is None:
                return skip(self.cf("token_budget"), f"not a whole number: {raw_budget!r}")
            if budget < 0:
                return skip(self.cf("token_budget"), f"negative: {budget}")
        if budget is None and level not in tiers:
            return skip(lvl_field, f"level {level} is not in the tier table "
                                   f"({', '.join(map(str, tiers))})")
        usage = _whole(f.get(self.cf("token_usage"), 0))
        if usage is None or usage < 0:
            self._warn("c", f"{label}: {self.cf('token_usage')}: not a token count: "
                            f"{f.get(self.cf('token_usage'))!r}; read as 0")
            usage = 0
        reset = self._date(f.get(self.cf("budget_reset_date")), label,
                           self.cf("budget_reset_date"))
        updated = self._datetime(f.get(self.cf("last_token_update")), label,
                                 self.cf("last_token_update"))
        email = f.get(self.cf("email"), "") if self.cf("email") else ""
        manager = f.get(self.cf("account_manager"), "") if self.cf("account_manager") else ""
        topup, months, last_period = self._extras(cid)
        client = Client(cid, name, level, budget, usage,
                        reset if isinstance(reset, date) else None, updated,
                        email if isinstance(email, str) else "",
                        manager if isinstance(manager, str) else "",
                        topup, months, last_period)
        self._rid[("c", cid)], self._app_id[("c", rid)] = rid, cid
        return replace(client, version=_version(client))

    def _date(self, raw: object, label: str, field_name: str) -> date | None:
        if raw in (None, ""):
            return None
        try:
            return date.fromisoformat(str(raw)[:10])
        except ValueError:
            self._warn("c", f"{label}: {field_name}: not a date: {raw!r}; read as empty")
            return None

    def _datetime(self, raw: object, label: str, field_name: str) -> datetime | None:
        if raw in (None, ""):
            return None
        try:
            value = datetime.fromisoformat(str(raw))
        except ValueError:
            self._warn("c", f"{label}: {field_name}: not a date and time: {raw!r}; read as empty")
            return None
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)

    def _parse_attribute(self, rec: dict) -> Attribute | None:
        rid, f = rec["id"], rec.get("fields") or {}
        label = self._label("a", rid, f)

        def skip(field_name: str, problem: str) -> None:
            self._warn("a", f"{label}: {field_name}: {problem}; record skipped")

        aid = rid
        if self.af("id"):
            aid = _id_value(f.get(self.af("id")))
            if not aid:
                return skip(self.af("id"), "missing")
        links = f.get(self.af("client"))
        if not links:
            return skip(self.af("client"), "linked to no client")
        if not isinstance(links, list) or not all(isinstance(x, str) for x in links):
            return skip(self.af("client"), f"not a link to a client: {links!r}")
        if len(links) > 1:
            return skip(self.af("client"), f"linked to {len(links)} clients "
                                           f"({', '.join(links)}); link exactly one")
        cid = links[0]
        if self.cf("id"):
            cid = self._app_id.get(("c", links[0]), "")
            if not cid:
                return skip(self.af("client"), f"linked to client record {links[0]}, "
                                               "which has no usable id")
        name = f.get(self.af("name"), "")
        name = name if isinstance(name, str) else str(name)
        active = f.get(self.af("active"), False)
        if not isinstance(active, bool):
            return skip(self.af("active"), f"not a checkbox value: {active!r}")
        texts = []
        for role in ("instructions", "examples", "signals"):
            v = f.get(self.af(role), "")
            if not isinstance(v, str):
                return skip(self.af(role), f"must be text, got {type(v).__name__}")
            texts.append(v)
        attr = Attribute(aid, cid, name, active, *texts)
        self._rid[("a", aid)], self._app_id[("a", rid)] = rid, aid
        self._hashes[aid] = text_hash(*texts)
        return replace(attr, version=_version(attr))

    def _ensure_client_ids(self, records: Iterable[dict]) -> None:
        """With a Client ID field, links need the client records' ids: read them once."""
        if not self.cf("id"):
            return
        wanted = {x for r in records for x in (r.get("fields") or {}).get(self.af("client"), [])
                  if isinstance(x, str)}
        unknown = [x for x in wanted if ("c", x) not in self._app_id]
        if unknown:
            for rec in self._by_record_ids("c", unknown):
                cid = _id_value((rec.get("fields") or {}).get(self.cf("id")))
                if cid:
                    self._app_id[("c", rec["id"])] = cid

    # reads ------------------------------------------------------------------------------
    def tiers(self) -> dict[int, Tier]:
        return {lvl: Tier(lvl, name, tokens) for lvl, name, tokens in
                self._side.query("SELECT level, name, tokens FROM tiers ORDER BY level")}

    def _client_records(self) -> list[dict]:
        tx = self._current()
        if tx is not None and tx.full["c"]:
            return [{"id": r, "fields": f} for r, f in tx.records["c"].items()]
        records = self._remember("c", self._list("c"))
        if tx is not None:
            tx.full["c"] = True
        return records

    def clients(self) -> list[Client]:
        self._warnings["c"] = []
        tiers = self.tiers()
        out, seen = [], {}
        for rec in self._client_records():
            c = self._parse_client(rec, tiers)
            if c is None:
                continue
            if c.id in seen:
                self._warn("c", f"{self._label('c', rec['id'], rec['fields'])}: "
                                f"{self.cf('id')}: duplicate id {c.id!r} (also record "
                                f"{seen[c.id]}); record skipped")
                continue
            seen[c.id] = rec["id"]
            out.append(c)
        return sorted(out, key=lambda c: (c.name, c.id))

    def _client_record(self, client_id: str) -> dict | None:
        tx = self._current()
        if tx is not None:
            rid = self._rid.get(("c", client_id))
            if rid in tx.records["c"]:
                rec = {"id": rid, "fields": tx.records["c"][rid]}
                if not self.cf("id") or rec["fields"].get(self.cf("id")) == client_id:
                    return rec
        if self.cf("id"):
            records = self._by_app_ids("c", [client_id])
        elif _RECORD_ID.fullmatch(client_id):
            records = self._by_record_ids("c", [client_id])
        else:
            records = []
        records = self._remember("c", records)
        if len(records) > 1:
            self._warn("c", f"{self._names['c']}: {self.cf('id')}: {len(records)} records have "
                            f"id {client_id!r}; using {records[0]['id']}")
        return records[0] if records else None

    def client(self, client_id: str) -> Client | None:
        rec = self._client_record(client_id)
        return self._parse_client(rec, self.tiers()) if rec else None

    def _attribute_records(self, client_id: str | None, ids: Sequence[str] | None) -> list[dict]:
        tx = self._current()
        if tx is not None and tx.full["a"]:
            return [{"id": r, "fields": f} for r, f in tx.records["a"].items()]
        if ids is not None:
            if tx is not None:
                rids = [self._rid.get(("a", i)) for i in ids]
                if all(r in tx.records["a"] for r in rids):
                    return [{"id": r, "fields": tx.records["a"][r]} for r in rids]
            return self._remember("a", self._by_app_ids("a", list(ids)))
        if client_id is None:
            records = self._remember("a", self._list("a"))
            if tx is not None:
                tx.full["a"] = True
            return records
        if not self.cf("attributes"):  # no inverse link field: read all, filter here
            return self._attribute_records(None, None)
        rec = self._client_record(client_id)
        if rec is None:
            return []
        linked = rec["fields"].get(self.cf("attributes")) or []
        rids = [r for r in linked if isinstance(r, str)]
        if tx is not None and all(r in tx.records["a"] for r in rids):
            return [{"id": r, "fields": tx.records["a"][r]} for r in rids]
        return self._remember("a", self._by_record_ids("a", rids)) if rids else []

    def _load_attributes(self, client_id: str | None = None,
                         ids: Sequence[str] | None = None) -> list[Attribute]:
        if client_id is None and ids is None:
            self._warnings["a"] = []
        records = self._attribute_records(client_id, ids)
        self._ensure_client_ids(records)
        out, seen = [], set()
        for rec in records:
            a = self._parse_attribute(rec)
            if a is None:
                continue
            if a.id in seen:
                self._warn("a", f"{self._label('a', rec['id'], rec['fields'])}: "
                                f"{self.af('id')}: duplicate id {a.id!r}; record skipped")
                continue
            seen.add(a.id)
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
        hashes = {a.id: self._hashes[a.id] for a in attrs}
        known: dict[str, FieldTokens] = {}
        unique = sorted(set(hashes.values()))
        for chunk in _chunks(unique, 900):
            for h, i, e, s in self._side.query(
                    "SELECT text_hash, instructions, examples, signals FROM token_counts "
                    f"WHERE encoding = ? AND text_hash IN ({','.join('?' * len(chunk))})",
                    [encoding, *chunk]):
                known[h] = FieldTokens(i, e, s)
        counted, missing = [], []
        for a in attrs:
            t = known.get(hashes[a.id])
            if t is None:
                missing.append(a)
            else:
                counted.append(AttributeCost(a.id, a.client_id, a.name, a.active, t))
        return counted, missing

    def audit(self, client_id: str | None = None) -> list[AuditEntry]:
        sql, params = "SELECT at, actor, action, client_id, before, after FROM audit_log", ()
        if client_id is not None:
            sql, params = sql + " WHERE client_id = ?", (client_id,)
        return [AuditEntry(datetime.fromisoformat(at), actor, action, cid, json.loads(b),
                           json.loads(a))
                for at, actor, action, cid, b, a in self._side.query(sql + " ORDER BY id", params)]

    def history(self, client_id: str | None = None) -> list[tuple[str, datetime, int, int]]:
        sql, params = "SELECT client_id, at, usage, budget FROM usage_history", ()
        if client_id is not None:
            sql, params = sql + " WHERE client_id = ?", (client_id,)
        return [(c, datetime.fromisoformat(at), u, b)
                for c, at, u, b in self._side.query(sql + " ORDER BY at, rowid", params)]

    def setting(self, key: str) -> str | None:
        rows = self._side.query("SELECT value FROM settings WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    # writes --------------------------------------------------------------------------
    def save_setting(self, key: str, value: str) -> None:
        with self.transaction():
            self._side.conn().execute("INSERT OR REPLACE INTO settings VALUES (?, ?)",
                                      (key, value))

    def _op(self, client_id: str, sql: str, params: tuple) -> None:
        """A sidecar write that commits only if the client's Airtable writes all land."""
        tx = self._current()
        assert tx is not None
        tx.ops.append((client_id, sql, params))

    def save_counts(self, encoding: str, counts: dict[str, FieldTokens]) -> None:
        rows = [(self._hashes[aid], encoding, t.instructions, t.examples, t.signals)
                for aid, t in counts.items() if aid in self._hashes]
        with self.transaction():
            self._side.conn().executemany(
                "INSERT OR REPLACE INTO token_counts VALUES (?, ?, ?, ?, ?)", rows)

    def _client_out(self, c: Client) -> dict[str, object]:
        """Airtable field values of a client, by role."""
        return {"id": c.id, "name": c.name, "service_level": c.service_level,
                "token_budget": c.token_budget, "token_usage": c.token_usage,
                "budget_reset_date": c.budget_reset_date.isoformat()
                if c.budget_reset_date else None,
                "last_token_update": _iso_datetime(c.last_token_update),
                "email": c.email or None, "account_manager": c.account_manager or None}

    def save_client(self, client: Client) -> Client:
        with self.transaction():
            tx = self._current()
            assert tx is not None
            rec = self._client_record(client.id)
            current = self._parse_client(rec, self.tiers()) if rec else None
            if current is None or current.version != client.version:
                raise StaleWrite(f"client {client.id} changed since it was read; reload")
            rid = rec["id"]  # type: ignore[index]
            new, old = self._client_out(client), self._client_out(current)
            diff = {self.cf(role): value for role, value in new.items()
                    if self.cf(role) and role != "id" and value != old[role]}
            if self.cf("id") and client.id != current.id:
                raise BadInput(f"client {current.id}", self.cf("id"), "ids cannot change")
            if diff:
                tx.pending["c"].setdefault(rid, {}).update(diff)
                tx.records["c"][rid].update(diff)
            extras = (client.topup, client.period_months, client.last_reset_period)
            if extras != (current.topup, current.period_months, current.last_reset_period):
                tx.extras[client.id] = extras
                self._op(client.id, "INSERT OR REPLACE INTO client_extra VALUES (?, ?, ?, ?)",
                         (client.id, client.topup, client.period_months,
                          client.last_reset_period.isoformat() if client.last_reset_period
                          else None))
            saved = self._parse_client({"id": rid, "fields": tx.records["c"][rid]}, self.tiers())
        return saved  # type: ignore[return-value]

    def save_attributes(self, attributes: Iterable[Attribute], encoding: str,
                        counts: dict[str, FieldTokens]) -> None:
        with self.transaction():
            tx = self._current()
            assert tx is not None
            attributes = list(attributes)
            by_id = {a.id: a for a in self._load_attributes(ids=[a.id for a in attributes])}
            for a in attributes:
                current = by_id.get(a.id)
                if current is None or current.version != a.version:
                    raise StaleWrite(f"attribute {a.id} changed since it was read; reload")
                rid = self._rid[("a", a.id)]
                diff = {self.af(role): getattr(a, role) for role in
                        ("name", "active", "instructions", "examples", "signals")
                        if getattr(a, role) != getattr(current, role)}
                if a.client_id != current.client_id:
                    raise BadInput(f"attribute {a.id}", self.af("client"),
                                   "moving an attribute to another client is not supported")
                if diff:
                    tx.pending["a"].setdefault(rid, {}).update(diff)
                    tx.records["a"][rid].update(diff)
                self._hashes[a.id] = text_hash(a.instructions, a.examples, a.signals)
            self.save_counts(encoding, counts)

    def save_tier(self, tier: Tier) -> None:
        with self.transaction():
            self._side.conn().execute("INSERT OR REPLACE INTO tiers VALUES (?, ?, ?)",
                                      (tier.level, tier.name, tier.tokens))

    def add_audit(self, entry: AuditEntry) -> None:
        params = (entry.at.isoformat(), entry.actor, entry.action, entry.client_id,
                  json.dumps(entry.before, sort_keys=True, default=str),
                  json.dumps(entry.after, sort_keys=True, default=str))
        sql = ("INSERT INTO audit_log (at, actor, action, client_id, before, after) "
               "VALUES (?, ?, ?, ?, ?, ?)")
        with self.transaction():
            if entry.client_id is None:
                self._side.conn().execute(sql, params)
            else:
                self._op(entry.client_id, sql, params)

    def add_history(self, client_id: str, at: datetime, usage: int, budget: int) -> None:
        with self.transaction():
            self._op(client_id, "INSERT INTO usage_history VALUES (?, ?, ?, ?)",
                     (client_id, at.isoformat(), usage, budget))

    def clear_alerts(self, client_id: str, period: date) -> int:
        with self.transaction():
            n = self._side.query("SELECT COUNT(*) FROM alerts_sent WHERE client_id = ? AND "
                                 "period = ?", (client_id, period.isoformat()))[0][0]
            self._op(client_id, "DELETE FROM alerts_sent WHERE client_id = ? AND period = ?",
                     (client_id, period.isoformat()))
            return n

    # the flush ---------------------------------------------------------------------------
    def _record_label(self, kind: str, rid: str) -> str:
        app_id = self._app_id.get((kind, rid))
        return f"{self._names[kind]} {rid}" + (f" ({app_id})" if app_id and app_id != rid else "")

    def _flush(self, tx: _Tx) -> None:
        conn = self._side.conn()
        pending = {k: v for k, v in tx.pending.items() if v}
        report = WriteReport()
        # 1. re-read what is about to be written: refuse if it changed in Airtable
        for kind, records in pending.items():
            fresh = {r["id"]: _clean(r.get("fields") or {})
                     for r in self._by_record_ids(kind, list(records))}
            inverse = self.cf("attributes") if kind == "c" else ""
            for rid in records:
                if rid not in fresh:
                    raise StaleWrite(f"{self._record_label(kind, rid)} was deleted in Airtable "
                                     "since it was read; nothing written; reload")
                was = {k: v for k, v in tx.seen.get((kind, rid), {}).items() if k != inverse}
                now = {k: v for k, v in fresh[rid].items() if k != inverse}
                if was != now:
                    changed = sorted(k for k in {*was, *now} if was.get(k) != now.get(k))
                    raise StaleWrite(f"{self._record_label(kind, rid)}: "
                                     f"{', '.join(changed)} changed in Airtable since it was "
                                     "read; nothing written; reload")
        # 2. write, attributes first, 10 records per request
        failure: tuple[AirtableFailure, str] | None = None
        queue = [(kind, rid, f) for kind in ("a", "c") for rid, f in pending.get(kind, {}).items()]
        done: set[tuple[str, str]] = set()
        for kind in ("a", "c"):
            items = [(rid, f) for k, rid, f in queue if k == kind]
            for chunk in _chunks(items, BATCH):
                if failure:
                    break
                try:
                    report.requests += 1
                    self._tables[kind].batch_update([{"id": r, "fields": f} for r, f in chunk])
                except AirtableFailure as e:
                    failure = (e, kind)
                    break
                for rid, _ in chunk:
                    done.add((kind, rid))
                    report.written.append(self._record_label(kind, rid))
        failed_clients: set[str] = set()
        for kind, rid, _ in queue:
            if (kind, rid) in done:
                continue
            report.not_written.append(self._record_label(kind, rid))
            if kind == "c":
                failed_clients.add(self._app_id.get(("c", rid), rid))
            else:
                links = tx.records["a"].get(rid, {}).get(self.af("client")) or []
                failed_clients.update(self._app_id.get(("c", x), x) for x in links)
        # 3. the sidecar rows of the clients whose writes all landed, in one commit
        for client_id, sql, params in tx.ops:
            if client_id not in failed_clients:
                conn.execute(sql, params)
        conn.execute("COMMIT")
        self.last_write = report
        if failure:
            error = self._error(failure[0], failure[1], "write records")
            report.error = str(error)
            if not report.written:
                raise StoreError(f"{error}; nothing was written")
            raise PartialWrite(
                f"{error}. Written: {len(report.written)} record(s)"
                + (f" ({', '.join(report.written)})" if report.written else "")
                + f"; not written: {len(report.not_written)} ({', '.join(report.not_written)}). "
                "Run the same operation again to finish it.",
                report.written, report.not_written)

    # data sets ------------------------------------------------------------------------
    def replace_all(self, tiers: Iterable[Tier], clients: Iterable[Client],
                    attributes: Iterable[Attribute]) -> None:
        if not self.config.allow_replace:
            raise StoreError(
                f"Airtable base {self.config.base_id}: loading a data set deletes every record "
                f"in {self._names['c']!r} and {self._names['a']!r}; refused. Set "
                "AIRTABLE_ALLOW_REPLACE=1 only for a base that holds test data.")
        tiers, clients, attributes = list(tiers), list(clients), list(attributes)
        with self.transaction():
            tx = self._current()
            assert tx is not None
            step = "delete records"
            kind = "a"
            failure = None
            try:
                for kind in ("a", "c"):
                    first = [self._fields(kind)[0]]
                    rids = [r["id"] for r in self._list(kind, fields=first)]
                    for chunk in _chunks(rids, BATCH):
                        self._tables[kind].batch_delete(chunk)
                step, kind = "create records", "c"
                rid_of: dict[str, str] = {}
                for chunk in _chunks(clients, BATCH):
                    payload = [_clean({self.cf(r): v for r, v in self._client_out(c).items()
                                       if self.cf(r) and (r != "id" or self.cf("id"))})
                               for c in chunk]
                    created = self._tables["c"].batch_create(payload)
                    for c, rec in zip(chunk, created):
                        rid_of[c.id] = rec["id"]
                kind = "a"
                for chunk in _chunks(attributes, BATCH):
                    payload = []
                    for a in chunk:
                        fields = {self.af("name"): a.name, self.af("active"): a.active,
                                  self.af("client"): [rid_of[a.client_id]],
                                  self.af("instructions"): a.instructions,
                                  self.af("examples"): a.examples, self.af("signals"): a.signals}
                        if self.af("id"):
                            fields[self.af("id")] = a.id
                        payload.append(_clean(fields))
                    created = self._tables["a"].batch_create(payload)
                    for a, rec in zip(chunk, created):
                        h = text_hash(a.instructions, a.examples, a.signals)
                        self._hashes[a.id] = self._hashes[rec["id"]] = h
                        new_id = a.id if self.af("id") else rec["id"]
                        self._hashes[new_id] = h
            except AirtableFailure as e:
                failure = e
            if failure is not None:
                raise StoreError(f"{self._error(failure, kind, step)}; the data set is only "
                                 "partly loaded: run the same load again to finish it")
            conn = self._side.conn()
            automation_sql.ensure(conn)
            for table in ("tiers", "client_extra", "usage_history", "audit_log", "alerts_sent",
                          *automation_sql.TABLES):
                conn.execute(f"DELETE FROM {table}")
            conn.executemany("INSERT INTO tiers VALUES (?, ?, ?)",
                             [(t.level, t.name, t.tokens) for t in tiers])
            conn.executemany(
                "INSERT INTO client_extra VALUES (?, ?, ?, ?)",
                [(c.id if self.cf("id") else rid_of[c.id], c.topup, c.period_months,
                  c.last_reset_period.isoformat() if c.last_reset_period else None)
                 for c in clients])
            tx.records, tx.seen = {"c": {}, "a": {}}, {}
            tx.full = {"c": False, "a": False}

    # automation (issue 6): alert state, notifications, deactivation policy and runs, in
    # the sidecar (tables and SQL shared with the SQLite store: automation_sql) --------
    def _automation_write(self, statements: Iterable[tuple[str, tuple]],
                          client_id: str | None = None) -> None:
        """Runs in the sidecar now, or with `client_id` commits only if that client's
        Airtable writes of the transaction all land (like its audit and history)."""
        with self.transaction():
            conn = self._side.conn()
            automation_sql.ensure(conn)
            for sql, params in statements:
                if client_id is None:
                    conn.execute(sql, params)
                else:
                    self._op(client_id, sql, params)

    def sent_alerts(self) -> set[tuple[str, int, date]]:
        return automation_sql.sent_alerts(self._side.conn())

    def notifications(self, client_id: str | None = None) -> "list[Notification]":
        return automation_sql.notifications(self._side.conn(), client_id)

    def save_notification(self, notification: "Notification") -> None:
        self._automation_write(automation_sql.save_notification(notification))

    def auto_deactivate_flags(self) -> dict[str, bool]:
        return automation_sql.auto_deactivate_flags(self._side.conn())

    def save_auto_deactivate_flag(self, client_id: str, enabled: bool | None) -> None:
        self._automation_write([automation_sql.save_auto_deactivate_flag(client_id, enabled)])

    def deactivations(self, run_id: str | None = None) -> "list[Deactivation]":
        return automation_sql.deactivations(self._side.conn(), run_id)

    def add_deactivation(self, deactivation: "Deactivation") -> None:
        self._automation_write([automation_sql.add_deactivation(deactivation)],
                               deactivation.client_id)

    def mark_restored(self, deactivations: "Iterable[Deactivation]", at: datetime) -> None:
        for d in deactivations:
            self._automation_write(automation_sql.mark_restored([d], at), d.client_id)

def open_airtable(settings: Mapping[str, object] | None) -> AirtableStore:
    return AirtableStore(AirtableConfig.from_settings(settings))
