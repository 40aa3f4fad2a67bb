"""Versions for records that have none. Airtable keeps no version, so a record's version
is a hash of its content: what the app reads of it, plus the sidecar extras. A write
compares the caller's version with the record as read inside the transaction (and the
unit of work re-reads the records before sending them)."""

from __future__ import annotations

import hashlib
import json

from ...model import Attribute, Client


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()


def version_of(obj: Client | Attribute) -> int:
    """The version of a client or attribute as parsed (its `version` field aside)."""
    state = {k: v for k, v in obj.__dict__.items() if k != "version"}
    return int(_digest(type(obj).__name__, state)[:12], 16)


def text_hash(instructions: str, examples: str, signals: str) -> str:
    """The key of an attribute's token counts in the sidecar: an edit made directly in
    Airtable changes the hash, so the texts are counted again."""
    return _digest(instructions, examples, signals)
