"""Which base, tables and fields the Airtable store uses, and how hard it may push the
API: every name is a setting, so the store fits a base whose fields are named otherwise."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field

from ...model import BadInput
from ...settings import AirtableSettings
from ...settings.schema import DEFAULT_LOCK_TIMEOUT
from .sidecar_protocol import POSTGRESQL_SCHEMES

# role -> (setting, default field name); "" means: not used
CLIENT_FIELDS: dict[str, tuple[str, str]] = {
    "id": ("AIRTABLE_CLIENT_ID_FIELD", ""),
    "name": ("AIRTABLE_CLIENT_NAME_FIELD", "Client Name"),
    "service_level": ("AIRTABLE_SERVICE_LEVEL_FIELD", "Service Level"),
    "token_budget": ("AIRTABLE_TOKEN_BUDGET_FIELD", "Token Budget"),
    "token_usage": ("AIRTABLE_TOKEN_USAGE_FIELD", "Token Usage"),
    "budget_reset_date": ("AIRTABLE_BUDGET_RESET_DATE_FIELD", "Budget Reset Date"),
    "last_token_update": ("AIRTABLE_LAST_TOKEN_UPDATE_FIELD", "Last Token Update"),
    "email": ("AIRTABLE_EMAIL_FIELD", "Email"),
    "account_manager": ("AIRTABLE_ACCOUNT_MANAGER_FIELD", "Account Manager"),
    # the inverse of the attributes' Client link, which Airtable adds by itself
    "attributes": ("AIRTABLE_CLIENT_ATTRIBUTES_FIELD", "Scoring Attributes"),
}
ATTRIBUTE_FIELDS: dict[str, tuple[str, str]] = {
    "id": ("AIRTABLE_ATTRIBUTE_ID_FIELD", ""),
    "name": ("AIRTABLE_ATTRIBUTE_NAME_FIELD", "Name"),
    "client": ("AIRTABLE_ATTRIBUTE_CLIENT_FIELD", "Client"),
    "active": ("AIRTABLE_ACTIVE_FIELD", "Active"),
    "instructions": ("AIRTABLE_INSTRUCTIONS_FIELD", "Instructions"),
    "examples": ("AIRTABLE_EXAMPLES_FIELD", "Examples"),
    "signals": ("AIRTABLE_SIGNALS_FIELD", "Signals"),
}
# the fields the app adds to the user's clients table (`tokenbudget airtable migrate`)
TOKEN_FIELDS = ("token_budget", "token_usage", "budget_reset_date", "last_token_update")


@dataclass(frozen=True)
class AirtableConfig:
    """The store's settings. Tables are named by kind: "c" the clients, "a" the
    attributes; fields by role (the keys of CLIENT_FIELDS and ATTRIBUTE_FIELDS)."""

    api_key: str = field(repr=False)
    base_id: str
    endpoint_url: str = "https://api.airtable.com"
    clients_table: str = "Clients"
    attributes_table: str = "Scoring Attributes"
    client_fields: Mapping[str, str] = field(
        default_factory=lambda: {k: v[1] for k, v in CLIENT_FIELDS.items()})
    attribute_fields: Mapping[str, str] = field(
        default_factory=lambda: {k: v[1] for k, v in ATTRIBUTE_FIELDS.items()})
    sidecar: str = "data/airtable-sidecar.db"  # a file path, or a postgresql:// URL
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT  # seconds a writer waits for the sidecar lock
    min_interval: float = 0.22  # seconds between requests: 4.5 per second, under 5
    penalty: float = 30.0  # Airtable's wait after a 429
    retries: int = 5
    backoff: float = 1.0  # first wait before retrying a 5xx / dropped connection
    timeout: tuple[float, float] = (10.0, 60.0)
    allow_replace: bool = False  # demo-data wipes both tables: only on a test base
    sync_interval: float = 30.0  # seconds between the mirror's syncs
    sync_overlap: float = 5.0  # seconds each sync looks back before the one before
    sweep_interval: float = 3600.0  # seconds between listings of the ids (deletions)
    webhooks: str = "auto"  # deletions from a webhook's payloads: "auto" if allowed, "off"

    @classmethod
    def from_settings(cls, section: AirtableSettings,
                      lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> AirtableConfig:
        """The store's view of the `airtable` settings (and of the store-wide
        `TOKENBUDGET_LOCK_TIMEOUT`); the key and base id are checked here, because only a
        store that talks to Airtable needs them."""
        key = section.api_key.get_secret_value()
        if not key:
            raise BadInput("settings", "AIRTABLE_API_KEY",
                           "not set; put it in the environment or .streamlit/secrets.toml")
        if not re.fullmatch(r"app[A-Za-z0-9]{14}", section.base_id):
            raise BadInput("settings", "AIRTABLE_BASE_ID",
                           "not set or not a base id (app followed by 14 letters and digits)")
        by_alias = section.model_dump(by_alias=True)
        return cls(
            api_key=key, base_id=section.base_id, endpoint_url=section.endpoint_url,
            clients_table=section.clients_table, attributes_table=section.attributes_table,
            client_fields={role: by_alias[name] for role, (name, _) in CLIENT_FIELDS.items()},
            attribute_fields={role: by_alias[name]
                              for role, (name, _) in ATTRIBUTE_FIELDS.items()},
            sidecar=section.sidecar, lock_timeout=lock_timeout,
            min_interval=section.min_interval,
            penalty=section.rate_limit_penalty, retries=section.retries,
            backoff=section.retry_backoff,
            timeout=(section.connect_timeout, section.read_timeout),
            allow_replace=section.allow_replace, sync_interval=section.sync_interval,
            sync_overlap=section.sync_overlap, sweep_interval=section.sweep_interval,
            webhooks=section.webhooks)

    def local_file(self, suffix: str) -> str:
        """A file of this machine for the base (the pacer's schedule): beside a sidecar
        file; with the sidecar in PostgreSQL, in the temporary folder, named for the
        endpoint and base, so every process of the machine finds the same one."""
        if not self.sidecar.startswith(POSTGRESQL_SCHEMES):
            return self.sidecar + suffix
        where = hashlib.sha256(self.endpoint_url.encode()).hexdigest()[:12]
        return os.path.join(tempfile.gettempdir(),
                            f"tokenbudget-airtable-{self.base_id}-{where}{suffix}")

    def missing_names(self) -> list[str]:
        """Required field roles that are set to nothing."""
        return [f"{CLIENT_FIELDS[r][0]}" for r in ("name", "service_level", *TOKEN_FIELDS)
                if not self.client_fields.get(r)] + \
               [f"{ATTRIBUTE_FIELDS[r][0]}" for r in ("client", "active", "instructions",
                                                       "examples", "signals")
                if not self.attribute_fields.get(r)]

    def cf(self, role: str) -> str:
        """The clients table's field for `role`; "" when the role is not used."""
        return self.client_fields.get(role, "")

    def af(self, role: str) -> str:
        """The attributes table's field for `role`; "" when the role is not used."""
        return self.attribute_fields.get(role, "")

    def fields(self, kind: str) -> list[str]:
        """Every field of a table the store uses: what a listing asks for."""
        names = self.client_fields if kind == "c" else self.attribute_fields
        return [v for v in names.values() if v]

    def table(self, kind: str) -> str:
        return self.clients_table if kind == "c" else self.attributes_table
