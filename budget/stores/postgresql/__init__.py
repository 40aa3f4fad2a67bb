"""The PostgreSQL store, for deployments on more than one machine:
`postgresql://USER:PASSWORD@HOST:PORT/DB` (or `postgres://`)."""

from __future__ import annotations

from .store import PostgresStore

__all__ = ["PostgresStore"]
