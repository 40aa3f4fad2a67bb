"""The scheduled pass's lock in a SQLite file (the embedded store, the Airtable sidecar):
a row of the `locks` table naming its holder, with a lease.

SQLite has no lock that outlives a transaction and dies with its process, and a pass is
many transactions, so the lock is a row: taken in one statement (an insert, or the
takeover of a row whose lease ran out), renewed by a thread while the pass runs, and
deleted at the end. A process that dies stops renewing, and the next pass after the
lease takes over. A pass stalled past its lease could so overlap with the next one; the
alert claims (`automation_sql.claim_alerts`) still keep each email to one."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime

from .base import PassHolder
from .sqlite_connection import connect

LEASE = 60.0  # seconds a holder that stopped renewing keeps the lock
RENEW_EVERY = LEASE / 4
WAIT = 30.0  # seconds a statement waits for another writer's transaction, by default

DDL = """CREATE TABLE IF NOT EXISTS locks (
    name TEXT PRIMARY KEY, holder TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    since TEXT NOT NULL, expires REAL NOT NULL)"""


class LeaseLock:
    """The lock `name` in the SQLite file at `path`; each use opens connections of its
    own, so it never joins (or waits for) a transaction of the thread that takes it."""

    def __init__(self, path: str, name: str = "pass", lease: float = LEASE,
                 renew_every: float = RENEW_EVERY, wait: float = WAIT) -> None:
        self.path, self.name = path, name
        self.lease, self.renew_every, self.wait = lease, renew_every, wait

    def _connect(self) -> sqlite3.Connection:
        conn = connect(self.path, timeout=self.wait)
        conn.execute(DDL)
        return conn

    @contextmanager
    def held(self) -> Iterator[bool]:
        """Whether this process got the lock, held while the `with` body runs."""
        me = PassHolder.this_process()
        with closing(self._connect()) as conn:
            got = conn.execute(
                "INSERT INTO locks VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE "
                "SET holder = excluded.holder, host = excluded.host, pid = excluded.pid, "
                "since = excluded.since, expires = excluded.expires "
                "WHERE locks.expires < ?",
                (self.name, me.id, me.host, me.pid, me.since.isoformat(),
                 time.time() + self.lease, time.time())).rowcount == 1
            if not got:
                yield False
                return
            stop = threading.Event()
            renewer = threading.Thread(target=self._renew, args=(me.id, stop), daemon=True,
                                       name=f"{self.name} lock lease")
            renewer.start()
            try:
                yield True
            finally:
                stop.set()
                renewer.join()
                conn.execute("DELETE FROM locks WHERE name = ? AND holder = ?",
                             (self.name, me.id))

    def _renew(self, holder: str, stop: threading.Event) -> None:
        """Moves the lease on until `stop`; a renewal that fails (the file busy past the
        wait) is tried again at the next beat, well inside the lease."""
        with closing(connect(self.path, timeout=self.wait)) as conn:
            while not stop.wait(self.renew_every):
                try:
                    conn.execute("UPDATE locks SET expires = ? WHERE name = ? AND holder = ?",
                                 (time.time() + self.lease, self.name, holder))
                except sqlite3.OperationalError:
                    continue

    def holder(self) -> PassHolder | None:
        """Who holds the lock now, if its lease is still running."""
        with closing(self._connect()) as conn:
            rows = conn.execute("SELECT host, pid, since, holder FROM locks "
                                "WHERE name = ? AND expires >= ?",
                                (self.name, time.time())).fetchall()
        if not rows:
            return None
        host, pid, since, holder = rows[0]
        return PassHolder(host, pid, datetime.fromisoformat(since), holder)
