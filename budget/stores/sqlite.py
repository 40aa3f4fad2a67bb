"""The embedded store: one SQLite file, every write one transaction."""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime

from ..settings.schema import DEFAULT_LOCK_TIMEOUT
from ..model import (Attribute, AttributeCost, AuditEntry, Client, Deactivation, FieldTokens,
                     Notification, StaleWrite, Tier)
from . import automation_sql, top_costs, usage_totals
from .base import PassHolder, StoreError
from .lease_lock import LeaseLock
from .sqlite_connection import add_column, connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS tiers (
    level INTEGER PRIMARY KEY CHECK (level >= 1),
    name TEXT NOT NULL,
    tokens INTEGER NOT NULL CHECK (tokens >= 0)
);
CREATE TABLE IF NOT EXISTS clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    service_level INTEGER NOT NULL,
    token_budget INTEGER CHECK (token_budget IS NULL OR token_budget >= 0),
    token_usage INTEGER NOT NULL DEFAULT 0,
    budget_reset_date TEXT,
    last_token_update TEXT,
    email TEXT NOT NULL DEFAULT '',
    account_manager TEXT NOT NULL DEFAULT '',
    topup INTEGER NOT NULL DEFAULT 0 CHECK (topup >= 0),
    period_months INTEGER NOT NULL DEFAULT 1 CHECK (period_months >= 1),
    last_reset_period TEXT,
    version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS attributes (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id),
    name TEXT NOT NULL,
    active INTEGER NOT NULL CHECK (active IN (0, 1)),
    instructions TEXT NOT NULL DEFAULT '',
    examples TEXT NOT NULL DEFAULT '',
    signals TEXT NOT NULL DEFAULT '',
    version INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS attributes_client ON attributes(client_id);
-- covers costs(): the usage of every client is read without touching the texts
CREATE INDEX IF NOT EXISTS attributes_costs ON attributes(client_id, id, name, active);
CREATE TABLE IF NOT EXISTS token_counts (
    attribute_id TEXT NOT NULL REFERENCES attributes(id) ON DELETE CASCADE,
    encoding TEXT NOT NULL,
    instructions INTEGER NOT NULL,
    examples INTEGER NOT NULL,
    signals INTEGER NOT NULL,
    PRIMARY KEY (attribute_id, encoding)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage_history (
    client_id TEXT NOT NULL,
    at TEXT NOT NULL,
    usage INTEGER NOT NULL,
    budget INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_history_client ON usage_history(client_id, at);
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    client_id TEXT,
    before TEXT NOT NULL,
    after TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts_sent (
    client_id TEXT NOT NULL,
    threshold INTEGER NOT NULL,
    period TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    PRIMARY KEY (client_id, threshold, period)
);
"""

SCHEMA += automation_sql.SCHEMA
# columns added since the first release: files made before them get them on opening
COLUMNS = (("clients", "anchor_day",
            "INTEGER CHECK (anchor_day IS NULL OR anchor_day BETWEEN 1 AND 31)"),)

_CLIENT_COLS = ("id, name, service_level, token_budget, token_usage, budget_reset_date, "
                "last_token_update, email, account_manager, topup, period_months, "
                "last_reset_period, anchor_day, version")


def _date(v: str | None) -> date | None:
    return date.fromisoformat(v) if v else None


def _datetime(v: str | None) -> datetime | None:
    return datetime.fromisoformat(v) if v else None


def _iso(v: date | datetime | None) -> str | None:
    return v.isoformat() if v else None


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pauses Python's cyclic garbage collector while many acyclic objects are built:
    at 100,000 attributes it would otherwise walk them (and the rest of the process)
    again and again, which doubled the time of costs() (benchmarks/results.md)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class SQLiteStore:
    """Thread-safe: one connection per thread; `transaction()` takes SQLite's write
    lock up front (BEGIN IMMEDIATE), so a check and its write cannot interleave with
    another writer's, even in another process. `lock_timeout`: seconds a writer waits
    for another's lock before the store raises StoreBusy."""

    def __init__(self, path: str, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self.path, self.lock_timeout = path, lock_timeout
        self.label = f"SQLite: {path}"
        self.warnings: list[str] = []
        self._local = threading.local()
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise StoreError(f"cannot open store {path}: directory {parent} does not exist")
        try:
            conn = self._conn()
            conn.executescript(SCHEMA)
            for table, column, declaration in COLUMNS:
                add_column(conn, table, column, declaration)
        except sqlite3.Error as e:
            raise StoreError(f"cannot open store {path}: {e}") from None
        self._pass_lock = LeaseLock(path, wait=lock_timeout)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path, timeout=self.lock_timeout,
                                               foreign_keys=True)
            self._local.depth = 0
        return conn

    @contextmanager
    def transaction(self, client_id: str | None = None) -> Iterator[None]:
        """SQLite's write lock is the whole file's, whatever `client_id` says."""
        conn = self._conn()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        conn.execute("BEGIN IMMEDIATE")
        self._local.depth = 1
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")
        finally:
            self._local.depth = 0

    def pass_lock(self) -> AbstractContextManager[bool]:
        """A `locks` row with a lease (see `lease_lock`): every process on this file."""
        return self._pass_lock.held()

    def pass_holder(self) -> PassHolder | None:
        return self._pass_lock.holder()

    def _query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        return self._conn().execute(sql, params).fetchall()

    # reads -----------------------------------------------------------------
    def tiers(self) -> dict[int, Tier]:
        return {lvl: Tier(lvl, name, tokens) for lvl, name, tokens in
                self._query("SELECT level, name, tokens FROM tiers ORDER BY level")}

    def _client(self, row: tuple) -> Client:
        (cid, name, level, budget, usage, reset, updated, email, manager, topup, months,
         last_period, anchor, version) = row
        return Client(cid, name, level, budget, usage, _date(reset), _datetime(updated),
                      email, manager, topup, months, _date(last_period), anchor, version)

    def clients(self) -> list[Client]:
        return [self._client(r) for r in
                self._query(f"SELECT {_CLIENT_COLS} FROM clients ORDER BY name, id")]

    def client_names(self) -> list[tuple[str, str]]:
        return [(cid, name) for cid, name in
                self._query("SELECT id, name FROM clients ORDER BY name, id")]

    def client(self, client_id: str) -> Client | None:
        rows = self._query(f"SELECT {_CLIENT_COLS} FROM clients WHERE id = ?", (client_id,))
        return self._client(rows[0]) if rows else None

    def attributes(self, client_id: str | None = None,
                   ids: Sequence[str] | None = None) -> list[Attribute]:
        sql = ("SELECT id, client_id, name, active, instructions, examples, signals, version "
               "FROM attributes")
        where, params = [], []
        if client_id is not None:
            where.append("client_id = ?")
            params.append(client_id)
        if ids is not None:
            where.append(f"id IN ({','.join('?' * len(ids))})")
            params.extend(ids)
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._query(sql + " ORDER BY client_id, name, id", params)
        return [Attribute(i, c, n, bool(a), ins or "", ex or "", sig or "", v)
                for i, c, n, a, ins, ex, sig, v in rows]

    def costs(self, encoding: str, client_id: str | None = None
              ) -> tuple[list[AttributeCost], list[Attribute]]:
        sql = ("SELECT a.id, a.client_id, a.name, a.active, t.instructions, t.examples, "
               "t.signals FROM attributes a LEFT JOIN token_counts t "
               "ON t.attribute_id = a.id AND t.encoding = ?")
        params: list = [encoding]
        if client_id is not None:
            sql += " WHERE a.client_id = ?"
            params.append(client_id)
        counted, missing = [], []
        with _collector_paused():
            for aid, cid, name, active, i, e, s in self._query(
                    sql + " ORDER BY a.client_id, a.id", params):
                if i is None:
                    missing.append(aid)
                else:
                    counted.append(AttributeCost(aid, cid, name, bool(active),
                                                 FieldTokens(i, e, s)))
        return counted, self._in_chunks(missing)

    def usage_totals(self, encoding: str) -> usage_totals.Totals | None:
        return usage_totals.from_rows(self._query(usage_totals.query("?"), (encoding,)))

    def top_costs(self, encoding: str, n: int, client_ids: Collection[str] | None = None
                  ) -> list[AttributeCost] | None:
        """See stores/top_costs.py; the client ids travel as one JSON array."""
        return top_costs.from_rows(self._query(*top_costs.statement(
            encoding, n, client_ids, "?", "IN (SELECT value FROM json_each(?))", json.dumps)))

    def _in_chunks(self, ids: list[str]) -> list[Attribute]:
        out: list[Attribute] = []
        for start in range(0, len(ids), 900):  # SQLite's bound-parameter limit
            out.extend(self.attributes(ids=ids[start:start + 900]))
        return out

    def audit(self, client_id: str | None = None) -> list[AuditEntry]:
        sql = "SELECT at, actor, action, client_id, before, after FROM audit_log"
        params: tuple = ()
        if client_id is not None:
            sql, params = sql + " WHERE client_id = ?", (client_id,)
        return [AuditEntry(datetime.fromisoformat(at), actor, action, cid, json.loads(b),
                           json.loads(a))
                for at, actor, action, cid, b, a in self._query(sql + " ORDER BY id", params)]

    def history(self, client_id: str | None = None) -> list[tuple[str, datetime, int, int]]:
        sql = "SELECT client_id, at, usage, budget FROM usage_history"
        params: tuple = ()
        if client_id is not None:
            sql, params = sql + " WHERE client_id = ?", (client_id,)
        return [(c, datetime.fromisoformat(at), u, b)
                for c, at, u, b in self._query(sql + " ORDER BY at, rowid", params)]

    def setting(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM settings WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def settings(self) -> dict[str, str]:
        return dict(self._query("SELECT key, value FROM settings ORDER BY key"))

    def data_version(self) -> str:
        """Changes with every commit, from any process: the size and modification time
        of the database file and of its write-ahead log, which each commit appends to.
        Two stat calls, so pages can ask on every run (see ui.data_version)."""
        parts = []
        for name in (self.path, f"{self.path}-wal"):
            try:
                st = os.stat(name)
            except FileNotFoundError:
                parts.append("-")
            else:
                parts.append(f"{st.st_mtime_ns}:{st.st_size}")
        return "|".join(parts)

    # writes: each is its own transaction unless already inside one ---------
    def save_setting(self, key: str, value: str) -> None:
        with self.transaction():
            self._conn().execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, value))

    def save_counts(self, encoding: str, counts: dict[str, FieldTokens]) -> None:
        with self.transaction():
            self._conn().executemany(
                "INSERT OR REPLACE INTO token_counts VALUES (?, ?, ?, ?, ?)",
                [(aid, encoding, t.instructions, t.examples, t.signals)
                 for aid, t in counts.items()])

    def save_attributes(self, attributes: Iterable[Attribute], encoding: str,
                        counts: dict[str, FieldTokens]) -> None:
        conn = self._conn()
        with self.transaction():
            for a in attributes:
                cur = conn.execute(
                    "UPDATE attributes SET name = ?, active = ?, instructions = ?, "
                    "examples = ?, signals = ?, version = version + 1 "
                    "WHERE id = ? AND version = ?",
                    (a.name, int(a.active), a.instructions, a.examples, a.signals, a.id,
                     a.version))
                if cur.rowcount != 1:
                    raise StaleWrite(f"attribute {a.id} changed since it was read; reload")
                if a.id in counts:  # text changed: counts of other encodings are stale
                    conn.execute("DELETE FROM token_counts WHERE attribute_id = ?", (a.id,))
            self.save_counts(encoding, counts)

    def save_client(self, client: Client) -> Client:
        with self.transaction():
            cur = self._conn().execute(
                "UPDATE clients SET name = ?, service_level = ?, token_budget = ?, "
                "token_usage = ?, budget_reset_date = ?, last_token_update = ?, email = ?, "
                "account_manager = ?, topup = ?, period_months = ?, last_reset_period = ?, "
                "anchor_day = ?, version = version + 1 WHERE id = ? AND version = ?",
                (client.name, client.service_level, client.token_budget, client.token_usage,
                 _iso(client.budget_reset_date), _iso(client.last_token_update), client.email,
                 client.account_manager, client.topup, client.period_months,
                 _iso(client.last_reset_period), client.anchor_day, client.id,
                 client.version))
            if cur.rowcount != 1:
                raise StaleWrite(f"client {client.id} changed since it was read; reload")
        return self.client(client.id)  # type: ignore[return-value]

    def save_tier(self, tier: Tier) -> None:
        with self.transaction():
            self._conn().execute("INSERT OR REPLACE INTO tiers VALUES (?, ?, ?)",
                                 (tier.level, tier.name, tier.tokens))

    def add_audit(self, entry: AuditEntry) -> None:
        with self.transaction():
            self._conn().execute(
                "INSERT INTO audit_log (at, actor, action, client_id, before, after) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (entry.at.isoformat(), entry.actor, entry.action, entry.client_id,
                 json.dumps(entry.before, sort_keys=True, default=str),
                 json.dumps(entry.after, sort_keys=True, default=str)))

    def add_history(self, client_id: str, at: datetime, usage: int, budget: int) -> None:
        with self.transaction():
            self._conn().execute("INSERT INTO usage_history VALUES (?, ?, ?, ?)",
                                 (client_id, at.isoformat(), usage, budget))

    def clear_alerts(self, client_id: str, period: date) -> int:
        with self.transaction():
            return self._conn().execute(
                "DELETE FROM alerts_sent WHERE client_id = ? AND period = ?",
                (client_id, period.isoformat())).rowcount

    def replace_all(self, tiers: Iterable[Tier], clients: Iterable[Client],
                    attributes: Iterable[Attribute]) -> None:
        conn = self._conn()
        with self.transaction():
            for table in ("token_counts", "attributes", "usage_history", "audit_log",
                          "alerts_sent", *automation_sql.TABLES, "clients", "tiers"):
                conn.execute(f"DELETE FROM {table}")
            conn.executemany("INSERT INTO tiers VALUES (?, ?, ?)",
                             [(t.level, t.name, t.tokens) for t in tiers])
            conn.executemany(
                f"INSERT INTO clients ({_CLIENT_COLS}) VALUES ({','.join('?' * 14)})",
                [(c.id, c.name, c.service_level, c.token_budget, c.token_usage,
                  _iso(c.budget_reset_date), _iso(c.last_token_update), c.email,
                  c.account_manager, c.topup, c.period_months, _iso(c.last_reset_period),
                  c.anchor_day, c.version) for c in clients])
            conn.executemany(
                "INSERT INTO attributes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(a.id, a.client_id, a.name, int(a.active), a.instructions, a.examples,
                  a.signals, a.version) for a in attributes])

    # automation: the tables are in automation_sql, shared with the Airtable
    # store's sidecar --------------------------------------------------------------
    def _run(self, statements: Iterable[tuple[str, tuple]]) -> None:
        with self.transaction():
            for sql, params in statements:
                self._conn().execute(sql, params)

    def sent_alerts(self) -> set[tuple[str, int, date]]:
        return automation_sql.sent_alerts(self._conn())

    def claim_alert(self, client_id: str, thresholds: Sequence[int], period: date,
                    holder: str, lease: float) -> bool:
        with self.transaction():
            return automation_sql.claim_alerts(self._conn(), client_id, thresholds, period,
                                               holder, lease)

    def notifications(self, client_id: str | None = None) -> list[Notification]:
        return automation_sql.notifications(self._conn(), client_id)

    def save_notification(self, notification: Notification) -> None:
        self._run(automation_sql.save_notification(notification))

    def auto_deactivate_flags(self) -> dict[str, bool]:
        return automation_sql.auto_deactivate_flags(self._conn())

    def save_auto_deactivate_flag(self, client_id: str, enabled: bool | None) -> None:
        self._run([automation_sql.save_auto_deactivate_flag(client_id, enabled)])

    def deactivations(self, run_id: str | None = None) -> list[Deactivation]:
        return automation_sql.deactivations(self._conn(), run_id)

    def add_deactivation(self, deactivation: Deactivation) -> None:
        self._run([automation_sql.add_deactivation(deactivation)])

    def mark_restored(self, deactivations: Iterable[Deactivation], at: datetime) -> None:
        self._run(automation_sql.mark_restored(deactivations, at))
