"""Store selection by URL: `sqlite:///PATH` (embedded default), `airtable` (settings
from the environment / secrets, see the package budget/stores/airtable) or
`postgresql://USER:PASSWORD@HOST:PORT/DB` (shared by several machines, see the package
budget/stores/postgresql)."""

from __future__ import annotations

from ..model import BadInput
from ..settings import AirtableSettings
from ..settings.schema import DEFAULT_LOCK_TIMEOUT
from .base import PartialWrite, Store, StoreBusy, StoreError
from .sqlite import SQLiteStore

__all__ = ["PartialWrite", "Store", "StoreBusy", "StoreError", "SQLiteStore", "open_store"]


def open_store(url: str, airtable: AirtableSettings | None = None,
               lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> Store:
    """The store a URL names; `airtable` is the section an Airtable store is built from;
    `lock_timeout`: seconds a writer waits for another's lock before StoreBusy."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not path:
            raise BadInput("store", "url", "sqlite:/// needs a file path")
        return SQLiteStore(path, lock_timeout)
    if url == "airtable":
        from .airtable import open_airtable  # pyairtable is loaded only when used
        return open_airtable(airtable or AirtableSettings(), lock_timeout)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgresql import PostgresStore  # psycopg is loaded only when used
        return PostgresStore(url, lock_timeout=lock_timeout)
    raise BadInput("store", "url", f"unsupported store {url!r}; use sqlite:///PATH, airtable "
                                   "or postgresql://USER:PASSWORD@HOST:PORT/DB")
