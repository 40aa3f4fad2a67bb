"""The production store: the user's Airtable base, through pyairtable.

Where the data lives
--------------------
*In Airtable* (what Airtable users see and edit): the client master table
(`Clients`: name, Service Level, Token Budget, Token Usage, Budget Reset Date,
Last Token Update, Email, Account Manager) and the attributes table
(`Scoring Attributes`: Name, Client link, Active, Instructions, Examples, Signals).
Table and field names are settings (see `AirtableConfig`). Client and attribute ids
are Airtable record ids unless an id field is configured (`AIRTABLE_CLIENT_ID_FIELD`,
`AIRTABLE_ATTRIBUTE_ID_FIELD`).

*In the sidecar* (`AIRTABLE_SIDECAR`: a SQLite file, by default
`data/airtable-sidecar.db`, or a `postgresql://` URL for several hosts on one base):
what Airtable cannot hold natively or what only the
app needs -- the tier table, the audit log, the usage history, the token-count
cache (keyed by a hash of the texts, so an edit made directly in Airtable is
recounted), the alert state, the admin settings kept with the data (e.g. the
encoding) and the per-client extras (temporary top-up, period length, last reset
period, anchor day), and the scheduled pass's lock. Why not Airtable tables: the audit
entry, history snapshot and extras of a change must commit together, which one sidecar
transaction gives and Airtable (no transactions, 10 records per write) does not; and
they would spend the base's 5 requests per second on data no Airtable user reads. The
cost: every app instance must share the sidecar (one machine: a file on persistent
storage; several: PostgreSQL); `tokenbudget airtable migrate` creates it and says where
it is.

Where the code lives
--------------------
- `config`: AirtableConfig, the settings, and the field maps (role -> setting, name).
- `http`: requests within Airtable's limits (pacing, 429 penalty, retries), the
  AirtableFailure of one request and the message it gives, without the API key.
- `tables`: the two tables as the store reads them (listings, lookups by id).
- `records`: Airtable records parsed into Clients and Attributes, with warnings.
- `versions`: content-hash versions (Airtable has none) and the text hash.
- `sidecar_protocol`: the sidecar's methods (the write journal among them), and which
  home `AIRTABLE_SIDECAR` names; `sidecar`: in a SQLite file; `sidecar_postgresql`: in
  PostgreSQL; `deferred`: a sidecar write as it waits in a unit of work and the journal.
- `writer_lock`: the machine's Airtable writers' lock with the sidecar in a file (a
  flock next to it); with the sidecar in PostgreSQL its advisory locks serve.
- `journal`: what landed, learnt by reading records again; the journal settled from it
  after a lost answer, and the entries of a writer that died settled on the next start.
- `unit_of_work`: a transaction's buffered writes and their flush, 10 records per
  request (a batch refused for one record split to isolate it), journaled first, with
  an exact report when a write lands only in part.
- `store`: AirtableStore, the Store protocol over the above.
- `schema`: `tokenbudget airtable check` and `migrate`.
"""

from __future__ import annotations

from ..base import PartialWrite
from .config import ATTRIBUTE_FIELDS, CLIENT_FIELDS, TOKEN_FIELDS, AirtableConfig
from .http import AirtableFailure
from .schema import SchemaReport, check, migrate
from .store import AirtableStore, open_airtable
from .unit_of_work import WriteReport
from .versions import text_hash

__all__ = ["ATTRIBUTE_FIELDS", "CLIENT_FIELDS", "TOKEN_FIELDS", "AirtableConfig",
           "AirtableFailure", "AirtableStore", "PartialWrite", "SchemaReport", "WriteReport",
           "check", "migrate", "open_airtable", "text_hash"]
