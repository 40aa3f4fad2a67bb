"""The locks that make several hosts on one database behave like one writer per client.

Every transaction takes the store lock, an advisory lock of the transaction: shared by
work on one client (which also locks that client's row, `SELECT ... FOR UPDATE`), so
changes to different clients run side by side while two changes to one client queue;
exclusive for whole-store work (tier limits, a data set load), which so waits for the
clients' work in progress and holds it off until it commits. The scheduled pass has a
lock of its own, held by a session rather than a transaction: a pass is many
transactions, and a host that dies releases it with its connection. Its holder is
written next to it in the `locks` table, so that a second pass can say who runs."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from ..base import PassHolder

# advisory lock keys are (class, object) pairs of 32-bit integers: one class for this
# application, so its locks never collide with another's in the same database
_CLASS = 0x7B0D6E7  # "tokenbudget"
_CLIENTS = 0x7B0D6E8  # one client of an Airtable sidecar, by the hash of its id
_JOURNAL = 0x7B0D6E9  # the writer of an Airtable sidecar's journal entry, by its id


@dataclass(frozen=True)
class Keys:
    """The locks of one kind of state in a database: the PostgreSQL store's, or an
    Airtable sidecar's (whose clients live in Airtable, so there is no row to lock and a
    client is locked by an advisory key on its id). Distinct keys, so that a store and a
    sidecar sharing a database never hold off each other's pass."""

    store: int
    pass_: int
    clients_by_row: bool


STORE = Keys(store=1, pass_=2, clients_by_row=True)
SIDECAR = Keys(store=3, pass_=4, clients_by_row=False)


def store(conn: psycopg.Connection, keys: Keys = STORE, shared: bool = False) -> None:
    """The store lock until the transaction ends; waits up to `lock_timeout`."""
    fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    conn.execute(f"SELECT {fn}(%s, %s)", (_CLASS, keys.store))


def client(conn: psycopg.Connection, keys: Keys, client_id: str) -> None:
    """One client until the transaction ends. By row: no row, no lock (the service then
    reports the unknown client). By key: two ids whose hashes collide merely queue."""
    if keys.clients_by_row:
        conn.execute("SELECT 1 FROM clients WHERE id = %s FOR UPDATE", (client_id,))
    else:
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_CLIENTS, client_id))


def journal_writer(conn: psycopg.Connection, entry: str) -> None:
    """Held by the writer of a journal entry until its transaction ends: while it is
    held, the entry is being written and settled; once free, its writer is gone."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_JOURNAL, entry))


def journal_writer_gone(conn: psycopg.Connection, entry: str) -> bool:
    """Whether the entry's writer lock is free. On an autocommitted connection the probe
    takes it and lets it go within its own statement. (Two entries whose ids' hashes
    collide: one is taken as alive a little longer.)"""
    row = conn.execute("SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))",
                       (_JOURNAL, entry)).fetchone()
    return bool(row and row[0])


def try_pass(conn: psycopg.Connection, keys: Keys) -> bool:
    """The scheduled pass's lock for this session, if no other session holds it."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (_CLASS, keys.pass_)).fetchone()
    return bool(row and row[0])


def release_pass(conn: psycopg.Connection, keys: Keys) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s, %s)", (_CLASS, keys.pass_))


def record_pass_holder(conn: psycopg.Connection, holder: PassHolder) -> None:
    """Once the pass's lock is held: a row left by a holder that died is overwritten."""
    conn.execute("INSERT INTO locks VALUES ('pass', %s, %s, %s, %s) ON CONFLICT (name) DO "
                 "UPDATE SET holder = excluded.holder, host = excluded.host, "
                 "pid = excluded.pid, since = excluded.since",
                 (holder.id, holder.host, holder.pid, holder.since))


def forget_pass_holder(conn: psycopg.Connection, holder: PassHolder) -> None:
    conn.execute("DELETE FROM locks WHERE name = 'pass' AND holder = %s", (holder.id,))


def pass_holder(conn: psycopg.Connection, keys: Keys) -> PassHolder | None:
    """Who holds the pass's lock, if a session holds it."""
    row = conn.execute(
        "SELECT host, pid, since, holder FROM locks WHERE name = 'pass' AND EXISTS ("
        "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND classid = %s AND objid = %s AND objsubid = 2)", (_CLASS, keys.pass_)).fetchone()
    return PassHolder(row[0], row[1], row[2], row[3]) if row else None
