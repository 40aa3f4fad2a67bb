"""PostgreSQL failures as one-line StoreErrors that say what to do and never show the
password: the URL is named with it masked, and server messages are scrubbed of it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import PoolTimeout

from ...redact import scrub, url_passwords
from ..base import StoreBusy, StoreError


def redact(url: str) -> str:
    """The URL with its password (in the user part or a `password=` parameter) replaced
    by ***, for labels and messages."""
    parts = urlsplit(url)
    if parts.password is not None:
        user, _, host = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{user.partition(':')[0]}:***@{host}")
    query = [(k, "***" if k == "password" else v)
             for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


class Translator:
    """Turns driver and pool errors into StoreErrors naming the store by `label`."""

    def __init__(self, url: str, lock_timeout: float, statement_timeout: float,
                 connect_timeout: float) -> None:
        # the password as libpq reads it, and as a person wrote it (a `#` or `/` left
        # unencoded makes libpq read part of it as the host, port or database)
        try:
            self._passwords = [str(conninfo_to_dict(url).get("password") or "")]
        except psycopg.ProgrammingError:  # not a valid URL: the connection will say so
            self._passwords = []
        self._passwords += url_passwords(url)
        self.label = scrub(redact(url), *self._passwords)
        self.lock_timeout, self.statement_timeout = lock_timeout, statement_timeout
        self.connect_timeout = connect_timeout

    def error(self, e: Exception) -> StoreError:
        if isinstance(e, PoolTimeout):
            return StoreError(f"{self.label}: no connection within {self.connect_timeout:g} s "
                              "(the server is unreachable or every connection is busy); "
                              "try again")
        text = str(e).strip()
        first = scrub(text.splitlines()[0] if text else type(e).__name__, *self._passwords)
        kind = StoreBusy if isinstance(e, pg.LockNotAvailable | pg.QueryCanceled) else StoreError
        if isinstance(e, pg.LockNotAvailable):
            why = f"busy: a lock was not granted within {self.lock_timeout:g} s; try again"
        elif isinstance(e, pg.QueryCanceled):
            why = (f"busy: a statement ran past the {self.statement_timeout:g} s "
                   "statement timeout; try again")
        elif isinstance(e, pg.SerializationFailure | pg.DeadlockDetected):
            why = f"a concurrent change conflicted ({first}); try again"
        elif isinstance(e, psycopg.OperationalError):
            why = f"cannot connect: {first}"
        else:
            why = first
        return kind(f"{self.label}: {why}")

    @contextmanager
    def translated(self) -> Iterator[None]:
        try:
            yield
        except (psycopg.Error, PoolTimeout) as e:
            raise self.error(e) from None
