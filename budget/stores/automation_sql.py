"""The automation tables (alert state, notifications, deactivation policy and runs) in
SQL shared by the SQLite store and the Airtable store's SQLite sidecar, so the two
cannot drift apart. Functions either read from a connection or return the statements
a write needs; each store runs them inside its own transaction (the Airtable store
defers the ones tied to a client's Airtable writes, see `UnitOfWork.defer`).

The alert state that decides "already sent" is the existing `alerts_sent` table (a
reset clears its period); `notifications` keeps the last attempt per key, sent or
failed, for the admin page. (`alerts_sent` itself is in each store's own schema.)
`alert_claims` holds the alerts being sent right now, one row per key, from the claim
until the outcome is recorded; a claim whose lease ran out (its pass died) is taken
over. Every table is created if missing, so files made by an older release gain them
when opened."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime

from ..model import Deactivation, Notification

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS notifications (
    client_id TEXT NOT NULL, threshold INTEGER NOT NULL, period TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('sent', 'failed')), at TEXT NOT NULL,
    recipients TEXT NOT NULL, subject TEXT NOT NULL, error TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (client_id, threshold, period))""",
    """CREATE TABLE IF NOT EXISTS auto_deactivate_policy (
    client_id TEXT PRIMARY KEY, enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)))""",
    """CREATE TABLE IF NOT EXISTS deactivations (
    run_id TEXT NOT NULL, at TEXT NOT NULL, client_id TEXT NOT NULL,
    attribute_id TEXT NOT NULL, name TEXT NOT NULL, tokens INTEGER NOT NULL,
    reason TEXT NOT NULL, restored_at TEXT, PRIMARY KEY (run_id, attribute_id))""",
    """CREATE TABLE IF NOT EXISTS alert_claims (
    client_id TEXT NOT NULL, threshold INTEGER NOT NULL, period TEXT NOT NULL,
    holder TEXT NOT NULL, claimed_at TEXT NOT NULL, expires REAL NOT NULL,
    PRIMARY KEY (client_id, threshold, period))""",
)
SCHEMA = "".join(f"{statement};\n" for statement in DDL)
TABLES = ("notifications", "auto_deactivate_policy", "deactivations", "alert_claims")

Statement = tuple[str, tuple]


def ensure(conn: sqlite3.Connection) -> None:
    """Creates the tables if missing, statement by statement (executescript would
    commit the caller's open transaction)."""
    for statement in DDL:
        conn.execute(statement)


def _read(conn: sqlite3.Connection, sql: str, params: Sequence = ()) -> list[tuple]:
    """A read that finds nothing in a file made before these tables existed, instead
    of creating them: a dry run must not write."""
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return []
        raise


def sent_alerts(conn: sqlite3.Connection) -> set[tuple[str, int, date]]:
    return {(c, t, date.fromisoformat(p)) for c, t, p in
            _read(conn, "SELECT client_id, threshold, period FROM alerts_sent")}


def claim_alerts(conn: sqlite3.Connection, client_id: str, thresholds: Sequence[int],
                 period: date, holder: str, lease: float) -> bool:
    """Claims every key or none (see `Store.claim_alert`). Runs inside the caller's
    write transaction (BEGIN IMMEDIATE), which no other writer interleaves: so checking
    every key first and then writing them all is one atomic step."""
    now = time.time()
    keys = [(client_id, t, period.isoformat()) for t in thresholds]
    where = "WHERE client_id = ? AND threshold = ? AND period = ?"
    for key in keys:
        if conn.execute(f"SELECT 1 FROM alerts_sent {where}", key).fetchall():
            return False
        held = conn.execute(f"SELECT 1 FROM alert_claims {where} AND holder != ? "
                            "AND expires > ?", (*key, holder, now)).fetchall()
        if held:
            return False
    at = datetime.fromtimestamp(now, UTC).isoformat()
    conn.executemany("INSERT OR REPLACE INTO alert_claims VALUES (?, ?, ?, ?, ?, ?)",
                     [(*key, holder, at, now + lease) for key in keys])
    return True


def notifications(conn: sqlite3.Connection, client_id: str | None = None
                  ) -> list[Notification]:
    sql = ("SELECT client_id, threshold, period, status, at, recipients, subject, error, "
           "attempts FROM notifications")
    params: tuple = ()
    if client_id is not None:
        sql, params = sql + " WHERE client_id = ?", (client_id,)
    return [Notification(c, t, date.fromisoformat(p), s, datetime.fromisoformat(at),
                         tuple(json.loads(r)), subj, err, n)
            for c, t, p, s, at, r, subj, err, n in
            _read(conn, sql + " ORDER BY at DESC, client_id, threshold", params)]


def save_notification(n: Notification) -> list[Statement]:
    """Upserts the attempt and ends its claim; a sent one also enters the alert state a
    reset clears."""
    key = (n.client_id, n.threshold, n.period.isoformat())
    out: list[Statement] = [
        ("DELETE FROM alert_claims WHERE client_id = ? AND threshold = ? AND period = ?", key),
        ("INSERT INTO notifications VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1) "
         "ON CONFLICT (client_id, threshold, period) DO UPDATE SET status = excluded.status, "
         "at = excluded.at, recipients = excluded.recipients, subject = excluded.subject, "
         "error = excluded.error, attempts = notifications.attempts + 1",
         (*key, n.status, n.at.isoformat(), json.dumps(list(n.recipients)), n.subject,
          n.error))]
    if n.status == "sent":
        out.append(("INSERT OR REPLACE INTO alerts_sent VALUES (?, ?, ?, ?)",
                    (*key, n.at.isoformat())))
    return out


def auto_deactivate_flags(conn: sqlite3.Connection) -> dict[str, bool]:
    return {c: bool(e) for c, e in
            _read(conn, "SELECT client_id, enabled FROM auto_deactivate_policy")}


def save_auto_deactivate_flag(client_id: str, enabled: bool | None) -> Statement:
    if enabled is None:
        return "DELETE FROM auto_deactivate_policy WHERE client_id = ?", (client_id,)
    return ("INSERT OR REPLACE INTO auto_deactivate_policy VALUES (?, ?)",
            (client_id, int(enabled)))


def deactivations(conn: sqlite3.Connection, run_id: str | None = None) -> list[Deactivation]:
    sql = ("SELECT run_id, at, client_id, attribute_id, name, tokens, reason, restored_at "
           "FROM deactivations")
    params: tuple = ()
    if run_id is not None:
        sql, params = sql + " WHERE run_id = ?", (run_id,)
    return [Deactivation(r, datetime.fromisoformat(at), c, a, n, t, why,
                         datetime.fromisoformat(back) if back else None)
            for r, at, c, a, n, t, why, back in
            _read(conn, sql + " ORDER BY at DESC, run_id, rowid", params)]


def add_deactivation(d: Deactivation) -> Statement:
    return ("INSERT INTO deactivations VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
            (d.run_id, d.at.isoformat(), d.client_id, d.attribute_id, d.name, d.tokens,
             d.reason))


def mark_restored(items: Iterable[Deactivation], at: datetime) -> list[Statement]:
    return [("UPDATE deactivations SET restored_at = ? WHERE run_id = ? AND attribute_id = ?",
             (at.isoformat(), d.run_id, d.attribute_id)) for d in items]
