"""How the stores open a SQLite file: the embedded store and the Airtable store's
sidecar share these settings, so the two cannot drift apart."""

from __future__ import annotations

import sqlite3


def connect(path: str, *, timeout: float, foreign_keys: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode, because each store begins its own transactions
    (BEGIN IMMEDIATE takes the write lock up front), usable from any thread since the
    stores keep one per thread themselves, with a WAL journal so that readers never wait
    for a writer. `timeout`: seconds a writer waits for another's lock before SQLite
    reports busy. `foreign_keys`: enforce the schema's REFERENCES clauses."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None,
                           check_same_thread=False)
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
