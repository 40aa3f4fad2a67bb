"""A sidecar write waiting on a client's Airtable writes: the sidecar method to call and
its arguments, as the unit of work queues it and the write journal keeps it.

Kept as a method name and JSON arguments rather than SQL, so one journal entry replays
in either sidecar (SQLite or PostgreSQL) through the same methods that wrote it; only
the methods in DEFERRABLE can be named, so a journal row can never call anything else."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ...model import AuditEntry, Deactivation

# the sidecar writes that wait for a client's Airtable writes to land
DEFERRABLE = frozenset({"save_extras", "add_audit", "add_history", "clear_alerts",
                        "add_deactivation", "mark_restored"})
_TYPES: dict[str, type] = {"AuditEntry": AuditEntry, "Deactivation": Deactivation}


@dataclass(frozen=True)
class Deferred:
    """`method(*args)` of the sidecar, part of the change of `client_id`."""

    client_id: str
    method: str
    args: tuple[Any, ...]

    def __post_init__(self) -> None:
        if self.method not in DEFERRABLE:
            raise ValueError(f"not a deferrable sidecar write: {self.method!r}")

    def run(self, side: object) -> None:
        getattr(side, self.method)(*self.args)

    def arguments(self) -> str:
        """The arguments as JSON, for the journal."""
        return json.dumps(_encode(list(self.args)), sort_keys=True, default=str)  # as audited

    @classmethod
    def from_journal(cls, client_id: str, method: str, arguments: str) -> Deferred:
        return cls(client_id, method, tuple(_decode(json.loads(arguments))))


def _encode(value: Any) -> Any:
    """JSON of the values a deferred write takes: the model's dataclasses, dates and
    times tagged with their type, tuples as lists."""
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if dataclasses.is_dataclass(value) and type(value).__name__ in _TYPES:
        return {"$" + type(value).__name__: {f.name: _encode(getattr(value, f.name))
                                            for f in dataclasses.fields(value)}}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "$datetime":
            return datetime.fromisoformat(inner)
        if tag == "$date":
            return date.fromisoformat(inner)
        if tag.startswith("$") and tag[1:] in _TYPES:
            return _TYPES[tag[1:]](**{k: _decode(v) for k, v in inner.items()})
    return {k: _decode(v) for k, v in value.items()}
