"""The Airtable store's sidecar in a SQLite file (`AIRTABLE_SIDECAR` a path, by default
data/airtable-sidecar.db): one machine's processes share it, and its write transaction
(BEGIN IMMEDIATE) is their write lock. The tables of the automation (alert state,
notifications, deactivations) come from `automation_sql`, shared with the SQLite store;
the pass lock is a lease row (`lease_lock`). See `sidecar_protocol` for the methods."""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pyairtable.utils import chunked

from ...model import DEFAULT_TIERS, AuditEntry, Deactivation, FieldTokens, Notification, Tier
from .. import automation_sql
from ..base import PassHolder, StoreError
from ..lease_lock import LeaseLock
from ..sqlite_connection import add_column, connect
from .deferred import Deferred
from .sidecar_protocol import NO_EXTRAS, Extras, Intent, MirrorRow
from .writer_lock import writer_lock

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
CREATE TABLE IF NOT EXISTS journal_writes (
    tx TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, at TEXT NOT NULL,
    client_id TEXT NOT NULL, kind TEXT NOT NULL, rid TEXT NOT NULL, fields TEXT NOT NULL,
    PRIMARY KEY (tx, kind, rid));
CREATE TABLE IF NOT EXISTS journal_calls (
    tx TEXT NOT NULL, seq INTEGER NOT NULL, client_id TEXT NOT NULL, method TEXT NOT NULL,
    args TEXT NOT NULL, PRIMARY KEY (tx, seq));
CREATE TABLE IF NOT EXISTS mirror_records (
    kind TEXT NOT NULL, rid TEXT NOT NULL, app_id TEXT NOT NULL, fields TEXT NOT NULL,
    changed_at TEXT NOT NULL, PRIMARY KEY (kind, rid));
CREATE INDEX IF NOT EXISTS mirror_records_app_id ON mirror_records(kind, app_id);
CREATE TABLE IF NOT EXISTS mirror_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# columns added since the first release: files made before them get them on opening
COLUMNS = (("client_extra", "anchor_day",
            "INTEGER CHECK (anchor_day IS NULL OR anchor_day BETWEEN 1 AND 31)"),)
EXTRA_COLUMNS = "client_id, topup, period_months, last_reset_period, anchor_day"
HASHES_PER_QUERY = 900  # under SQLite's limit of host parameters in one statement
# a journal entry of another host is taken as its writer's dead after this long
JOURNAL_LEASE = timedelta(minutes=15)


class SQLiteSidecar:
    """One connection per thread; opening creates the file, its tables and the default
    tiers if they are not there yet (what `tokenbudget airtable migrate` relies on)."""

    def __init__(self, path: str, lock_timeout: float) -> None:
        self.path, self.lock_timeout = path, lock_timeout
        self.label = f"the local file {path}"
        self._local = threading.local()
        self._pass_lock = LeaseLock(path, wait=lock_timeout)
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, exist_ok=True)
            conn = self._conn()
            conn.executescript(SIDECAR_SCHEMA)
            for table, column, declaration in COLUMNS:
                add_column(conn, table, column, declaration)
            if not conn.execute("SELECT 1 FROM tiers LIMIT 1").fetchall():
                conn.executemany("INSERT OR IGNORE INTO tiers VALUES (?, ?, ?)",
                                 [(lvl, n, t) for lvl, (n, t) in DEFAULT_TIERS.items()])
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open the Airtable sidecar file {path}: {e}") from None

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path, timeout=self.lock_timeout)
        return conn

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._conn().execute(sql, params).fetchall()

    def close(self) -> None:
        """Closes this thread's connection (the others close with their threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def transaction(self, client_id: str | None = None) -> Iterator[None]:
        """BEGIN IMMEDIATE: the file's one write lock, whichever client (SQLite has no
        finer lock)."""
        conn = self._conn()
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if conn.in_transaction:  # not when the journal committed and nothing followed
            conn.execute("COMMIT")

    # reads ------------------------------------------------------------------------------
    def tiers(self) -> dict[int, Tier]:
        return {lvl: Tier(lvl, name, tokens) for lvl, name, tokens in
                self._query("SELECT level, name, tokens FROM tiers ORDER BY level")}

    def extras(self, client_id: str) -> Extras:
        rows = self._query("SELECT topup, period_months, last_reset_period, anchor_day FROM "
                           "client_extra WHERE client_id = ?", (client_id,))
        if not rows:
            return NO_EXTRAS
        t, m, p, a = rows[0]
        return t, m, date.fromisoformat(p) if p else None, a

    def counts(self, encoding: str, hashes: Iterable[str]) -> dict[str, FieldTokens]:
        known: dict[str, FieldTokens] = {}
        for chunk in chunked(sorted(set(hashes)), HASHES_PER_QUERY):
            for h, i, e, s in self._query(
                    "SELECT text_hash, instructions, examples, signals FROM token_counts "
                    f"WHERE encoding = ? AND text_hash IN ({','.join('?' * len(chunk))})",
                    [encoding, *chunk]):
                known[h] = FieldTokens(i, e, s)
        return known

    def audit(self, client_id: str | None = None) -> list[AuditEntry]:
        sql = "SELECT at, actor, action, client_id, before, after FROM audit_log"
        params: tuple[str, ...] = ()
        if client_id is not None:
            sql, params = sql + " WHERE client_id = ?", (client_id,)
        return [AuditEntry(datetime.fromisoformat(at), actor, action, cid, json.loads(b),
                           json.loads(a))
                for at, actor, action, cid, b, a in self._query(sql + " ORDER BY id", params)]

    def history(self, client_id: str | None = None) -> list[tuple[str, datetime, int, int]]:
        sql = "SELECT client_id, at, usage, budget FROM usage_history"
        params: tuple[str, ...] = ()
        if client_id is not None:
            sql, params = sql + " WHERE client_id = ?", (client_id,)
        return [(c, datetime.fromisoformat(at), u, b)
                for c, at, u, b in self._query(sql + " ORDER BY at, rowid", params)]

    def setting(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM settings WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def settings(self) -> dict[str, str]:
        return dict(self._query("SELECT key, value FROM settings ORDER BY key"))

    def sent_alerts(self) -> set[tuple[str, int, date]]:
        return automation_sql.sent_alerts(self._conn())

    def count_sent_alerts(self, client_id: str, period: date) -> int:
        n: int = self._query("SELECT COUNT(*) FROM alerts_sent WHERE client_id = ? "
                             "AND period = ?", (client_id, period.isoformat()))[0][0]
        return n

    def notifications(self, client_id: str | None = None) -> list[Notification]:
        return automation_sql.notifications(self._conn(), client_id)

    def auto_deactivate_flags(self) -> dict[str, bool]:
        return automation_sql.auto_deactivate_flags(self._conn())

    def deactivations(self, run_id: str | None = None) -> list[Deactivation]:
        return automation_sql.deactivations(self._conn(), run_id)

    # writes, inside transaction() ---------------------------------------------------------
    def _run(self, statements: Iterable[automation_sql.Statement]) -> None:
        conn = self._conn()
        automation_sql.ensure(conn)
        for sql, params in statements:
            conn.execute(sql, params)

    def save_setting(self, key: str, value: str) -> None:
        self._conn().execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, value))

    def save_counts(self, encoding: str, counts: Mapping[str, FieldTokens]) -> None:
        self._conn().executemany(
            "INSERT OR REPLACE INTO token_counts VALUES (?, ?, ?, ?, ?)",
            [(h, encoding, t.instructions, t.examples, t.signals) for h, t in counts.items()])

    def save_tier(self, tier: Tier) -> None:
        self._conn().execute("INSERT OR REPLACE INTO tiers VALUES (?, ?, ?)",
                             (tier.level, tier.name, tier.tokens))

    @staticmethod
    def _extras_row(client_id: str, extras: Extras) -> tuple:
        topup, months, period, anchor = extras
        return client_id, topup, months, period.isoformat() if period else None, anchor

    def save_extras(self, client_id: str, extras: Extras) -> None:
        self._conn().execute(f"INSERT OR REPLACE INTO client_extra ({EXTRA_COLUMNS}) "
                             "VALUES (?, ?, ?, ?, ?)", self._extras_row(client_id, extras))

    def add_audit(self, entry: AuditEntry) -> None:
        self._conn().execute(
            "INSERT INTO audit_log (at, actor, action, client_id, before, after) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (entry.at.isoformat(), entry.actor, entry.action, entry.client_id,
             json.dumps(entry.before, sort_keys=True, default=str),
             json.dumps(entry.after, sort_keys=True, default=str)))

    def add_history(self, client_id: str, at: datetime, usage: int, budget: int) -> None:
        self._conn().execute("INSERT INTO usage_history VALUES (?, ?, ?, ?)",
                             (client_id, at.isoformat(), usage, budget))

    def clear_alerts(self, client_id: str, period: date) -> None:
        self._conn().execute("DELETE FROM alerts_sent WHERE client_id = ? AND period = ?",
                             (client_id, period.isoformat()))

    def replace(self, tiers: Iterable[Tier], extras: Iterable[tuple[str, Extras]]) -> None:
        conn = self._conn()
        automation_sql.ensure(conn)
        for table in ("tiers", "client_extra", "usage_history", "audit_log", "alerts_sent",
                      *automation_sql.TABLES):
            conn.execute(f"DELETE FROM {table}")
        conn.executemany("INSERT INTO tiers VALUES (?, ?, ?)",
                         [(t.level, t.name, t.tokens) for t in tiers])
        conn.executemany(f"INSERT INTO client_extra ({EXTRA_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                         [self._extras_row(cid, e) for cid, e in extras])

    def save_notification(self, notification: Notification) -> None:
        self._run(automation_sql.save_notification(notification))

    def save_auto_deactivate_flag(self, client_id: str, enabled: bool | None) -> None:
        self._run([automation_sql.save_auto_deactivate_flag(client_id, enabled)])

    def add_deactivation(self, deactivation: Deactivation) -> None:
        self._run([automation_sql.add_deactivation(deactivation)])

    def mark_restored(self, deactivations: Iterable[Deactivation], at: datetime) -> None:
        self._run(automation_sql.mark_restored(deactivations, at))

    # the mirror ---------------------------------------------------------------------------
    def mirror_rows(self, kind: str, rids: Sequence[str] | None = None,
                    app_ids: Sequence[str] | None = None) -> list[tuple[str, str]]:
        """In the order the records were first mirrored (Airtable's listing order)."""
        sql = "SELECT rid, fields FROM mirror_records WHERE kind = ?"
        wanted, column = (rids, "rid") if rids is not None else (app_ids, "app_id")
        if wanted is None:
            return self._query(sql + " ORDER BY rowid", (kind,))
        out: list[tuple[str, str]] = []
        for chunk in chunked(list(wanted), HASHES_PER_QUERY):
            out += self._query(f"{sql} AND {column} IN ({','.join('?' * len(chunk))}) "
                               "ORDER BY rowid", [kind, *chunk])
        return out

    def mirror_ids(self, kind: str) -> list[str]:
        return [r for r, in self._query("SELECT rid FROM mirror_records WHERE kind = ?",
                                        (kind,))]

    def mirror_state(self) -> dict[str, str]:
        return dict(self._query("SELECT key, value FROM mirror_state"))

    def mirror_write(self, kind: str, rows: Iterable[MirrorRow], gone: Iterable[str],
                     state: Mapping[str, str], replace: bool = False) -> None:
        """An upsert keeps a row's place (its rowid)."""
        conn, at = self._conn(), datetime.now(UTC).isoformat()
        with self.transaction():
            if replace:
                conn.execute("DELETE FROM mirror_records WHERE kind = ?", (kind,))
            conn.executemany(
                "INSERT INTO mirror_records VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, rid) "
                "DO UPDATE SET app_id = excluded.app_id, fields = excluded.fields, "
                "changed_at = excluded.changed_at",
                [(kind, rid, app_id, fields, at) for rid, app_id, fields in rows])
            conn.executemany("DELETE FROM mirror_records WHERE kind = ? AND rid = ?",
                             [(kind, rid) for rid in gone])
            conn.executemany("INSERT OR REPLACE INTO mirror_state VALUES (?, ?)",
                             list(state.items()))

    # committed at once -------------------------------------------------------------------
    def claim_alert(self, client_id: str, thresholds: Sequence[int], period: date,
                    holder: str, lease: float) -> bool:
        conn = self._conn()
        automation_sql.ensure(conn)
        with self.transaction():
            return automation_sql.claim_alerts(conn, client_id, thresholds, period, holder,
                                               lease)

    def pass_lock(self) -> AbstractContextManager[bool]:
        """A `locks` row with a lease (see `lease_lock`): every process sharing the file,
        as they share the alert state."""
        return self._pass_lock.held()

    def pass_holder(self) -> PassHolder | None:
        return self._pass_lock.holder()

    # the write journal ----------------------------------------------------------------
    def journal(self, intents: Iterable[Intent], ops: Iterable[Deferred]) -> str:
        """Inside the caller's transaction, which it commits (with the rows written so
        far) before the first request: a second commit settles it after the last. The
        machine's writer lock (`writer_lock`) keeps other writers out in between."""
        tx, at = secrets.token_hex(8), datetime.now(UTC).isoformat()
        host, pid = socket.gethostname(), os.getpid()
        conn = self._conn()
        conn.executemany("INSERT INTO journal_writes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         [(tx, host, pid, at, i.client_id, i.kind, i.rid,
                           json.dumps(i.fields, sort_keys=True)) for i in intents])
        conn.executemany("INSERT INTO journal_calls VALUES (?, ?, ?, ?, ?)",
                         [(tx, n, op.client_id, op.method, op.arguments())
                          for n, op in enumerate(ops)])
        conn.execute("COMMIT")
        return tx

    def writer_lock(self, timeout: float) -> AbstractContextManager[None]:
        """A flock beside the file (`writer_lock`): SQLite's own write lock is free
        between the journal's two commits."""
        return writer_lock(self.path, timeout)

    def journaled(self) -> dict[str, list[Intent]]:
        """Every entry of this host (the caller holds the machine's writer lock, so no
        writer here is between its two commits) and those of other hosts older than the
        lease."""
        stale = (datetime.now(UTC) - JOURNAL_LEASE).isoformat()
        out: dict[str, list[Intent]] = {}
        for tx, cid, kind, rid, fields in self._query(
                "SELECT tx, client_id, kind, rid, fields FROM journal_writes "
                "WHERE host = ? OR at < ? ORDER BY tx, kind, rid",
                (socket.gethostname(), stale)):
            out.setdefault(tx, []).append(Intent(cid, kind, rid, json.loads(fields)))
        return out

    def settle(self, tx: str, landed: Iterable[str], known: Iterable[str]) -> None:
        """The caller holds the writer lock, so nobody else settles the entry meanwhile."""
        conn = self._conn()
        landed = set(landed)
        for cid, method, args in self._query("SELECT client_id, method, args FROM "
                                             "journal_calls WHERE tx = ? ORDER BY seq", (tx,)):
            if cid in landed:
                Deferred.from_journal(cid, method, args).run(self)
        for cid in set(known):
            for table in ("journal_writes", "journal_calls"):
                conn.execute(f"DELETE FROM {table} WHERE tx = ? AND client_id = ?", (tx, cid))
