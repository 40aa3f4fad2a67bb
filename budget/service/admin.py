"""Admin actions on budgets and their inputs: service level, budget override, top-up,
tier limits, the tokenizer, loading a data set; each with the preview an admin sees
before taking it. Every budget move leaves an audit entry and a history snapshot."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, replace

from .. import core
from ..model import Actor, Attribute, AttributeCost, BadInput, Client, StaleWrite, Tier, Usage
from ..tokens import ENCODINGS
from .base import ServiceBase


TIER_NAME_MAX = 60  # characters: a tier's name is a label in menus and tables


class Admin(ServiceBase):
    # one client's budget ------------------------------------------------------------
    def set_service_level(self, actor: Actor, client_id: str, level: object,
                          expected_version: int | None = None) -> Client:
        self._require_admin(actor, "change service levels")
        tiers = self.store.tiers()
        lvl = core.whole_number(f"client {client_id}", "Service Level", level)
        if lvl not in tiers:
            raise BadInput(f"client {client_id}", "Service Level",
                           f"level {lvl} is not in the tier table ({', '.join(map(str, tiers))})")
        return self._update_client(actor, "service_level", client_id, expected_version,
                                   service_level=lvl)

    def set_budget_override(self, actor: Actor, client_id: str, tokens: object | None,
                            expected_version: int | None = None) -> Client:
        self._require_admin(actor, "change budgets")
        value = None if tokens is None else core.whole_number(f"client {client_id}", "Token Budget",
                                                        tokens)
        return self._update_client(actor, "budget_override", client_id, expected_version,
                                   token_budget=value)

    def grant_topup(self, actor: Actor, client_id: str, tokens: object,
                    expected_version: int | None = None) -> Client:
        """Extra tokens on top of the budget until the next reset clears them."""
        self._require_admin(actor, "grant top-ups")
        value = core.whole_number(f"client {client_id}", "Top-up", tokens)
        return self._update_client(actor, "topup", client_id, expected_version, topup=value)

    def preview_client(self, client_id: str, **changes: object) -> Usage:
        """The client's usage against the budget it would have after `changes`
        (service_level, token_budget, topup). Each figure is checked as the write checks
        it, so a preview never shows a number that a save would refuse or change."""
        names = {"service_level": "Service Level", "token_budget": "Token Budget",
                 "topup": "Top-up"}
        checked = {k: v if v is None else core.whole_number(f"client {client_id}",
                                                            names.get(k, k), v)
                   for k, v in changes.items()}
        client = replace(self.client(client_id), **checked)  # type: ignore[arg-type]
        return core.summarize([client], core.usage_by_client(self.costs(client_id)),
                              self.store.tiers(), self.settings.warning)[0]

    def _update_client(self, actor: Actor, action: str, client_id: str,
                       expected_version: int | None, **changes: object) -> Client:
        self._before_lock(client_id)
        with self.store.transaction(client_id):
            client = self.client(client_id)
            if expected_version is not None and client.version != expected_version:
                raise StaleWrite(f"client {client_id} changed since it was read; reload")
            tiers = self.store.tiers()
            after = replace(client, **changes)  # type: ignore[arg-type]
            before_state = {**self._client_state(client, changes),
                            "budget": core.budget(client, tiers)}
            after_state = {**self._client_state(after, changes),
                           "budget": core.budget(after, tiers)}
            saved = self.store.save_client(after)
            self._audit(actor, action, client_id, before_state, after_state)
            # the budget moved: a history snapshot, so trend charts show the step
            self.store.add_history(client_id, self.clock(),
                                   core.usage(self.costs(client_id), client_id),
                                   after_state["budget"])
        return saved

    # tier limits -----------------------------------------------------------------
    @staticmethod
    def _tier_name(level: int, name: object) -> str | None:
        """A tier's name as typed, or None to keep the one it has; a name is one short
        line, as every table and menu shows it."""
        if name is None:
            return None
        if not isinstance(name, str) or not name.strip():
            raise BadInput(f"tier {level}", "name", "must be a non-empty text")
        if len(name) > TIER_NAME_MAX or "\n" in name:
            raise BadInput(f"tier {level}", "name", f"must be one line of at most "
                           f"{TIER_NAME_MAX} characters, got {len(name):,} characters")
        return name.strip()

    def preview_tier_limit(self, level: object, tokens: object,
                           name: object = None) -> list[Usage]:
        """Clients that the new limit would put over budget (they are not over now);
        every figure and the name checked as a save checks them."""
        lvl = core.whole_number(f"tier {core.brief(str(level))}", "level", level)
        limit = core.whole_number(f"tier {lvl}", "Token Budget", tokens)
        self._tier_name(lvl, name)
        tiers = dict(self.store.tiers())
        clients, totals = self.store.clients(), self.usage_totals()
        now = {u.client.id: u for u in core.summarize(clients, totals, tiers,
                                                        self.settings.warning)}
        tiers[lvl] = Tier(lvl, tiers[lvl].name if lvl in tiers else f"Tier {lvl}", limit)
        after = core.summarize(clients, totals, tiers, self.settings.warning)
        return [u for u in after
                if u.status == "exceeded" and now[u.client.id].status != "exceeded"]

    def set_tier_limit(self, actor: Actor, level: object, tokens: object,
                       name: str | None = None) -> Tier:
        self._require_admin(actor, "change tier limits")
        lvl = core.whole_number(f"tier {core.brief(str(level))}", "level", level)
        if lvl < 1:
            raise BadInput(f"tier {lvl}", "level", "must be 1 or more")
        limit = core.whole_number(f"tier {lvl}", "Token Budget", tokens)
        name = self._tier_name(lvl, name)
        self._before_lock()
        with self.store.transaction():
            tiers = self.store.tiers()
            old = tiers.get(lvl)
            tier = Tier(lvl, name or (old.name if old else f"Tier {lvl}"), limit)
            self.store.save_tier(tier)
            self._audit(actor, "tier_limit", None, asdict(old) if old else {}, asdict(tier))
            # a snapshot for each client whose budget is this tier's limit
            used = self.usage_totals()
            tiers[lvl] = tier
            for c in self.store.clients():
                if c.service_level == lvl and c.token_budget is None:
                    self.store.add_history(c.id, self.clock(), used.get(c.id, (0, 0, 0))[0],
                                           core.budget(c, tiers))
        return tier

    # the tokenizer -------------------------------------------------------------------
    def preview_encoding(self, encoding: str) -> list[tuple[Usage, Usage]]:
        """(now, after) for each client whose status would change under `encoding`:
        those that cross the warning threshold or the budget, either way."""
        if encoding not in ENCODINGS:
            raise BadInput("settings", "encoding",
                           f"unknown encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")
        now = self.usage_report()
        after = {u.client.id: u for u in core.summarize(
            [u.client for u in now], core.usage_by_client(self.costs(encoding=encoding)),
            self.store.tiers(), self.settings.warning)}
        return [(u, after[u.client.id]) for u in now if after[u.client.id].status != u.status]

    def set_encoding(self, actor: Actor, encoding: str) -> int:
        """Switches the tokenizer for everyone and recounts every attribute with it."""
        self._require_admin(actor, "change the tokenizer")
        changed = len(self.preview_encoding(encoding))
        before = self.encoding
        with self.store.transaction():
            self.store.save_setting("encoding", encoding)
            self._audit(actor, "encoding", None, {"encoding": before}, {"encoding": encoding})
        self.costs()  # recount now, not on the next page load
        with self.store.transaction():  # every client's usage moved: a history snapshot each
            for u in self.usage_report():
                self.store.add_history(u.client.id, self.clock(), u.usage, u.budget)
        return changed

    # data sets ---------------------------------------------------------------
    def load_data_set(self, actor: Actor, tiers: Iterable[Tier], clients: Iterable[Client],
                      attributes: Iterable[Attribute]) -> int:
        """Replaces everything (the demo data); the stored usage starts correct."""
        self._require_admin(actor, "load data sets")
        tiers, clients, attributes = list(tiers), list(clients), list(attributes)
        seen: set[str] = set()
        for c in clients:
            if c.id in seen:
                raise BadInput(f"client {c.id}", "id", "duplicate id")
            seen.add(c.id)
        client_ids, seen = seen, set()
        for a in attributes:
            if a.id in seen:
                raise BadInput(f"attribute {a.id}", "id", "duplicate id")
            if a.client_id not in client_ids:
                raise BadInput(f"attribute {a.id}", "Client", f"no such client {a.client_id}")
            seen.add(a.id)
        counts = self._count(attributes)
        per_client = core.usage_by_client(
            AttributeCost(a.id, a.client_id, a.name, a.active, counts[a.id]) for a in attributes)
        now = self.clock()
        clients = [replace(c, token_usage=per_client.get(c.id, (0, 0, 0))[0],
                           last_token_update=now) for c in clients]
        with self.store.transaction():
            self.store.replace_all(tiers, clients, attributes)
            self.store.save_counts(self.encoding, counts)
        return len(attributes)
