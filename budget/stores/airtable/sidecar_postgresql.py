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
A lock not granted within the lock timeout is StoreBusy.

The write journal: an entry is written on a second, autocommitted connection, so it is
committed before the first request while the writer's transaction keeps its locks open
until the entry is settled in it; one transaction, no file lock. The writer holds an
advisory lock on the entry's id (`locks.journal_writer`) for as long: an entry whose
lock is free was left by a writer that is gone, on any host."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import date, datetime

from ...model import DEFAULT_TIERS, AuditEntry, Deactivation, FieldTokens, Notification, Tier
from ..base import PassHolder
from ..postgresql import automation, locks, shared_tables
from ..postgresql.connection import Database
from ..postgresql.migrations import CLAIMS, SHARED_TABLES, migrate
from .deferred import Deferred
from .sidecar_protocol import NO_EXTRAS, Extras, Intent, MirrorRow

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

_JOURNAL_TABLES = """
CREATE TABLE journal_writes (
    tx text COLLATE "C" NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    client_id text COLLATE "C" NOT NULL,
    kind text NOT NULL,
    rid text COLLATE "C" NOT NULL,
    fields text NOT NULL,
    PRIMARY KEY (tx, kind, rid)
);
CREATE TABLE journal_calls (
    tx text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    client_id text COLLATE "C" NOT NULL,
    method text NOT NULL,
    args text NOT NULL,
    PRIMARY KEY (tx, seq)
);
"""

_MIRROR_TABLES = """
CREATE TABLE mirror_records (
    kind text NOT NULL,
    rid text COLLATE "C" NOT NULL,
    seq bigserial NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    fields text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, rid)
);
CREATE INDEX mirror_records_app_id ON mirror_records (kind, app_id);
CREATE TABLE mirror_state (key text PRIMARY KEY, value text NOT NULL);
"""

# version -> the statements that bring the sidecar's schema from the version before to it
MIGRATIONS: dict[int, str] = {1: SHARED_TABLES + CLAIMS + _SIDECAR_TABLES,
                              2: _JOURNAL_TABLES, 3: _MIRROR_TABLES}
_EXTRA_COLUMNS = "client_id, topup, period_months, last_reset_period, anchor_day"
_REPLACED = ("tiers", "client_extra", "usage_history", "audit_log", "alerts_sent",
             *automation.TABLES)


class PostgresSidecar(shared_tables.SharedReads):
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

    def writer_lock(self, timeout: float) -> AbstractContextManager[None]:
        """None beyond `transaction()`'s advisory locks, held from the journal to its
        settling (one transaction), so hosts and processes writing other clients go on."""
        return nullcontext()

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

    # the write journal --------------------------------------------------------------------
    def journal(self, intents: Iterable[Intent], ops: Iterable[Deferred]) -> str:
        tx = secrets.token_hex(8)
        with self._db.connection() as conn:  # the transaction's: held until it settles
            locks.journal_writer(conn, tx)
        with self._db.beside() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany("INSERT INTO journal_writes (tx, client_id, kind, rid, fields) "
                            "VALUES (%s, %s, %s, %s, %s)",
                            [(tx, i.client_id, i.kind, i.rid, json.dumps(i.fields, sort_keys=True))
                             for i in intents])
            cur.executemany("INSERT INTO journal_calls VALUES (%s, %s, %s, %s, %s)",
                            [(tx, n, op.client_id, op.method, op.arguments())
                             for n, op in enumerate(ops)])
        return tx

    def journaled(self) -> dict[str, list[Intent]]:
        """The entries whose writer's lock is free."""
        out: dict[str, list[Intent]] = {}
        with self._db.beside() as conn:
            rows = conn.execute("SELECT tx, client_id, kind, rid, fields FROM journal_writes "
                                "ORDER BY tx, kind, rid").fetchall()
            gone = {tx for tx in {r[0] for r in rows} if locks.journal_writer_gone(conn, tx)}
        for tx, cid, kind, rid, fields in rows:
            if tx in gone:
                out.setdefault(tx, []).append(Intent(cid, kind, rid, json.loads(fields)))
        return out

    def settle(self, tx: str, landed: Iterable[str], known: Iterable[str]) -> None:
        """The calls are taken by deleting them: a second settler waits for the first's
        commit, then finds none."""
        known, landed = sorted(set(known)), set(landed)
        calls = self._db.query("DELETE FROM journal_calls WHERE tx = %s AND client_id = ANY(%s) "
                               "RETURNING seq, client_id, method, args", (tx, known))
        self._db.execute("DELETE FROM journal_writes WHERE tx = %s AND client_id = ANY(%s)",
                         (tx, known))
        for _, cid, method, args in sorted(calls):
            if cid in landed:
                Deferred.from_journal(cid, method, args).run(self)

    # the mirror ---------------------------------------------------------------------------
    def mirror_rows(self, kind: str, rids: Sequence[str] | None = None,
                    app_ids: Sequence[str] | None = None) -> list[tuple[str, str]]:
        """In the order the records were first mirrored (Airtable's listing order)."""
        sql = "SELECT rid, fields FROM mirror_records WHERE kind = %s"
        if rids is not None:
            return self._db.query(sql + " AND rid = ANY(%s) ORDER BY seq", (kind, list(rids)))
        if app_ids is not None:
            return self._db.query(sql + " AND app_id = ANY(%s) ORDER BY seq",
                                  (kind, list(app_ids)))
        return self._db.query(sql + " ORDER BY seq", (kind,))

    def mirror_ids(self, kind: str) -> list[str]:
        return [r for r, in self._db.query("SELECT rid FROM mirror_records WHERE kind = %s",
                                           (kind,))]

    def mirror_state(self) -> dict[str, str]:
        return dict(self._db.query("SELECT key, value FROM mirror_state"))

    def mirror_write(self, kind: str, rows: Iterable[MirrorRow], gone: Iterable[str],
                     state: Mapping[str, str], replace: bool = False) -> None:
        """On a connection beside the thread's transaction: a sync never waits for a
        writer's locks, nor holds them. An upsert keeps a row's place (its seq); rows in
        the order of the key, so two hosts syncing at once queue instead of deadlocking."""
        with self._db.beside() as conn, conn.transaction(), conn.cursor() as cur:
            if replace:
                cur.execute("DELETE FROM mirror_records WHERE kind = %s", (kind,))
            cur.executemany(
                "INSERT INTO mirror_records (kind, rid, app_id, fields) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (kind, rid) DO UPDATE SET app_id = excluded.app_id, "
                "fields = excluded.fields, changed_at = now()",
                [(kind, *row) for row in (rows if replace else sorted(rows))])
            cur.executemany("DELETE FROM mirror_records WHERE kind = %s AND rid = %s",
                            [(kind, rid) for rid in sorted(gone)])
            cur.executemany("INSERT INTO mirror_state VALUES (%s, %s) ON CONFLICT (key) "
                            "DO UPDATE SET value = excluded.value", sorted(state.items()))

    # committed at once -------------------------------------------------------------------
    def claim_alert(self, client_id: str, thresholds: Sequence[int], period: date,
                    holder: str, lease: float) -> bool:
        return automation.claim_alert(self._db, client_id, thresholds, period, holder, lease)

    def pass_lock(self) -> AbstractContextManager[bool]:
        """PostgreSQL's advisory lock, held by a session: a host that dies releases it."""
        return self._db.pass_lock()

    def pass_holder(self) -> PassHolder | None:
        return self._db.pass_holder()
