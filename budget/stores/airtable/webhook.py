"""Airtable's change feed: a webhook on the base whose payloads, read from a cursor, name
every record destroyed since (`destroyedRecordIds`) and every table in which anything
was created, changed or destroyed, so a sync lists only the tables that changed. The
webhook has no notification URL: nothing is pushed, the mirror's sync asks (one request
while fewer than 50 transactions came in).

Its id, the cursor of the next payload and its expiration time are kept in the mirror's
state in the sidecar, so every process sharing the sidecar reads on from the same cursor.
Airtable lets a webhook live 7 days from its creation or last refresh; it is refreshed
once half of that is over. A token without the webhook:manage scope is refused (403):
then the mirror lists the ids instead (its sweep), and creation is tried again a sweep
interval later."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pyairtable.models import Webhook

from .http import AirtableFailure
from .tables import KINDS, Tables

HOOK_ID, HOOK_CURSOR = "hook:id", "hook:cursor"
HOOK_EXPIRES, HOOK_RENEWED = "hook:expires", "hook:renewed"  # seconds since the epoch
HOOK_READ = "hook:read"  # when its payloads were last read
HOOK_REFUSED = "hook:refused"  # when creation was last refused (no webhook rights)
HOOK_TABLES = "hook:tables"  # JSON: the table id of each kind ("" unknown), as payloads name tables
# table data of the whole base, every change type: record ids are unique in a base, and
# a table no payload names has not changed
SPEC: dict[str, Any] = {"options": {"filters": {"dataTypes": ["tableData"],
                                                "changeTypes": ["add", "remove", "update"]}}}
Save = Callable[[Mapping[str, str]], None]


def _seconds(moment: datetime | str | None, default: float) -> float:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return moment.timestamp() if moment else default


@dataclass(frozen=True)
class Feed:
    """What one read of the webhook tells: its id ("" without one), the records destroyed,
    the state keys to store once they are dropped (the next cursor), and the kinds of
    the tables that changed, None when the payloads were not read (then every due
    table is listed)."""

    hook: str = ""
    destroyed: tuple[str, ...] = ()
    cursor: Mapping[str, str] = field(default_factory=dict)
    changed: frozenset[str] | None = None


class ChangeFeed:
    """The base's webhook, as the mirror uses it (see the module docstring)."""

    def __init__(self, tables: Tables, save: Save) -> None:
        """`save` stores state keys in the sidecar at once: a webhook made or lost is
        remembered even if the rest of the sync fails."""
        self.tables, self.save = tables, save
        self.base = tables.api.base(tables.config.base_id)

    def read(self, state: dict[str, str], now: float, gap: float,
             sweep_interval: float) -> Feed:
        """What changed since the cursor; nothing read if the payloads were read less
        than `gap` seconds ago (the tables of a base synced one after the other ask
        once). A webhook that is gone (expired, deleted: 404) is created anew once,
        whose id comes with nothing read: what was destroyed before it only a sweep
        finds. Feed() without a webhook: refused, or not to be had now. A StoreError
        when Airtable is busy or down (the sync fails, as a listing would)."""
        hid = state.get(HOOK_ID, "")
        if hid and now < float(state.get(HOOK_EXPIRES) or 0):
            if now - float(state.get(HOOK_READ) or 0) < gap:
                return Feed(hid)
            try:
                return self._read(state, now)
            except AirtableFailure as f:
                if _passing(f):
                    raise self.tables.error(f, None, "read the webhook's payloads") from None
        if hid:  # lost: start over without it
            self.save({HOOK_ID: "", HOOK_CURSOR: "", HOOK_EXPIRES: "", HOOK_RENEWED: ""})
        if now - float(state.get(HOOK_REFUSED) or 0) < sweep_interval:
            return Feed()
        return Feed(self._create(now))

    def _read(self, state: dict[str, str], now: float) -> Feed:
        """The changes from the cursor on (and the webhook refreshed once half its life
        is over)."""
        hook = Webhook.from_api({"id": state[HOOK_ID], "areNotificationsEnabled": False,
                                 "cursorForNextPayload": int(state[HOOK_CURSOR]),
                                 "isHookEnabled": True, "specification": SPEC},
                                self.tables.api, context=self.base)
        expires, renewed = float(state[HOOK_EXPIRES]), float(state.get(HOOK_RENEWED) or now)
        if expires - now < (expires - renewed) / 2:
            hook.extend_expiration()
            self.save({HOOK_EXPIRES: str(_seconds(hook.expiration_time, expires)),
                       HOOK_RENEWED: str(now)})
        cursor, gone, tables = int(state[HOOK_CURSOR]), [], set()
        for payload in hook.payloads(cursor):
            for table_id, table in payload.changed_tables_by_id.items():
                tables.add(table_id)
                gone.extend(table.destroyed_record_ids)
            cursor = (payload.cursor or cursor) + 1
        ids = json.loads(state.get(HOOK_TABLES) or "{}")
        # a table whose id is not known counts as changed: it is listed as without a webhook
        changed = frozenset(kind for kind in KINDS if ids.get(kind, "") in tables | {""})
        return Feed(state[HOOK_ID], tuple(gone), {HOOK_CURSOR: str(cursor), HOOK_READ: str(now)},
                    changed)

    def _create(self, now: float) -> str:
        """A new webhook's id; "" if Airtable refused it (403: the token may not manage
        webhooks; remembered, tried again a sweep interval later) or is busy or down
        (tried again at the next sync). Never a failure: the sweep does the work."""
        try:
            made = self.base.add_webhook(None, SPEC)  # type: ignore[arg-type]  # no URL: no pushes
        except AirtableFailure as f:
            if not _passing(f):
                self.save({HOOK_REFUSED: str(now)})
            return ""
        self.save({HOOK_ID: made.id, HOOK_CURSOR: "1", HOOK_REFUSED: "", HOOK_TABLES: "",
                   HOOK_EXPIRES: str(_seconds(made.expiration_time, now)),
                   HOOK_RENEWED: str(now), HOOK_READ: str(now)})
        self.save({HOOK_TABLES: json.dumps(self._table_ids())})
        return made.id

    def _table_ids(self) -> dict[str, str]:
        """The id of each kind's table (the settings may name it or give its id), from
        the base's schema; "" for each when the token may not read the schema: the
        webhook still reports deletions, and both tables are listed at every sync."""
        try:
            schema = self.base.schema(force=True).tables
        except AirtableFailure:
            return {kind: "" for kind in KINDS}
        return {kind: next((t.id for t in schema if self.tables.config.table(kind)
                            in (t.id, t.name)), "") for kind in KINDS}


def _passing(f: AirtableFailure) -> bool:
    """Busy or down (rate limited, 5xx, no answer): nothing wrong with the webhook."""
    return f.status in (0, 429) or f.status >= 500
