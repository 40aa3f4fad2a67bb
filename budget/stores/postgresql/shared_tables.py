"""The tables that the PostgreSQL store and the Airtable sidecar in PostgreSQL both hold,
besides the automation's (`automation.py`): tiers, admin settings, the audit log, the
usage history and the alert state a reset clears. One set of SQL for both, so the two
cannot drift apart. Readers take the database; writers run inside the caller's
transaction."""

from __future__ import annotations

import json
from datetime import date, datetime
from functools import partial

from psycopg.types.json import Jsonb

from ...model import AuditEntry, Tier
from .connection import Database

_json = partial(json.dumps, sort_keys=True, default=str)  # as the SQLite stores write it


def tiers(db: Database) -> dict[int, Tier]:
    return {lvl: Tier(lvl, name, tokens) for lvl, name, tokens in
            db.query("SELECT level, name, tokens FROM tiers ORDER BY level")}


def audit(db: Database, client_id: str | None = None) -> list[AuditEntry]:
    sql = "SELECT at, actor, action, client_id, before, after FROM audit_log"
    params: tuple = ()
    if client_id is not None:
        sql, params = sql + " WHERE client_id = %s", (client_id,)
    return [AuditEntry(*r) for r in db.query(sql + " ORDER BY id", params)]


def history(db: Database, client_id: str | None = None
            ) -> list[tuple[str, datetime, int, int]]:
    sql = "SELECT client_id, at, usage, budget FROM usage_history"
    params: tuple = ()
    if client_id is not None:
        sql, params = sql + " WHERE client_id = %s", (client_id,)
    return [(c, at, u, b) for c, at, u, b in db.query(sql + " ORDER BY at, id", params)]


def setting(db: Database, key: str) -> str | None:
    rows = db.query("SELECT value FROM settings WHERE key = %s", (key,))
    return rows[0][0] if rows else None


def settings(db: Database) -> dict[str, str]:
    return dict(db.query("SELECT key, value FROM settings ORDER BY key"))


def save_setting(db: Database, key: str, value: str) -> None:
    db.execute("INSERT INTO settings VALUES (%s, %s) ON CONFLICT (key) "
               "DO UPDATE SET value = excluded.value", (key, value))


def save_tier(db: Database, tier: Tier) -> None:
    db.execute("INSERT INTO tiers VALUES (%s, %s, %s) ON CONFLICT (level) "
               "DO UPDATE SET name = excluded.name, tokens = excluded.tokens",
               (tier.level, tier.name, tier.tokens))


def add_audit(db: Database, entry: AuditEntry) -> None:
    db.execute("INSERT INTO audit_log (at, actor, action, client_id, before, after) "
               "VALUES (%s, %s, %s, %s, %s, %s)",
               (entry.at, entry.actor, entry.action, entry.client_id,
                Jsonb(entry.before, dumps=_json), Jsonb(entry.after, dumps=_json)))


def add_history(db: Database, client_id: str, at: datetime, usage: int, budget: int) -> None:
    db.execute("INSERT INTO usage_history (client_id, at, usage, budget) "
               "VALUES (%s, %s, %s, %s)", (client_id, at, usage, budget))


def clear_alerts(db: Database, client_id: str, period: date) -> int:
    """The alert state of the client's period, removed; how many alerts it held."""
    return db.execute("DELETE FROM alerts_sent WHERE client_id = %s AND period = %s",
                      (client_id, period))


class SharedReads:
    """The readers of these tables as methods, for the two classes that hold them over
    their `_db` (the PostgreSQL store and the Airtable sidecar in PostgreSQL)."""

    _db: Database

    def audit(self, client_id: str | None = None) -> list[AuditEntry]:
        return audit(self._db, client_id)

    def history(self, client_id: str | None = None) -> list[tuple[str, datetime, int, int]]:
        return history(self._db, client_id)

    def setting(self, key: str) -> str | None:
        return setting(self._db, key)

    def settings(self) -> dict[str, str]:
        return settings(self._db)
