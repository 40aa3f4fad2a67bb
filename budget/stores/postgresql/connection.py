"""A pool of connections to one database, and the transaction each thread is in.

Connections are in autocommit mode: a read outside a transaction borrows one for that
statement alone, while `transaction()` keeps one for the thread until it commits, so
every read and write inside sees the same locks and the same uncommitted rows. Nested
use joins the transaction already open (adding the row lock of a client not yet locked).
Every connection works in UTC and with the lock and statement timeouts of the store, so a
busy database answers with a StoreError within a known time instead of hanging; and in
the schema (`search_path`) and with the lock keys (`locks.Keys`) of the state it holds:
the store's, or an Airtable sidecar's."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg_pool import ConnectionPool

from ..base import PassHolder
from . import locks
from .errors import Translator


@dataclass
class _Tx:
    conn: psycopg.Connection
    whole_store: bool
    clients: set[str] = field(default_factory=set)


class Database:
    def __init__(self, url: str, *, pool_size: int = 8, connect_timeout: float = 10.0,
                 lock_timeout: float = 10.0, statement_timeout: float = 60.0,
                 keys: locks.Keys = locks.STORE, schema: str | None = None) -> None:
        self.errors = Translator(url, lock_timeout, statement_timeout, connect_timeout)
        self.keys = keys
        self._settings = {"TimeZone": "UTC", "lock_timeout": f"{int(lock_timeout * 1000)}ms",
                          "statement_timeout": f"{int(statement_timeout * 1000)}ms"}
        if schema is not None:
            self._settings["search_path"] = schema
        self._local = threading.local()
        self._url, self._connect_timeout = url, connect_timeout
        self._pool = ConnectionPool(
            url, min_size=1, max_size=pool_size, open=False, timeout=connect_timeout,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(connect_timeout))},
            configure=self._configure, check=ConnectionPool.check_connection,
            name="tokenbudget")

    @property
    def label(self) -> str:
        return self.errors.label

    def _configure(self, conn: psycopg.Connection) -> None:
        for name, value in self._settings.items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))

    @contextmanager
    def direct(self) -> Iterator[psycopg.Connection]:
        """One connection outside the pool, for opening the store: its failure says why
        (refused, wrong password, no such database), where the pool would only time out."""
        with self.errors.translated(), psycopg.connect(
                self._url, autocommit=True,
                connect_timeout=max(1, round(self._connect_timeout))) as conn:
            self._configure(conn)
            yield conn

    def open(self) -> None:
        self._pool.open()

    def close(self) -> None:
        self._pool.close()

    def _tx(self) -> _Tx | None:
        return getattr(self._local, "tx", None)

    @contextmanager
    def transaction(self, client_id: str | None = None) -> Iterator[None]:
        tx = self._tx()
        if tx is not None:
            if client_id is not None and not tx.whole_store and client_id not in tx.clients:
                with self.errors.translated():
                    locks.client(tx.conn, self.keys, client_id)
                tx.clients.add(client_id)
            yield
            return
        with self.errors.translated(), self._pool.connection() as conn, conn.transaction():
            locks.store(conn, self.keys, shared=client_id is not None)
            tx = _Tx(conn, whole_store=client_id is None)
            if client_id is not None:
                locks.client(conn, self.keys, client_id)
                tx.clients.add(client_id)
            self._local.tx = tx
            try:
                yield
            finally:
                self._local.tx = None

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """The thread's transaction connection, or one borrowed for a single read."""
        tx = self._tx()
        with self.errors.translated():
            if tx is not None:
                yield tx.conn
            else:
                with self._pool.connection() as conn:
                    yield conn

    @contextmanager
    def beside(self) -> Iterator[psycopg.Connection]:
        """A connection of its own, autocommitted, beside the thread's transaction: what
        it commits is seen at once, whatever the transaction then does."""
        with self.errors.translated(), self._pool.connection() as conn:
            yield conn

    def query(self, sql: str, params: Sequence | dict = ()) -> list[tuple]:
        with self.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def execute(self, sql: str, params: Sequence | dict = ()) -> int:
        """One write statement inside the open transaction; the rows it touched."""
        tx = self._tx()
        assert tx is not None, "writes run inside transaction()"
        with self.errors.translated():
            return tx.conn.execute(sql, params).rowcount

    def execute_many(self, sql: str, rows: Sequence[Sequence]) -> None:
        tx = self._tx()
        assert tx is not None, "writes run inside transaction()"
        if rows:
            with self.errors.translated(), tx.conn.cursor() as cur:
                cur.executemany(sql, rows)

    @contextmanager
    def pass_lock(self) -> Iterator[bool]:
        """Holds the scheduled pass's lock on a connection of its own while the body
        runs, if no other session holds it; yields whether it got it. Never waits."""
        me = PassHolder.this_process()
        with self.errors.translated(), self._pool.connection() as conn:
            got = locks.try_pass(conn, self.keys)
            if got:
                locks.record_pass_holder(conn, me)
            try:
                yield got
            finally:
                if got:
                    try:
                        locks.forget_pass_holder(conn, me)
                        locks.release_pass(conn, self.keys)
                    except psycopg.Error:
                        conn.close()  # the session ends, and its lock with it

    def pass_holder(self) -> PassHolder | None:
        with self.connection() as conn:
            return locks.pass_holder(conn, self.keys)
