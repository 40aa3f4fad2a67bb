"""What every capability of the service stands on: the store, the settings, the clock,
the reads they all need, and the three things every write does (role check, stored
Token Usage with its history snapshot, audit entry), so no capability does them its
own way."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import replace
from datetime import UTC, datetime

from .. import core
from ..model import (Actor, Attribute, AttributeCost, AuditEntry, BadInput, Client,
                     FieldTokens, NotAllowed, Tier, Usage)
from ..redact import scrub
from ..settings import Settings
from ..stores import Store
from ..tokens import Counter, counter


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class ServiceBase:
    def __init__(self, store: Store, settings: Settings | None = None,
                 clock: Callable[[], datetime] = _now) -> None:
        self.store = store
        self.settings = settings or Settings()
        self.clock = clock

    @property
    def store_label(self) -> str:
        """What the sidebar names the data by, e.g. "SQLite: data/tokenbudget.db"."""
        return self.store.label

    def redacted(self, text: object) -> str:
        """`text` with every form of every secret the settings hold hidden: what a door
        (CLI, API, page) shows of an error whose text came from elsewhere."""
        return scrub(str(text), *self.settings.secret_values())

    @property
    def store_warnings(self) -> list[str]:
        """The records skipped on the last load, each naming its record and field."""
        return list(self.store.warnings)

    @property
    def encoding(self) -> str:
        """The admin's choice kept with the data, else the setting's."""
        return self.store.setting("encoding") or self.settings.encoding

    @property
    def counter(self) -> Counter:
        return counter(self.encoding)

    # reads -------------------------------------------------------------------
    def tiers(self) -> dict[int, Tier]:
        return self.store.tiers()

    def costs(self, client_id: str | None = None,
              encoding: str | None = None, save: bool = True) -> list[AttributeCost]:
        """Token counts of attributes; texts not yet counted with the encoding are
        counted now and saved (unless `save` is false: a dry run writes nothing), so
        the next load needs no tokenizer at all."""
        encoding = encoding or self.encoding
        counted, uncounted = self.store.costs(encoding, client_id)
        if uncounted:
            fresh = self._count(uncounted, counter(encoding))
            if save:
                self.store.save_counts(encoding, fresh)
            counted += [AttributeCost(a.id, a.client_id, a.name, a.active, fresh[a.id])
                        for a in uncounted]
        return counted

    def _before_lock(self, client_id: str | None = None) -> None:
        """Loads the tokenizer and counts every text not yet counted (one client's, or
        everyone's), so that the write lock taken next is held only to re-check and
        write: loading a tokenizer takes a third of a second or more, a write a few
        milliseconds, and every other writer waits for the lock."""
        self.costs(client_id)
        self.load_tokenizer()  # even when every text is counted

    def load_tokenizer(self) -> None:
        """Loads the tokenizer of the encoding in use (a third of a second or more), so
        that the first count that needs it, an edit's preview or a save, does not wait.
        Pages show stored counts and never load it themselves."""
        self.counter.count_many([])

    def _count(self, attributes: Iterable[Attribute],
               using: Counter | None = None) -> dict[str, FieldTokens]:
        attributes = list(attributes)
        texts = [t for a in attributes for t in (a.instructions, a.examples, a.signals)]
        n = (using or self.counter).count_many(texts)
        return {a.id: FieldTokens(*n[3 * i:3 * i + 3]) for i, a in enumerate(attributes)}

    def usage_totals(self) -> dict[str, tuple[int, int, int]]:
        """Each client's (usage, attributes, active attributes): summed by the store in
        one query when it can and every text is counted (what a page load after each
        save needs), else from every attribute's costs, counting what is not yet."""
        summed = getattr(self.store, "usage_totals", None)
        totals = summed(self.encoding) if callable(summed) else None
        return totals if totals is not None else core.usage_by_client(self.costs())

    def top_costs(self, n: int, client_ids: Collection[str] | None = None
                  ) -> list[AttributeCost]:
        """The active attributes whose total reaches the n-th largest (ties at the cut
        kept), of `client_ids`' clients or everyone's, largest first (`core.top_costs`):
        what a "most tokens" list needs. Chosen by the store in one query when it can
        and every text is counted, else from every attribute's costs, counting what is
        not yet."""
        if n < 1:
            return []
        chosen = getattr(self.store, "top_costs", None)
        found = chosen(self.encoding, n, client_ids) if callable(chosen) else None
        return found if found is not None else core.top_costs(self.costs(), n, client_ids)

    def usage_report(self) -> list[Usage]:
        return core.summarize(self.store.clients(), self.usage_totals(), self.store.tiers(),
                              self.settings.warning)

    def client_names(self) -> list[tuple[str, str]]:
        """Every client's (id, name) by name, without its usage: what a list of clients
        to choose from needs. From one narrow query when the store has it (SQLite,
        PostgreSQL), else from the store's clients: reading 2,000 clients whole was 40%
        of the Client page's run after a Save, which moves the data version."""
        names = getattr(self.store, "client_names", None)
        return names() if callable(names) else [(c.id, c.name) for c in self.store.clients()]

    def client(self, client_id: str) -> Client:
        client = self.store.client(client_id)
        if client is None:
            raise BadInput(f"client {client_id}", "id", "no such client")
        return client

    def client_usage(self, client_id: str) -> Usage:
        client = self.client(client_id)
        return core.summarize([client], core.usage_by_client(self.costs(client_id)),
                              self.store.tiers(), self.settings.warning)[0]

    def attributes(self, client_id: str) -> list[Attribute]:
        self.client(client_id)
        return self.store.attributes(client_id)

    def audit(self, client_id: str | None = None) -> list[AuditEntry]:
        return self.store.audit(client_id)

    def history(self, client_id: str | None = None) -> list[tuple[str, datetime, int, int]]:
        return self.store.history(client_id)

    def data_version(self) -> str | None:
        """A token that changes whenever the stored data may have, so the pages reuse
        cached figures until then; None for a store with no cheap way to tell (asking
        Airtable would cost a request), and callers fall back to a time limit."""
        version = getattr(self.store, "data_version", None)
        return version() if callable(version) else None

    def store_matched_at(self) -> datetime | None:
        """When the store's local copy of its source last matched it (the Airtable
        mirror); None for a store that reads its data directly, or before a first sync."""
        matched = getattr(self.store, "matched_at", None)
        return matched() if callable(matched) else None

    def sync_store(self) -> None:
        """Brings the store's local copy of its source in step now (Refresh); nothing for
        a store that has none."""
        sync = getattr(self.store, "sync", None)
        if callable(sync):
            sync()

    # what every write does ----------------------------------------------------------
    def _require_admin(self, actor: Actor, what: str) -> None:
        if actor.role != "admin":
            raise NotAllowed(f"{actor.name} ({actor.role}) may not {what}; only admins may")

    def _audit(self, actor: Actor, action: str, client_id: str | None, before: dict,
               after: dict) -> None:
        self.store.add_audit(AuditEntry(self.clock(), actor.name, action, client_id,
                                        before, after))

    def _record_usage(self, client: Client, used: int, limit: int) -> Client:
        """Writes the stored Token Usage copy and a history snapshot together."""
        now = self.clock()
        saved = self.store.save_client(replace(client, token_usage=used, last_token_update=now))
        self.store.add_history(client.id, now, used, limit)
        return saved

    @staticmethod
    def _client_state(client: Client, keys: Iterable[str]) -> dict:
        """The audited fields of a client, for an audit entry's before and after."""
        return {k: getattr(client, k) for k in keys}
