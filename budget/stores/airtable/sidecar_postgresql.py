"""The Airtable store's sidecar in PostgreSQL
(`AIRTABLE_SIDECAR=postgresql://USER:PASSWORD@HOST:PORT/DB`): every dashboard, API and
cron host working on one base shares one audit log, usage history, token-count cache,
alert state, client extras, settings and pass lock. See `sidecar_protocol` for the
methods.

It is built from the PostgreSQL store's parts rather than a copy of them: the pool and
its per-thread transactions (`postgresql.connection`), the migrations runner, the
advisory locks (with keys of the sidecar's own, `locks.SIDECAR`), the SQL of the tables
both hold (`shared_tables`, `automation`) and the error messages without the password.
Its tables live in a PostgreSQL schema of their own, `airtable_sidecar`, with a
`schema_version` of its own, so the database may hold a PostgreSQL store beside it. One
sidecar serves one base.

The write lock: a transaction on one client takes the sidecar's lock shared and that
client's advisory lock (a key on its id: the clients live in Airtable, there is no row
to lock), so hosts writing different clients go on side by side while two writes to one
client queue; whole-base work (tiers, a data set) takes the sidecar's lock exclusively.
A lock not granted within the lock timeout is StoreBusy."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime

from ...model import DEFAULT_TIERS, AuditEntry, Deactivation, FieldTokens, Notification, Tier
from ..base import PassHolder
from ..postgresql import automation, locks, shared_tables
from ..postgresql.connection import Database
from ..postgresql.migrations import CLAIMS, SHARED_TABLES, migrate
from .sidecar_protocol import NO_EXTRAS, Extras

SCHEMA = "airtable_sidecar"

_SIDECAR_TABLES = """
CREATE TABLE client_extra (
    client_id text COLLATE "C" PRIMARY KEY,
    topup bigint NOT NULL DEFAULT 0 CHECK (topup >= 0),
    period_months bigint NOT NULL DEFAULT 1 CHECK (period_months >= 1),
    last_reset_period date,
    anchor_day bigint CHECK (anchor_day IS NULL OR anchor_day BETWEEN 1 AND 31)
);
CREATE TABLE token_counts (
    text_hash text COLLATE "C" NOT NULL,
    encoding text NOT NULL,
    instructions bigint NOT NULL,
    examples bigint NOT NULL,
    signals bigint NOT NULL,
    PRIMARY KEY (text_hash, encoding)
);
"""

# version -> the statements that bring the sidecar's schema from the version before to it
MIGRATIONS: dict[int, str] = {1: SHARED_TABLES + CLAIMS + _SIDECAR_TABLES}
_EXTRA_COLUMNS = "client_id, topup, period_months, last_reset_period, anchor_day"
_REPLACED = ("tiers", "client_extra", "usage_history", "audit_log", "alerts_sent",
             *automation.TABLES)


class PostgresSidecar:
    """Thread-safe, as the PostgreSQL store: a pool of connections, one held by each
    thread inside a transaction. `close()` returns them to the server."""

    def __init__(self, url: str, *, lock_timeout: float, pool_size: int = 8,
                 connect_timeout: float = 10.0, statement_timeout: float = 60.0) -> None:
        self._db = Database(url, pool_size=pool_size, connect_timeout=connect_timeout,
                            lock_timeout=lock_timeout, statement_timeout=statement_timeout,
                            keys=locks.SIDECAR, schema=SCHEMA)
        self.label = f"PostgreSQL {self._db.label} (schema {SCHEMA})"
        with self._db.direct() as conn:
            if not conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                                (SCHEMA,)).fetchall():
                with conn.transaction():  # hosts starting together: one creates it
                    locks.store(conn, locks.SIDECAR)
                    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            self.schema_version = migrate(conn, self._db.label, MIGRATIONS)
            if not conn.execute("SELECT 1 FROM tiers LIMIT 1").fetchall():
                with conn.cursor() as cur:
                    cur.executemany("INSERT INTO tiers VALUES (%s, %s, %s) "
                                    "ON CONFLICT (level) DO NOTHING",
                                    [(lvl, n, t) for lvl, (n, t) in DEFAULT_TIERS.items()])
        self._db.open()

    def close(self) -> None:
        self._db.close()

    def transaction(self, client_id: str | None = None) -> AbstractContextManager[None]:
        return self._db.transaction(client_id)

    # reads ------------------------------------------------------------------------------
    def tiers(self) -> dict[int, Tier]:
        return shared_tables.tiers(self._db)

    def extras(self, client_id: str) -> Extras:
        rows = self._db.query("SELECT topup, period_months, last_reset_period, anchor_day "
                              "FROM client_extra WHERE client_id = %s", (client_id,))
        return rows[0] if rows else NO_EXTRAS

    def counts(self, encoding: str, hashes: Iterable[str]) -> dict[str, FieldTokens]:
        return {h: FieldTokens(i, e, s) for h, i, e, s in self._db.query(
            "SELECT text_hash, instructions, examples, signals FROM token_counts "
            "WHERE encoding = %s AND text_hash = ANY(%s)", (encoding, sorted(set(hashes))))}

    def audit(self, client_id: str | None = None) -> list[AuditEntry]:
        return shared_tables.audit(self._db, client_id)

    def history(self, client_id: str | None = None) -> list[tuple[str, datetime, int, int]]:
        return shared_tables.history(self._db, client_id)

    def setting(self, key: str) -> str | None:
        return shared_tables.setting(self._db, key)

    def settings(self) -> dict[str, str]:
        return shared_tables.settings(self._db)

    def sent_alerts(self) -> set[tuple[str, int, date]]:
        return automation.sent_alerts(self._db)

    def count_sent_alerts(self, client_id: str, period: date) -> int:
        (n,), = self._db.query("SELECT count(*) FROM alerts_sent WHERE client_id = %s "
                               "AND period = %s", (client_id, period))
        return int(n)

    def notifications(self, client_id: str | None = None) -> list[Notification]:
        return automation.notifications(self._db, client_id)

    def auto_deactivate_flags(self) -> dict[str, bool]:
        return automation.auto_deactivate_flags(self._db)

    def deactivations(self, run_id: str | None = None) -> list[Deactivation]:
        return automation.deactivations(self._db, run_id)

    # writes, inside transaction() ---------------------------------------------------------
    def save_setting(self, key: str, value: str) -> None:
        shared_tables.save_setting(self._db, key, value)

    def save_counts(self, encoding: str, counts: Mapping[str, FieldTokens]) -> None:
        """In the order of the key: two hosts caching overlapping counts at once lock
        the rows in the same order, so they queue instead of deadlocking."""
        self._db.execute_many(
            "INSERT INTO token_counts VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (text_hash, encoding) DO UPDATE SET "
            "instructions = excluded.instructions, examples = excluded.examples, "
            "signals = excluded.signals",
            [(h, encoding, t.instructions, t.examples, t.signals)
             for h, t in sorted(counts.items())])

    def save_tier(self, tier: Tier) -> None:
        shared_tables.save_tier(self._db, tier)

    def save_extras(self, client_id: str, extras: Extras) -> None:
        self._db.execute(f"INSERT INTO client_extra ({_EXTRA_COLUMNS}) "
                         "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (client_id) DO UPDATE SET "
                         "topup = excluded.topup, period_months = excluded.period_months, "
                         "last_reset_period = excluded.last_reset_period, "
                         "anchor_day = excluded.anchor_day", (client_id, *extras))

    def add_audit(self, entry: AuditEntry) -> None:
        shared_tables.add_audit(self._db, entry)

    def add_history(self, client_id: str, at: datetime, usage: int, budget: int) -> None:
        shared_tables.add_history(self._db, client_id, at, usage, budget)

    def clear_alerts(self, client_id: str, period: date) -> None:
        shared_tables.clear_alerts(self._db, client_id, period)

    def replace(self, tiers: Iterable[Tier], extras: Iterable[tuple[str, Extras]]) -> None:
        for table in _REPLACED:
            self._db.execute(f"DELETE FROM {table}")
        self._db.execute_many("INSERT INTO tiers VALUES (%s, %s, %s)",
                              [(t.level, t.name, t.tokens) for t in tiers])
        self._db.execute_many(f"INSERT INTO client_extra ({_EXTRA_COLUMNS}) "
                              "VALUES (%s, %s, %s, %s, %s)",
                              [(cid, *e) for cid, e in extras])

    def save_notification(self, notification: Notification) -> None:
        automation.save_notification(self._db, notification)

    def save_auto_deactivate_flag(self, client_id: str, enabled: bool | None) -> None:
        automation.save_auto_deactivate_flag(self._db, client_id, enabled)

    def add_deactivation(self, deactivation: Deactivation) -> None:
        automation.add_deactivation(self._db, deactivation)

    def mark_restored(self, deactivations: Iterable[Deactivation], at: datetime) -> None:
        automation.mark_restored(self._db, deactivations, at)

    # committed at once -------------------------------------------------------------------
    def claim_alert(self, client_id: str, thresholds: Sequence[int], period: date,
                    holder: str, lease: float) -> bool:
        return automation.claim_alert(self._db, client_id, thresholds, period, holder, lease)

    def pass_lock(self) -> AbstractContextManager[bool]:
        """PostgreSQL's advisory lock, held by a session: a host that dies releases it."""
        return self._db.pass_lock()

    def pass_holder(self) -> PassHolder | None:
        return self._db.pass_holder()
