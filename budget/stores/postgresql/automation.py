"""The automation tables (alert state, notifications, deactivation policy and runs) of
the PostgreSQL store: the same rows and meaning as `stores/automation_sql.py` gives the
SQLite stores, in PostgreSQL's own types. Readers take the database; writers run inside
the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime

from psycopg.types.json import Jsonb

from ...model import Deactivation, Notification
from .connection import Database

TABLES = ("notifications", "auto_deactivate_policy", "deactivations", "alert_claims")


def sent_alerts(db: Database) -> set[tuple[str, int, date]]:
    return {(c, t, p) for c, t, p in
            db.query("SELECT client_id, threshold, period FROM alerts_sent")}


class _Taken(Exception):
    """Rolls back a claim that found another holder's."""


def claim_alert(db: Database, client_id: str, thresholds: Sequence[int], period: date,
                holder: str, lease: float) -> bool:
    """One transaction of its own that locks the client (so it waits for a reset of that
    client in progress), committed before the email goes out."""
    try:
        with db.transaction(client_id):
            if not claim_alerts(db, client_id, thresholds, period, holder, lease):
                raise _Taken
    except _Taken:
        return False
    return True


def claim_alerts(db: Database, client_id: str, thresholds: Sequence[int], period: date,
                 holder: str, lease: float) -> bool:
    """Claims each key (see `Store.claim_alert`) inside the caller's transaction, which
    rolls back when this says False. The insert on the unique key is the claim: one
    that neither inserts nor takes over an expired (or its own) claim means another
    holder has it. The alert state is read after the claims, so a pass that recorded
    the send and ended its claim meanwhile is seen. Times are the database's, one clock
    for every host."""
    for threshold in thresholds:
        if not db.execute(
                "INSERT INTO alert_claims VALUES (%s, %s, %s, %s, clock_timestamp(), "
                "clock_timestamp() + make_interval(secs => %s)) "
                "ON CONFLICT (client_id, threshold, period) DO UPDATE SET "
                "holder = excluded.holder, claimed_at = excluded.claimed_at, "
                "expires = excluded.expires WHERE alert_claims.expires <= clock_timestamp() "
                "OR alert_claims.holder = excluded.holder",
                (client_id, threshold, period, holder, lease)):
            return False
    return not db.query("SELECT 1 FROM alerts_sent WHERE client_id = %s AND period = %s "
                        "AND threshold = ANY(%s)", (client_id, period, list(thresholds)))


def notifications(db: Database, client_id: str | None = None) -> list[Notification]:
    sql = ("SELECT client_id, threshold, period, status, at, recipients, subject, error, "
           "attempts FROM notifications")
    params: tuple = ()
    if client_id is not None:
        sql, params = sql + " WHERE client_id = %s", (client_id,)
    return [Notification(c, t, p, s, at, tuple(r), subj, err, n)
            for c, t, p, s, at, r, subj, err, n in
            db.query(sql + " ORDER BY at DESC, client_id, threshold", params)]


def save_notification(db: Database, n: Notification) -> None:
    """Upserts the attempt and ends its claim; a sent one also enters the alert state a
    reset clears."""
    db.execute("DELETE FROM alert_claims WHERE client_id = %s AND threshold = %s "
               "AND period = %s", (n.client_id, n.threshold, n.period))
    db.execute(
        "INSERT INTO notifications VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 1) "
        "ON CONFLICT (client_id, threshold, period) DO UPDATE SET status = excluded.status, "
        "at = excluded.at, recipients = excluded.recipients, subject = excluded.subject, "
        "error = excluded.error, attempts = notifications.attempts + 1",
        (n.client_id, n.threshold, n.period, n.status, n.at, Jsonb(list(n.recipients)),
         n.subject, n.error))
    if n.status == "sent":
        db.execute("INSERT INTO alerts_sent VALUES (%s, %s, %s, %s) "
                   "ON CONFLICT (client_id, threshold, period) "
                   "DO UPDATE SET sent_at = excluded.sent_at",
                   (n.client_id, n.threshold, n.period, n.at))


def auto_deactivate_flags(db: Database) -> dict[str, bool]:
    return dict(db.query("SELECT client_id, enabled FROM auto_deactivate_policy"))


def save_auto_deactivate_flag(db: Database, client_id: str, enabled: bool | None) -> None:
    if enabled is None:
        db.execute("DELETE FROM auto_deactivate_policy WHERE client_id = %s", (client_id,))
    else:
        db.execute("INSERT INTO auto_deactivate_policy VALUES (%s, %s) ON CONFLICT "
                   "(client_id) DO UPDATE SET enabled = excluded.enabled", (client_id, enabled))


def deactivations(db: Database, run_id: str | None = None) -> list[Deactivation]:
    sql = ("SELECT run_id, at, client_id, attribute_id, name, tokens, reason, restored_at "
           "FROM deactivations")
    params: tuple = ()
    if run_id is not None:
        sql, params = sql + " WHERE run_id = %s", (run_id,)
    return [Deactivation(*row) for row in
            db.query(sql + " ORDER BY at DESC, run_id, position", params)]


def add_deactivation(db: Database, d: Deactivation) -> None:
    db.execute("INSERT INTO deactivations (run_id, at, client_id, attribute_id, name, tokens, "
               "reason) VALUES (%s, %s, %s, %s, %s, %s, %s)",
               (d.run_id, d.at, d.client_id, d.attribute_id, d.name, d.tokens, d.reason))


def mark_restored(db: Database, items: Iterable[Deactivation], at: datetime) -> None:
    db.execute_many("UPDATE deactivations SET restored_at = %s "
                    "WHERE run_id = %s AND attribute_id = %s",
                    [(at, d.run_id, d.attribute_id) for d in items])
