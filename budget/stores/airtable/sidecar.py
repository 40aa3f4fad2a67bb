"""The Airtable store's local SQLite file (`AIRTABLE_SIDECAR`): what Airtable cannot
hold natively or what only the app needs. The tables of the automation (alert state,
notifications, deactivations) come from `automation_sql`, shared with the SQLite store."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from datetime import date, datetime
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
"""
# columns added since the first release: files made before them get them on opening
COLUMNS = (("client_extra", "anchor_day",
            "INTEGER CHECK (anchor_day IS NULL OR anchor_day BETWEEN 1 AND 31)"),)
EXTRA_COLUMNS = "client_id, topup, period_months, last_reset_period, anchor_day"
HASHES_PER_QUERY = 900  # under SQLite's limit of host parameters in one statement


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
            conn = self._local.conn = connect(self.path, timeout=60)
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
