"""The two Airtable tables as the store reads them: listings that ask only for the
fields the store uses, records fetched by id 100 per formula (user text escaped by
pyairtable's formula helpers), a listing restarted when its cursor expired, and every
failure turned into a message naming the table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pyairtable import Table
from pyairtable.formulas import EQ, OR, RECORD_ID, Field, to_formula_str
from pyairtable.utils import chunked

from ..base import StoreError
from .config import AirtableConfig
from .http import AirtableFailure, PacedApi, Pacer, store_error
from .records import Record, is_record_id

KINDS = ("c", "a")  # the clients table, the attributes table
IDS_PER_FORMULA = 100
ITERATOR_EXPIRED = "LIST_RECORDS_ITERATOR_NOT_AVAILABLE"
T = TypeVar("T")


class Tables:
    """Kind "c" is the clients table, "a" the attributes table."""

    def __init__(self, config: AirtableConfig, pacer: Pacer) -> None:
        self.config = config
        self.api = PacedApi(config, pacer)
        self._tables = {kind: self.api.table(config.base_id, config.table(kind))
                        for kind in KINDS}

    def __getitem__(self, kind: str) -> Table:
        """pyairtable's table, for the writes (which report their own failures)."""
        return self._tables[kind]

    def error(self, f: AirtableFailure, kind: str | None, action: str) -> StoreError:
        return store_error(f, self.config, kind, action)

    def call(self, kind: str | None, action: str, fn: Callable[..., T], *args: Any,
             **kwargs: Any) -> T:
        """`fn(*args, **kwargs)`, its failure raised as a StoreError naming `action`."""
        failure = None
        try:
            return fn(*args, **kwargs)
        except AirtableFailure as f:
            failure = f
        raise self.error(failure, kind, action)

    def all(self, kind: str, formula: str | None = None,
            fields: list[str] | None = None) -> list[Record]:
        """Every matching record, 100 per request; a listing whose cursor expired is
        started again (Airtable keeps a cursor for a limited time)."""
        options: dict[str, Any] = {"page_size": 100, "fields": fields or self.config.fields(kind)}
        if formula:
            options["formula"] = formula
        failure = None
        for _ in range(3):
            try:
                return [*self._tables[kind].all(**options)]
            except AirtableFailure as f:
                failure = f
                if f.error_type != ITERATOR_EXPIRED:
                    break
        raise self.error(failure, kind, "list records")  # type: ignore[arg-type]

    def by_record_ids(self, kind: str, rids: Sequence[str]) -> list[Record]:
        out: list[Record] = []
        for chunk in chunked(list(rids), IDS_PER_FORMULA):
            out.extend(self.all(kind, to_formula_str(OR(*[EQ(RECORD_ID(), r) for r in chunk]))))
        return out

    def by_app_ids(self, kind: str, ids: Sequence[str]) -> list[Record]:
        """The records holding these app ids: record ids, or an id field's values."""
        id_field = self.config.cf("id") if kind == "c" else self.config.af("id")
        if not id_field:
            return self.by_record_ids(kind, [i for i in ids if is_record_id(i)])
        out: list[Record] = []
        for chunk in chunked(list(ids), IDS_PER_FORMULA):
            formula = to_formula_str(OR(*[EQ(Field(id_field), i) for i in chunk]))
            out.extend(self.all(kind, formula))
        return out
