"""The Airtable store's local SQLite file (`AIRTABLE_SIDECAR`): what Airtable cannot
hold natively or what only the app needs. The tables of the automation (alert state,
notifications, deactivations) come from `automation_sql`, shared with the SQLite store."""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pyairtable.utils import chunked

from ...model import DEFAULT_TIERS, AuditEntry, FieldTokens, Tier
from .. import automation_sql
from ..base import StoreError
from ..sqlite_connection import add_column, connect

# a client's top-up, period months, last reset period and anchor day
Extras = tuple[int, int, date | None, int | None]

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
CREATE TABLE IF NOT EXISTS journal_ops (
    tx TEXT NOT NULL, seq INTEGER NOT NULL, client_id TEXT NOT NULL, sql TEXT NOT NULL,
    params TEXT NOT NULL, PRIMARY KEY (tx, seq));
"""
# columns added since the first release: files made before them get them on opening
COLUMNS = (("client_extra", "anchor_day",
            "INTEGER CHECK (anchor_day IS NULL OR anchor_day BETWEEN 1 AND 31)"),)
EXTRA_COLUMNS = "client_id, topup, period_months, last_reset_period, anchor_day"
HASHES_PER_QUERY = 900  # under SQLite's limit of host parameters in one statement
SIDECAR_TIMEOUT = 60.0  # seconds a writer waits for another's lock
# a journal entry of another host is taken as its writer's dead after this long
JOURNAL_LEASE = timedelta(minutes=15)


@dataclass(frozen=True)
class Intent:
    """A record write about to be sent (journaled first): the record, the client whose
    change it is part of, and the field values it sets."""

    client_id: str
    kind: str
    rid: str
    fields: dict[str, Any]


class Sidecar:
    """One connection per thread; opening creates the file, its tables and the default
    tiers if they are not there yet (what `tokenbudget airtable migrate` relies on)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, exist_ok=True)
            conn = self.conn()
            conn.executescript(SIDECAR_SCHEMA)
            for table, column, declaration in COLUMNS:
                add_column(conn, table, column, declaration)
            if not conn.execute("SELECT 1 FROM tiers LIMIT 1").fetchall():
                conn.executemany("INSERT OR IGNORE INTO tiers VALUES (?, ?, ?)",
                                 [(lvl, n, t) for lvl, (n, t) in DEFAULT_TIERS.items()])
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open the Airtable sidecar file {path}: {e}") from None

    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path, timeout=SIDECAR_TIMEOUT)
        return conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.conn().execute(sql, params).fetchall()

    # reads ------------------------------------------------------------------------------
    def tiers(self) -> dict[int, Tier]:
        return {lvl: Tier(lvl, name, tokens) for lvl, name, tokens in
                self.query("SELECT level, name, tokens FROM tiers ORDER BY level")}

    def extras(self, client_id: str) -> Extras:
        rows = self.query("SELECT topup, period_months, last_reset_period, anchor_day FROM "
                          "client_extra WHERE client_id = ?", (client_id,))
        if not rows:
            return 0, 1, None, None
        t, m, p, a = rows[0]
        return t, m, date.fromisoformat(p) if p else None, a

    def counts(self, encoding: str, hashes: Iterable[str]) -> dict[str, FieldTokens]:
        """The token counts known for these text hashes, by hash."""
        known: dict[str, FieldTokens] = {}
        for chunk in chunked(sorted(set(hashes)), HASHES_PER_QUERY):
            for h, i, e, s in self.query(
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
                for at, actor, action, cid, b, a in self.query(sql + " ORDER BY id", params)]

    def history(self, client_id: str | None = None) -> list[tuple[str, datetime, int, int]]:
        sql = "SELECT client_id, at, usage, budget FROM usage_history"
        params: tuple[str, ...] = ()
        if client_id is not None:
            sql, params = sql + " WHERE client_id = ?", (client_id,)
        return [(c, datetime.fromisoformat(at), u, b)
                for c, at, u, b in self.query(sql + " ORDER BY at, rowid", params)]

    def setting(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM settings WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def settings(self) -> dict[str, str]:
        return dict(self.query("SELECT key, value FROM settings ORDER BY key"))

    # a new data set ---------------------------------------------------------------------
    def replace(self, tiers: Iterable[Tier],
                extras: Iterable[tuple[str, int, int, str | None, int | None]]) -> None:
        """Empties what belongs to the data set being replaced (token counts and
        settings stay), then stores its tiers and client extras; inside the caller's
        transaction."""
        conn = self.conn()
        automation_sql.ensure(conn)
        for table in ("tiers", "client_extra", "usage_history", "audit_log", "alerts_sent",
                      *automation_sql.TABLES):
            conn.execute(f"DELETE FROM {table}")
        conn.executemany("INSERT INTO tiers VALUES (?, ?, ?)",
                         [(t.level, t.name, t.tokens) for t in tiers])
        conn.executemany(f"INSERT INTO client_extra ({EXTRA_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                         extras)

    # the write journal ----------------------------------------------------------------
    def journal(self, intents: Iterable[Intent], ops: Iterable[tuple[str, str, tuple]]
                ) -> str:
        """Records the writes about to be sent and the sidecar rows (audit, history,
        extras) that go with each client's, inside the caller's transaction, which
        commits them before the first request; returns the journal entry's id."""
        tx, at = secrets.token_hex(8), datetime.now(UTC).isoformat()
        host, pid = socket.gethostname(), os.getpid()
        conn = self.conn()
        conn.executemany("INSERT INTO journal_writes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         [(tx, host, pid, at, i.client_id, i.kind, i.rid,
                           json.dumps(i.fields, sort_keys=True)) for i in intents])
        conn.executemany("INSERT INTO journal_ops VALUES (?, ?, ?, ?, ?)",
                         [(tx, n, cid, sql, json.dumps(list(params)))
                          for n, (cid, sql, params) in enumerate(ops)])
        return tx

    def journaled(self) -> dict[str, list[Intent]]:
        """The journal entries left by writers that are gone, by entry id: every entry
        of this host (the caller holds the machine's writer lock, so no writer here is
        between its two commits) and those of other hosts older than the lease."""
        stale = (datetime.now(UTC) - JOURNAL_LEASE).isoformat()
        out: dict[str, list[Intent]] = {}
        for tx, cid, kind, rid, fields in self.query(
                "SELECT tx, client_id, kind, rid, fields FROM journal_writes "
                "WHERE host = ? OR at < ? ORDER BY tx, kind, rid",
                (socket.gethostname(), stale)):
            out.setdefault(tx, []).append(Intent(cid, kind, rid, json.loads(fields)))
        return out

    def settle(self, tx: str, landed: Iterable[str], known: Iterable[str]) -> None:
        """Inside the caller's transaction: commits the journaled sidecar rows of the
        clients whose writes `landed` (in part or whole) and drops the entry's rows of
        the clients whose outcome is `known`; the others stay for a later look."""
        conn = self.conn()
        landed = set(landed)
        for cid, sql, params in self.query("SELECT client_id, sql, params FROM journal_ops "
                                           "WHERE tx = ? ORDER BY seq", (tx,)):
            if cid in landed:
                conn.execute(sql, json.loads(params))
        for cid in set(known):
            for table in ("journal_writes", "journal_ops"):
                conn.execute(f"DELETE FROM {table} WHERE tx = ? AND client_id = ?", (tx, cid))
