"""How the stores open a SQLite file: the embedded store and the Airtable store's
sidecar share these settings, so the two cannot drift apart."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .base import StoreBusy

_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class BusyAwareConnection(sqlite3.Connection):
    """A connection that reports a lock wait past its timeout ("database is locked") as
    StoreBusy, wherever it happens: at BEGIN IMMEDIATE, at a write, at COMMIT. Both
    stores run every statement through `execute`, `executemany` or `executescript`,
    so none of them can let the raw driver error through."""

    path = ""
    timeout = 0.0

    @contextmanager
    def _busy_is_store_busy(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as e:
            if getattr(e, "sqlite_errorcode", 0) & 0xFF not in _BUSY_CODES:
                raise
            raise StoreBusy(f"SQLite: {self.path}: busy: another writer held the lock "
                            f"past the {self.timeout:g} s lock timeout; try again") from None

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        with self._busy_is_store_busy():
            return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        with self._busy_is_store_busy():
            return super().executemany(sql, parameters)

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        with self._busy_is_store_busy():
            return super().executescript(sql_script)


def connect(path: str, *, timeout: float, foreign_keys: bool = False) -> BusyAwareConnection:
    """A connection in autocommit mode, because each store begins its own transactions
    (BEGIN IMMEDIATE takes the write lock up front), usable from any thread since the
    stores keep one per thread themselves, with a WAL journal so that readers never wait
    for a writer. `timeout`: seconds a writer waits for another's lock before the
    connection raises StoreBusy. `foreign_keys`: enforce the schema's REFERENCES clauses."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None,
                           check_same_thread=False, factory=BusyAwareConnection)
    conn.path, conn.timeout = path, timeout
    if foreign_keys:
        conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def add_column(conn: sqlite3.Connection, table: str, column: str, declaration: str) -> None:
    """Adds a column that a file made by an earlier release lacks (CREATE TABLE IF NOT
    EXISTS leaves an existing table as it is); a no-op once it is there."""
    if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
