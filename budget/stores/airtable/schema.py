"""What `tokenbudget airtable check` and `tokenbudget airtable migrate` do.

check: which tables and fields the settings name exist in the base, which are
missing and which have a type the store cannot read. One metadata request.

migrate: adds the four token fields (Token Budget, Token Usage, Budget Reset Date,
Last Token Update) to the clients table through Airtable's metadata API, and creates
the sidecar (a local file, or tables in PostgreSQL) that holds the tier table, audit
log, usage history, token counts and alert state (the package docstring says why they
live there). It never
creates or changes the user's own tables or fields beyond those four, and a second
run changes nothing. Both go through the store's paced, retrying client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..base import StoreError
from .config import TOKEN_FIELDS
from .store import AirtableStore

TEXT = {"singleLineText", "multilineText", "richText"}
NUMBER = {"number", "currency", "percent", "rating"}
# role -> (types the store reads, the type migrate creates / suggests)
CLIENT_TYPES: dict[str, tuple[set[str], str]] = {
    "id": (TEXT | {"autoNumber", "number", "formula"}, "singleLineText"),
    "name": (TEXT | {"formula", "autoNumber"}, "singleLineText"),
    "service_level": (NUMBER | {"singleLineText"}, "number"),
    "token_budget": (NUMBER, "number"),
    "token_usage": (NUMBER, "number"),
    "budget_reset_date": ({"date", "dateTime"}, "date"),
    "last_token_update": ({"dateTime", "date"}, "dateTime"),
    "email": ({"email"} | TEXT, "email"),
    "account_manager": (TEXT, "singleLineText"),
    "attributes": ({"multipleRecordLinks"}, "multipleRecordLinks"),
}
ATTRIBUTE_TYPES: dict[str, tuple[set[str], str]] = {
    "id": (TEXT | {"autoNumber", "number", "formula"}, "singleLineText"),
    "name": (TEXT | {"formula", "autoNumber"}, "singleLineText"),
    "client": ({"multipleRecordLinks"}, "multipleRecordLinks"),
    "active": ({"checkbox"}, "checkbox"),
    "instructions": (TEXT, "multilineText"),
    "examples": (TEXT, "multilineText"),
    "signals": (TEXT, "multilineText"),
}
NEW_FIELD_OPTIONS: dict[str, dict] = {
    "token_budget": {"precision": 0},
    "token_usage": {"precision": 0},
    "budget_reset_date": {"dateFormat": {"name": "iso", "format": "YYYY-MM-DD"}},
    "last_token_update": {"dateFormat": {"name": "iso", "format": "YYYY-MM-DD"},
                          "timeFormat": {"name": "24hour", "format": "HH:mm"},
                          "timeZone": "utc"},
}


@dataclass
class FieldCheck:
    table: str
    field: str
    role: str
    status: str  # ok, missing, wrong type, wrong link
    found: str = ""
    expected: str = ""


@dataclass
class SchemaReport:
    tables: dict[str, bool] = field(default_factory=dict)  # table name -> exists
    fields: list[FieldCheck] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    sidecar: str = ""

    @property
    def ok(self) -> bool:
        return all(self.tables.values()) and all(f.status == "ok" for f in self.fields)

    def lines(self) -> list[str]:
        out = []
        for table, exists in self.tables.items():
            out.append(f"table {table}: {'found' if exists else 'MISSING'}")
            for f in self.fields:
                if f.table != table:
                    continue
                if f.status == "ok":
                    out.append(f"  ok           {f.field} ({f.found})")
                elif f.status == "missing":
                    hint = " - `tokenbudget airtable migrate` adds it" \
                        if table_role(f) in TOKEN_FIELDS else ""
                    out.append(f"  MISSING      {f.field} (expected {f.expected}){hint}")
                else:
                    out.append(f"  {f.status.upper():<12} {f.field}: is {f.found}, "
                               f"expected {f.expected}")
        for name in self.created:
            out.append(f"created {name}")
        if self.sidecar:
            out.append(f"tiers, audit log, usage history, token counts and alert state live "
                       f"in {self.sidecar} (not in Airtable)")
        return out


def table_role(f: FieldCheck) -> str:
    return f.role if f.table and f.role in TOKEN_FIELDS else ""


def _schema(store: AirtableStore) -> dict[str, dict[str, Any]]:
    """Tables by name, from one metadata request, as plain JSON."""
    url = store.api.build_url("meta/bases", store.config.base_id, "tables")
    data = store.tables.call(None, "read the base schema", store.api.get, url)
    return {t["name"]: t for t in (data or {}).get("tables", [])}


def check(store: AirtableStore) -> SchemaReport:
    cfg = store.config
    tables = _schema(store)
    report = SchemaReport(sidecar=store.sidecar_label)
    plan = ((cfg.clients_table, cfg.client_fields, CLIENT_TYPES, cfg.attributes_table),
            (cfg.attributes_table, cfg.attribute_fields, ATTRIBUTE_TYPES, cfg.clients_table))
    for table_name, names, types, other in plan:
        table = tables.get(table_name)
        report.tables[table_name] = table is not None
        by_name = {f["name"]: f for f in (table or {}).get("fields", [])}
        for role, field_name in names.items():
            if not field_name:
                continue
            accepted, preferred = types[role]
            f = by_name.get(field_name)
            if f is None:
                report.fields.append(FieldCheck(table_name, field_name, role, "missing",
                                                expected=preferred))
                continue
            status = "ok" if f.get("type") in accepted else "wrong type"
            expected = preferred if status == "ok" else " or ".join(sorted(accepted))
            if status == "ok" and f.get("type") == "multipleRecordLinks":
                linked = (f.get("options") or {}).get("linkedTableId")
                if linked != (tables.get(other) or {}).get("id"):
                    status, expected = "wrong link", f"a link to {other}"
            report.fields.append(FieldCheck(table_name, field_name, role, status,
                                            f.get("type", "?"), expected))
    return report


def migrate(store: AirtableStore) -> SchemaReport:
    """Adds the missing token fields to the clients table; idempotent. (The sidecar's
    tables were made, or migrated, when the store opened.)"""
    cfg = store.config
    before = check(store)
    if not before.tables.get(cfg.clients_table):
        raise StoreError(f"Airtable table {cfg.clients_table!r} does not exist in base "
                         f"{cfg.base_id}; migrate adds fields to your clients table, it does "
                         "not create it (check AIRTABLE_CLIENTS_TABLE)")
    table_id = _schema(store)[cfg.clients_table]["id"]
    url = store.api.build_url("meta/bases", cfg.base_id, "tables", table_id, "fields")
    created = []
    for f in before.fields:
        if f.table == cfg.clients_table and f.role in TOKEN_FIELDS and f.status == "missing":
            body = {"name": f.field, "type": CLIENT_TYPES[f.role][1],
                    "options": NEW_FIELD_OPTIONS[f.role],
                    "description": "written by tokenbudget"}
            store.tables.call("c", f"create field {f.field!r}", store.api.post, url, json=body)
            created.append(f"field {cfg.clients_table}.{f.field}")
    after = check(store)
    after.created = created
    return after
