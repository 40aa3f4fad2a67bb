"""Attribute edits: validated against the client's budget, saved in one transaction
with the check, audited; one at a time, several clients together, or one edit copied
to many clients (a batch)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from .. import audit, core
from ..model import (FIELDS, Actor, Attribute, BadInput, Change, FieldTokens, StaleWrite,
                     Validation)
from .base import ServiceBase


@dataclass(frozen=True)
class BatchResult:
    """One target of a batch edit: applied (or, in a preview, would be) or refused, why."""

    client_id: str
    attribute_id: str
    allowed: bool
    reason: str
    validation: Validation | None = None


class Edits(ServiceBase):
    def _check_change(self, change: Change, attrs: Mapping[str, Attribute]) -> None:
        for aid in {*change.fields, *change.active}:
            if aid not in attrs:
                raise BadInput(f"attribute {aid}", "id",
                               f"no such attribute of client {change.client_id}")
        for aid, active in change.active.items():
            if not isinstance(active, bool):
                raise BadInput(f"attribute {aid}", "Active",
                               f"must be true or false, got {active!r}")
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

    @staticmethod
    def _edited(change: Change, attrs: Mapping[str, Attribute]) -> dict[str, Attribute]:
        out = {}
        for aid in {*change.fields, *change.active}:
            a, texts = attrs[aid], change.fields.get(aid, {})
            out[aid] = replace(a, active=change.active.get(aid, a.active),
                               instructions=texts.get("Instructions", a.instructions),
                               examples=texts.get("Examples", a.examples),
                               signals=texts.get("Signals", a.signals))
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

    def preview_change(self, change: Change) -> tuple[Validation, dict[str, FieldTokens]]:
        """`validate`, and the tokens of each field of every attribute whose text the
        change edits, from the same count: what an editor shows while the user types."""
        validation, _, _, tokens = self._project(change)
        return validation, tokens

    def apply(self, actor: Actor, change: Change,
              expected_versions: Mapping[str, int] | None = None, *,
              action: str | None = None) -> Validation:
        """Validates and saves in one transaction: two concurrent changes cannot both
        pass the check against the same old usage. The audit entry is named `action`
        (a batch edit, an applied suggestion) or after what the change does."""
        self._require_admin(actor, "change attributes")
        self.validate(change)  # tokenizer and counts ready before the write lock
        with self.store.transaction(change.client_id):
            result, originals, edited, new_tokens = self._project(change)
            if not result.allowed:
                return result
            for aid, version in (expected_versions or {}).items():
                if aid in edited and edited[aid].version != version:
                    raise StaleWrite(f"attribute {aid} changed since it was read; reload")
            self.store.save_attributes(edited.values(), self.encoding, new_tokens)
            self._record_usage(self.client(change.client_id), result.projected, result.budget)
            self._audit(actor, action or audit.change_action(change), change.client_id,
                        *audit.attribute_states(originals, edited))
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
        for change in changes:  # tokenizer and counts ready before the write lock
            self.validate(change)
        with self.store.transaction():
            results = [self.validate(change) for change in changes]
            if all(r.allowed for r in results):
                results = [self.apply(actor, change) for change in changes]
        return results

    # batches: one edit to copies of a template in several clients -------------------
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
            return self.apply(actor, change, {aid: versions[aid]} if aid in versions else None,
                              action="attribute.batch_edit")

        return self._each_target(targets, fields, run)
