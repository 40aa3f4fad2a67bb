"""The one door to the data: every read the pages need and every write, checked.

Validation, role checks, the stored Token Usage copy, history snapshots and the
audit log all happen here, so no page, CLI command or API call can skip them."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timezone

from . import automation, core, llm, notify
from .analytics import CostAssumptions
from .model import (FIELDS, Actor, Attribute, AttributeCost, AuditEntry, BadInput, Change,
                    Client, Deactivation, FieldTokens, NotAllowed, Notification, StaleWrite,
                    Tier, Usage, Validation)
from .optimize import Suggestion
from .settings import Settings
from .stores import Store, open_store
from .tokens import ENCODINGS, Counter, counter

_FIELD_ATTR = {"Instructions": "instructions", "Examples": "examples", "Signals": "signals"}


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


@dataclass(frozen=True)
class ResetResult:
    client_id: str
    changed: bool
    usage: int
    budget_reset_date: date
    message: str


@dataclass(frozen=True)
class BatchResult:
    """One target of a batch edit: applied (or, in a preview, would be) or refused, why."""

    client_id: str
    attribute_id: str
    allowed: bool
    reason: str
    validation: Validation | None = None


def _int_tokens(record: str, field_name: str, value: object) -> int:
    """A whole, non-negative number of tokens from an int or its decimal text."""
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(record, field_name, f"must be a whole number, got {value!r}")
    if value < 0:
        raise BadInput(record, field_name, f"must not be negative, got {value}")
    return value


class BudgetService:
    def __init__(self, store: Store, settings: Settings | None = None,
                 clock: Callable[[], datetime] = _now) -> None:
        self.store = store
        self.settings = settings or Settings()
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> BudgetService:
        return cls(open_store(settings.store, settings.raw), settings)

    @property
    def store_label(self) -> str:
        """What the sidebar names the data by, e.g. "SQLite: data/tokenbudget.db"."""
        return self.store.label

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

    def _count(self, attributes: Iterable[Attribute],
               using: Counter | None = None) -> dict[str, FieldTokens]:
        attributes = list(attributes)
        texts = [t for a in attributes for t in (a.instructions, a.examples, a.signals)]
        n = (using or self.counter).count_many(texts)
        return {a.id: FieldTokens(*n[3 * i:3 * i + 3]) for i, a in enumerate(attributes)}

    def usage_report(self) -> list[Usage]:
        return core.summarize(self.store.clients(), self.costs(), self.store.tiers(),
                              self.settings.warning)

    def client(self, client_id: str) -> Client:
        client = self.store.client(client_id)
        if client is None:
            raise BadInput(f"client {client_id}", "id", "no such client")
        return client

    def client_usage(self, client_id: str) -> Usage:
        client = self.client(client_id)
        return core.summarize([client], self.costs(client_id), self.store.tiers(),
                              self.settings.warning)[0]

    def attributes(self, client_id: str) -> list[Attribute]:
        self.client(client_id)
        return self.store.attributes(client_id)

    def audit(self, client_id: str | None = None) -> list[AuditEntry]:
        return self.store.audit(client_id)

    def history(self, client_id: str | None = None) -> list[tuple[str, datetime, int, int]]:
        return self.store.history(client_id)

    # caching (issue 9): what the pages key their cached figures on -----------------
    def data_version(self) -> str | None:
        """A token that changes whenever the stored data may have, so cached figures are
        reused until then; None for a store with no cheap way to tell (asking Airtable
        would cost a request), and callers fall back to a time limit."""
        version = getattr(self.store, "data_version", None)
        return version() if callable(version) else None

    # validation --------------------------------------------------------------
    def _check_change(self, change: Change, attrs: Mapping[str, Attribute]) -> None:
        for aid in {*change.fields, *change.active}:
            if aid not in attrs:
                raise BadInput(f"attribute {aid}", "id",
                               f"no such attribute of client {change.client_id}")
        for aid, active in change.active.items():
            if not isinstance(active, bool):
                raise BadInput(f"attribute {aid}", "Active", f"must be true or false, got {active!r}")
        for aid, fields in change.fields.items():
            for name, text in fields.items():
                if name not in FIELDS:
                    raise BadInput(f"attribute {aid}", name,
                                   f"unknown field; use one of {', '.join(FIELDS)}")
                if not isinstance(text, str):
                    raise BadInput(f"attribute {aid}", name,
                                   f"must be text, got {type(text).__name__}")
                if len(text) > self.settings.max_text_chars:
                    raise BadInput(f"attribute {aid}", name,
                                   f"{len(text):,} characters is over the limit of "
                                   f"{self.settings.max_text_chars:,}")

    def _edited(self, change: Change, attrs: Mapping[str, Attribute]) -> dict[str, Attribute]:
        out = {}
        for aid in {*change.fields, *change.active}:
            a = attrs[aid]
            texts = {_FIELD_ATTR[k]: v for k, v in change.fields.get(aid, {}).items()}
            out[aid] = replace(a, active=change.active.get(aid, a.active), **texts)
        return out

    def _project(self, change: Change) -> tuple[Validation, dict[str, Attribute],
                                                dict[str, Attribute], dict[str, FieldTokens]]:
        """(validation, attributes before, attributes after, recounted tokens)."""
        client = self.client(change.client_id)
        attrs = {a.id: a for a in self.store.attributes(change.client_id)}
        self._check_change(change, attrs)
        edited = self._edited(change, attrs)
        new_tokens = self._count(edited[aid] for aid in change.fields)
        costs = self.costs(change.client_id)
        current = core.usage(costs, change.client_id)
        projected = core.projected_usage(costs, change, new_tokens)
        limit = core.budget(client, self.store.tiers())
        return core.validate(current, projected, limit), attrs, edited, new_tokens

    def validate(self, change: Change) -> Validation:
        """What applying `change` would do to the client's usage; writes nothing."""
        return self._project(change)[0]

    def apply(self, actor: Actor, change: Change,
              expected_versions: Mapping[str, int] | None = None) -> Validation:
        """Validates and saves in one transaction: two concurrent changes cannot both
        pass the check against the same old usage."""
        self._require_admin(actor, "change attributes")
        if change.fields:  # warm the count cache outside the write lock
            self.validate(change)
        with self.store.transaction():
            result, originals, edited, new_tokens = self._project(change)
            if not result.allowed:
                return result
            for aid, version in (expected_versions or {}).items():
                if aid in edited and edited[aid].version != version:
                    raise StaleWrite(f"attribute {aid} changed since it was read; reload")
            self.store.save_attributes(edited.values(), self.encoding, new_tokens)
            self._record_usage(self.client(change.client_id), result.projected, result.budget)
            self._audit(actor, "attribute.update", change.client_id,
                        {aid: self._attr_state(originals[aid]) for aid in edited},
                        {aid: self._attr_state(a) for aid, a in edited.items()})
        return result

    # by attribute id: for callers that know an attribute but not its client (HTTP API) --
    def attributes_by_id(self, ids: Sequence[str]) -> dict[str, Attribute]:
        """The attributes with these ids, whichever clients they belong to; an unknown
        id is bad input, so a caller never builds a change on a guess."""
        found = {a.id: a for a in self.store.attributes(ids=list(dict.fromkeys(ids)))}
        for aid in ids:
            if aid not in found:
                raise BadInput(f"attribute {aid}", "id", "no such attribute")
        return found

    def apply_together(self, actor: Actor, changes: Sequence[Change]) -> list[Validation]:
        """Saves several changes, one per client, in one transaction, or none of them:
        when any is refused, nothing is written and every result says why. The checks
        and the writes see the same usage, as in `apply`. Two changes of one client
        would each be checked against the usage before the other: merge them first."""
        self._require_admin(actor, "change attributes")
        seen: set[str] = set()
        for change in changes:
            if change.client_id in seen:
                raise BadInput(f"client {change.client_id}", "changes",
                               "more than one change for this client; merge them into one")
            seen.add(change.client_id)
        with self.store.transaction():
            results = [self.validate(change) for change in changes]
            if all(r.allowed for r in results):
                results = [self.apply(actor, change) for change in changes]
        return results

    # admin actions -------------------------------------------------------------
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

    def reset(self, actor: Actor, client_id: str) -> ResetResult:
        """DESIGN.md's reset; a second run in the same period changes nothing."""
        self._require_admin(actor, "reset budgets")
        with self.store.transaction():
            client = self.client(client_id)
            used = core.usage(self.costs(client_id), client_id)
            now = self.clock()
            nxt = core.next_boundary(client.budget_reset_date, now, client.period_months)
            period = core.period_start(client.budget_reset_date, now, client.period_months)
            if (client.last_reset_period == period and client.token_usage == used
                    and client.topup == 0 and client.budget_reset_date == nxt):
                return ResetResult(client_id, False, used, nxt,
                                   f"{client.name} was already reset for the period from "
                                   f"{period:%Y-%m-%d}; nothing changed")
            limit = core.budget(replace(client, topup=0), self.store.tiers())
            after = replace(client, topup=0, budget_reset_date=nxt, last_reset_period=period)
            self._record_usage(after, used, limit)
            self.store.clear_alerts(client_id, period)
            keys = ("token_usage", "topup", "budget_reset_date", "last_reset_period")
            self._audit(actor, "reset", client_id, self._client_state(client, keys),
                        {**self._client_state(after, keys), "token_usage": used})
        return ResetResult(client_id, True, used, nxt,
                           f"{client.name} reset: usage {used:,} tokens, next reset {nxt:%Y-%m-%d}")

    def reset_all(self, actor: Actor, client_ids: Iterable[str] | None = None
                  ) -> list[ResetResult]:
        """One transaction for the lot: on Airtable the changed clients go out 10 per
        request instead of one request each; a partial failure is reported by the store
        and a second run finishes the rest (clients already reset are no-ops)."""
        self._require_admin(actor, "reset budgets")
        with self.store.transaction():
            ids = (list(client_ids) if client_ids is not None
                   else [c.id for c in self.store.clients()])
            if len(ids) > 1:  # one read of every attribute, not one read per client;
                self.costs()  # a single client (the admin page's Reset) reads only its own
            return [self.reset(actor, cid) for cid in ids]

    def set_service_level(self, actor: Actor, client_id: str, level: object,
                          expected_version: int | None = None) -> Client:
        self._require_admin(actor, "change service levels")
        tiers = self.store.tiers()
        lvl = _int_tokens(f"client {client_id}", "Service Level", level)
        if lvl not in tiers:
            raise BadInput(f"client {client_id}", "Service Level",
                           f"level {lvl} is not in the tier table ({', '.join(map(str, tiers))})")
        return self._update_client(actor, "service_level", client_id, expected_version,
                                   service_level=lvl)

    def set_budget_override(self, actor: Actor, client_id: str, tokens: object | None,
                            expected_version: int | None = None) -> Client:
        self._require_admin(actor, "change budgets")
        value = None if tokens is None else _int_tokens(f"client {client_id}", "Token Budget",
                                                        tokens)
        return self._update_client(actor, "budget_override", client_id, expected_version,
                                   token_budget=value)

    def grant_topup(self, actor: Actor, client_id: str, tokens: object,
                    expected_version: int | None = None) -> Client:
        """Extra tokens on top of the budget until the next reset clears them."""
        self._require_admin(actor, "grant top-ups")
        value = _int_tokens(f"client {client_id}", "Top-up", tokens)
        return self._update_client(actor, "topup", client_id, expected_version, topup=value)

    def preview_encoding(self, encoding: str) -> list[tuple[Usage, Usage]]:
        """(now, after) for each client whose status would change under `encoding`:
        those that cross the warning threshold or the budget, either way."""
        if encoding not in ENCODINGS:
            raise BadInput("settings", "encoding",
                           f"unknown encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")
        now = self.usage_report()
        after = {u.client.id: u for u in core.summarize(
            [u.client for u in now], self.costs(encoding=encoding), self.store.tiers(),
            self.settings.warning)}
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

    # previews: what an admin action would do, before it is taken ---------------
    def preview_client(self, client_id: str, **changes: object) -> Usage:
        """The client's usage against the budget it would have after `changes`
        (service_level, token_budget, topup)."""
        client = replace(self.client(client_id), **changes)  # type: ignore[arg-type]
        return core.summarize([client], self.costs(client_id), self.store.tiers(),
                              self.settings.warning)[0]

    def preview_tier_limit(self, level: object, tokens: object) -> list[Usage]:
        """Clients that the new limit would put over budget (they are not over now)."""
        lvl = _int_tokens(f"tier {level}", "level", level)
        limit = _int_tokens(f"tier {lvl}", "Token Budget", tokens)
        tiers = dict(self.store.tiers())
        now = {u.client.id: u for u in self.usage_report()}
        tiers[lvl] = Tier(lvl, tiers[lvl].name if lvl in tiers else f"Tier {lvl}", limit)
        after = core.summarize([u.client for u in now.values()], self.costs(), tiers,
                               self.settings.warning)
        return [u for u in after
                if u.status == "exceeded" and now[u.client.id].status != "exceeded"]

    def _update_client(self, actor: Actor, action: str, client_id: str,
                       expected_version: int | None, **changes: object) -> Client:
        with self.store.transaction():
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

    def set_tier_limit(self, actor: Actor, level: object, tokens: object,
                       name: str | None = None) -> Tier:
        self._require_admin(actor, "change tier limits")
        lvl = _int_tokens(f"tier {level}", "level", level)
        if lvl < 1:
            raise BadInput(f"tier {level}", "level", "must be 1 or more")
        limit = _int_tokens(f"tier {lvl}", "Token Budget", tokens)
        with self.store.transaction():
            tiers = self.store.tiers()
            old = tiers.get(lvl)
            tier = Tier(lvl, name or (old.name if old else f"Tier {lvl}"), limit)
            self.store.save_tier(tier)
            self._audit(actor, "tier_limit", None, asdict(old) if old else {}, asdict(tier))
            # a snapshot for each client whose budget is this tier's limit
            used = core.usage_by_client(self.costs())
            tiers[lvl] = tier
            for c in self.store.clients():
                if c.service_level == lvl and c.token_budget is None:
                    self.store.add_history(c.id, self.clock(), used.get(c.id, (0, 0, 0))[0],
                                           core.budget(c, tiers))
        return tier

    @staticmethod
    def _client_state(client: Client, keys: Iterable[str]) -> dict:
        return {k: getattr(client, k) for k in keys}

    @staticmethod
    def _attr_state(a: Attribute) -> dict:
        return {"active": a.active, "instructions": a.instructions, "examples": a.examples,
                "signals": a.signals}

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

    # analytics and optimisation (issue 7) ---------------------------------------------
    def all_attributes(self) -> list[Attribute]:
        """Every client's attributes with their texts: copies of one template are found
        across clients, and savings are summed over all of them."""
        return self.store.attributes()

    def cost_assumptions(self) -> CostAssumptions:
        """Leads per month, price per million tokens and revenue per level, from settings."""
        return CostAssumptions.from_settings(self.settings.raw)

    def llm_config(self) -> llm.LLMConfig | None:
        """The model endpoint for optional rewrites; None when none is configured."""
        return llm.LLMConfig.from_settings(self.settings.raw)

    def rewrite_suggestion(self, client_id: str, attribute_id: str,
                           field_name: str) -> Suggestion | None:
        """The configured model's shorter version of one field, measured with the real
        counter; None when it saves nothing. Applying it goes through `apply` as usual."""
        config = self.llm_config()
        if config is None:
            raise BadInput("settings", "TOKENBUDGET_LLM_URL", "no model endpoint is configured")
        if field_name not in FIELDS:
            raise BadInput(f"attribute {attribute_id}", field_name,
                           f"unknown field; use one of {', '.join(FIELDS)}")
        attr = next((a for a in self.attributes(client_id) if a.id == attribute_id), None)
        if attr is None:
            raise BadInput(f"attribute {attribute_id}", "id",
                           f"no such attribute of client {client_id}")
        old = attr.text(field_name)
        new = llm.rewrite(old, config)
        before, after = self.counter.count_many([old, new])
        if after >= before:
            return None
        return Suggestion("rewrite", attr.id, attr.name, field_name,
                          f"{field_name} of '{attr.name}' rewritten by {config.model}; read it "
                          "before applying: a model may drop a rule", before - after,
                          {attr.id: {field_name: new}}, {attr.id: {field_name: old}})

    def _each_target(self, targets: Iterable[tuple[str, str]], fields: Mapping[str, str],
                     run: Callable[[Change], Validation]) -> list[BatchResult]:
        out = []
        for client_id, attribute_id in targets:
            try:
                v = run(Change(client_id, {attribute_id: dict(fields)}))
            except (BadInput, StaleWrite) as e:
                out.append(BatchResult(client_id, attribute_id, False, str(e)))
                continue
            reason = v.reason or (f"{v.current:,} → {v.projected:,} of {v.budget:,} tokens")
            out.append(BatchResult(client_id, attribute_id, v.allowed, reason, v))
        return out

    def preview_batch(self, targets: Iterable[tuple[str, str]],
                      fields: Mapping[str, str]) -> list[BatchResult]:
        """What setting `fields` on each (client id, attribute id) would do, each against
        its own client's budget; writes nothing."""
        return self._each_target(targets, fields, self.validate)

    def apply_batch(self, actor: Actor, targets: Iterable[tuple[str, str]],
                    fields: Mapping[str, str],
                    expected_versions: Mapping[str, int] | None = None) -> list[BatchResult]:
        """One edit applied to copies of a template in several clients. Each target is its
        own validated, audited change: a refused or stale one is reported with its reason
        and does not stop the others."""
        self._require_admin(actor, "change attributes")
        versions = expected_versions or {}

        def run(change: Change) -> Validation:
            aid = next(iter(change.fields))
            return self.apply(actor, change, {aid: versions[aid]} if aid in versions else None)

        return self._each_target(targets, fields, run)

    # automation (issue 6): the scheduled pass, email alerts, automatic deactivation -----
    def automation_policy(self) -> automation.Policy:
        return automation.Policy.from_settings(self.settings.raw, self.store.setting)

    def smtp(self) -> notify.SmtpConfig | None:
        """The SMTP settings, or None when email is off (no SMTP_HOST)."""
        return notify.SmtpConfig.from_settings(self.settings.raw)

    def _activations(self, client_id: str) -> dict[str, datetime]:
        return automation.activation_times(self.store.audit(client_id))

    def plan_due(self) -> automation.Plan:
        """What `run_due` would do at the service's clock; reads only, so a dry run
        writes nothing (not even the token-count cache)."""
        return automation.plan(
            self.clock(), self.store.clients(), self.costs(save=False), self.store.tiers(),
            self.automation_policy(), self.store.sent_alerts(),
            self.store.auto_deactivate_flags(), self._activations, self.smtp() is not None,
            self.settings.warning)

    def run_due(self, actor: Actor) -> automation.RunReport:
        """One pass: due resets, then alerts and automatic deactivation on the state the
        resets leave. Idempotent: a second pass at the same time finds nothing due. A
        failed email is recorded as failed and is due again on the next pass."""
        self._require_admin(actor, "run the scheduled pass")
        now = self.clock()
        run_id = f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        due = [r.client_id for r in self.plan_due().resets]
        lines = [r.message for r in self.reset_all(actor, due)] if due else []
        plan, smtp, failed = self.plan_due(), self.smtp(), 0
        for alert in plan.alerts if smtp else ():
            if {(alert.client_id, t, alert.period) for t in alert.thresholds} <= \
                    self.store.sent_alerts():
                continue  # another pass (the Admin page's button) sent it meanwhile
            status, error = "sent", ""
            try:
                if not alert.email.to:
                    raise notify.SendFailed("no recipient address: the client has no contact "
                                            "email and no account manager address")
                refused = notify.send(smtp, alert.email)
                if refused:
                    error = f"refused by the server: {', '.join(refused)}"
            except notify.SendFailed as e:
                status, error, failed = "failed", str(e), failed + 1
            with self.store.transaction():
                for threshold in alert.thresholds:
                    self.store.save_notification(Notification(
                        alert.client_id, threshold, alert.period, status, now, alert.email.to,
                        alert.email.subject, error))
            lines.append(alert.line().replace("email ", "emailed ", 1) if status == "sent"
                         else f"{alert.line()}: FAILED, retried next pass: {error}")
        lines += plan.notes
        for due in plan.deactivations:
            done = self.auto_deactivate(actor, due.client_id, run_id, due.order)
            if done:
                lines.append(f"{due.line().replace('deactivate', 'deactivated', 1)} "
                             f"(run {run_id})")
        return automation.RunReport(now, run_id, tuple(lines) or ("nothing was due",), failed)

    def auto_deactivate(self, actor: Actor, client_id: str, run_id: str,
                        order: str | None = None) -> list[Deactivation]:
        """Switches off a client's attributes in the policy's order until it fits its
        budget; a client within budget is never touched. Each attribute gets an audit
        entry with the reason and the run id, so the run can be undone."""
        self._require_admin(actor, "deactivate attributes")
        order = order or self.automation_policy().order
        with self.store.transaction():
            client = self.client(client_id)
            costs = self.costs(client_id)
            used = core.usage(costs, client_id)
            limit = core.budget(client, self.store.tiers())
            chosen = automation.choose_deactivations(costs, used, limit, order,
                                                     self._activations(client_id))
            if not chosen:
                return []
            attrs = {a.id: a for a in self.store.attributes(client_id)}
            self.store.save_attributes([replace(attrs[c.id], active=False) for c in chosen],
                                       self.encoding, {})
            after = used - sum(c.total for c in chosen)
            self._record_usage(client, after, limit)
            now, running, out = self.clock(), used, []
            for c in chosen:
                running -= c.total
                reason = (f"over budget at {core.format_usage(used, limit)}; "
                          f"{automation.ORDERS[order]}: {c.name} ({c.total:,} tokens) off, "
                          f"{core.format_usage(running, limit)}")
                d = Deactivation(run_id, now, client_id, c.id, c.name, c.total, reason)
                self.store.add_deactivation(d)
                self._audit(actor, "auto_deactivate", client_id,
                            {c.id: {"active": True, "name": c.name, "tokens": c.total}},
                            {c.id: {"active": False}, "reason": reason, "run": run_id,
                             "usage": running, "budget": limit})
                out.append(d)
        return out

    def deactivation_runs(self) -> list[Deactivation]:
        return self.store.deactivations()

    def preview_restore(self, run_id: str) -> list[tuple[Usage, int]]:
        """(usage now, usage after the restore) of each client the run touched."""
        out = []
        for cid, items in self._restorable(run_id).items():
            now = self.client_usage(cid)
            back = {d.attribute_id for d in items}
            out.append((now, now.usage + sum(c.total for c in self.costs(cid)
                                             if c.id in back and not c.active)))
        return out

    def _restorable(self, run_id: str) -> dict[str, list[Deactivation]]:
        items = [d for d in self.store.deactivations(run_id) if d.restored_at is None]
        if not items:
            raise BadInput(f"run {run_id}", "run id", "no such run, or it was already restored")
        by_client: dict[str, list[Deactivation]] = {}
        for d in items:
            by_client.setdefault(d.client_id, []).append(d)
        return by_client

    def restore_run(self, actor: Actor, run_id: str) -> list[Deactivation]:
        """Switches back on exactly what the run switched off (those still off). An undo,
        so not checked against the budget: the admin page shows the usage it leads to,
        and the next pass deactivates again if the client is still over and the policy
        still on."""
        self._require_admin(actor, "restore deactivated attributes")
        restored = []
        with self.store.transaction():
            for cid, items in self._restorable(run_id).items():
                client = self.client(cid)
                costs = self.costs(cid)
                attrs = {a.id: a for a in self.store.attributes(cid)}
                back = [attrs[d.attribute_id] for d in items
                        if d.attribute_id in attrs and not attrs[d.attribute_id].active]
                change = Change(cid, active={a.id: True for a in back})
                used = core.projected_usage(costs, change, {})
                if back:
                    self.store.save_attributes([replace(a, active=True) for a in back],
                                               self.encoding, {})
                    self._record_usage(client, used, core.budget(client, self.store.tiers()))
                    self._audit(actor, "auto_restore", cid,
                                {a.id: {"active": False} for a in back},
                                {**{a.id: {"active": True} for a in back}, "run": run_id,
                                 "usage": used})
                self.store.mark_restored(items, self.clock())
                restored += [d for d in items if d.attribute_id in change.active]
        return restored

    def notifications(self) -> list[Notification]:
        return self.store.notifications()

    def auto_deactivate_flags(self) -> dict[str, bool]:
        return self.store.auto_deactivate_flags()

    def set_auto_deactivate(self, actor: Actor, client_id: str | None,
                            enabled: bool | None, order: str | None = None) -> dict:
        """The policy: for everyone (client_id None; `order` too) kept with the data,
        or for one client (enabled None: follow the global choice again). Audited;
        returns the state after."""
        self._require_admin(actor, "change the deactivation policy")
        if order is not None and order not in automation.ORDERS:
            raise BadInput("policy", "order", f"{order!r} is not one of "
                                              f"{', '.join(automation.ORDERS)}")
        if order is not None and client_id is not None:
            raise BadInput(f"client {client_id}", "order", "the order applies to everyone")
        with self.store.transaction():
            policy = self.automation_policy()
            if client_id is None:
                before = {"enabled": policy.auto_deactivate, "order": policy.order}
                if enabled is not None:
                    self.store.save_setting("auto_deactivate", "on" if enabled else "off")
                if order is not None:
                    self.store.save_setting("auto_deactivate_order", order)
                after = {"enabled": policy.auto_deactivate if enabled is None else enabled,
                         "order": order or policy.order}
            else:
                self.client(client_id)
                before = {"enabled": self.store.auto_deactivate_flags().get(client_id)}
                self.store.save_auto_deactivate_flag(client_id, enabled)
                after = {"enabled": enabled}
            self._audit(actor, "auto_deactivate_policy", client_id, before, after)
        return after
