"""Budget resets: one client's, or many in one transaction (the admin page, the CLI,
the scheduled pass). A reset recomputes usage, writes the stored copy and a history
snapshot, clears the period's alert state and any top-up, and moves the reset date to
the next period boundary, keeping the client's anchor day so that a date clamped to a
short month's end does not move the boundaries after it; a second run in the same period
changes nothing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date

from .. import core
from ..model import Actor
from .base import ServiceBase


@dataclass(frozen=True)
class ResetResult:
    """What a reset did, with the figures before it so that a caller can say exactly
    what moved: the stored usage, the reset date, the top-up (the period's alert state
    is cleared whenever `changed`)."""

    client_id: str
    changed: bool
    usage: int
    budget_reset_date: date
    message: str
    usage_before: int
    reset_date_before: date | None
    topup_before: int
    period_start: date


class Resets(ServiceBase):
    def reset(self, actor: Actor, client_id: str) -> ResetResult:
        """Resets one client; a second run in the same period changes nothing."""
        self._require_admin(actor, "reset budgets")
        self._before_lock(client_id)
        with self.store.transaction(client_id):
            client = self.client(client_id)
            used = core.usage(self.costs(client_id), client_id)
            now = self.clock()
            period, nxt = core.client_period(client, now)
            if (client.last_reset_period == period and client.token_usage == used
                    and client.topup == 0 and client.budget_reset_date == nxt):
                return ResetResult(client_id, False, used, nxt,
                                   f"{client.name} was already reset for the period from "
                                   f"{period:%Y-%m-%d}; nothing changed",
                                   client.token_usage, client.budget_reset_date, client.topup,
                                   period)
            limit = core.budget(replace(client, topup=0), self.store.tiers())
            after = replace(client, topup=0, budget_reset_date=nxt, last_reset_period=period,
                            anchor_day=core.anchor_of(client))
            self._record_usage(after, used, limit)
            self.store.clear_alerts(client_id, period)
            keys = ("token_usage", "topup", "budget_reset_date", "last_reset_period",
                    "anchor_day")
            self._audit(actor, "reset", client_id, self._client_state(client, keys),
                        {**self._client_state(after, keys), "token_usage": used})
        return ResetResult(client_id, True, used, nxt,
                           f"{client.name} reset: usage {used:,} tokens, next reset {nxt:%Y-%m-%d}",
                           client.token_usage, client.budget_reset_date, client.topup, period)

    def reset_all(self, actor: Actor, client_ids: Iterable[str] | None = None
                  ) -> list[ResetResult]:
        """One transaction for the lot: on Airtable the changed clients go out 10 per
        request instead of one request each; a partial failure is reported by the store
        and a second run finishes the rest (clients already reset are no-ops)."""
        self._require_admin(actor, "reset budgets")
        ids = list(client_ids) if client_ids is not None else None
        self._before_lock(ids[0] if ids is not None and len(ids) == 1 else None)
        with self.store.transaction():
            if ids is None:
                ids = [c.id for c in self.store.clients()]
            if len(ids) > 1:  # one read of every attribute, not one read per client;
                self.costs()  # a single client (the admin page's Reset) reads only its own
            return [self.reset(actor, cid) for cid in ids]
