"""The scheduled pass carried out (`tokenbudget run-due`, the Admin page's button):
due resets, alert emails sent through SMTP, automatic deactivation and its undo, and
the policy that drives them. `budget.automation` decides what is due; this is where it
is done."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Literal

from .. import automation, core
from ..alerts import Email
from ..model import Actor, BadInput, Change, Deactivation, Notification, Usage
from ..smtp import SendFailed, SmtpConfig, send
from .resets import Resets


def _deliver(config: SmtpConfig, email: Email) -> tuple[Literal["sent", "failed"], str]:
    """(status, error) of one email. Recipients refused while others accepted it still
    count as sent: the message was delivered, and sending again would duplicate it."""
    if not email.to:
        return "failed", ("no recipient address: the client has no contact email and no "
                          "account manager address")
    try:
        refused = send(config, email)
    except SendFailed as e:
        return "failed", str(e)
    return "sent", f"refused by the server: {', '.join(refused)}" if refused else ""


class ScheduledPass(Resets):
    def automation_policy(self) -> automation.Policy:
        return automation.Policy.from_settings(self.settings.alerts, self.settings.deactivation,
                                              self.store.setting)

    def smtp(self) -> SmtpConfig | None:
        """The SMTP settings, or None when email is off (no SMTP_HOST)."""
        return SmtpConfig.from_settings(self.settings.smtp)

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
        resets leave. Only one pass runs at a time, wherever it was started (the store's
        pass lock): a second one says who runs and does nothing. Idempotent: a pass
        after another finds nothing due. A failed email is recorded as failed and is due
        again on the next pass."""
        self._require_admin(actor, "run the scheduled pass")
        now = self.clock()
        run_id = f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        with self.store.pass_lock() as got:
            if not got:
                holder = self.store.pass_holder()
                return automation.RunReport(now, run_id, (
                    "another scheduled pass is running"
                    + (f" ({holder.describe()})" if holder else "")
                    + "; this one did nothing",), skipped=True)
            return self._run_due(actor, now, run_id)

    def _run_due(self, actor: Actor, now: datetime, run_id: str) -> automation.RunReport:
        reset_ids = [r.client_id for r in self.plan_due().resets]
        lines = [r.message for r in self.reset_all(actor, reset_ids)] if reset_ids else []
        plan, config = self.plan_due(), self.smtp()
        holder = f"{socket.gethostname()} pid {os.getpid()} run {run_id}"
        sent, failed = (self._send_alerts(config, plan.alerts, now, holder) if config
                        else ([], 0))
        lines += [*sent, *plan.notes]
        for off in plan.deactivations:
            if self.auto_deactivate(actor, off.client_id, run_id, off.order):
                lines.append(f"{off.line().replace('deactivate', 'deactivated', 1)} "
                             f"(run {run_id})")
        return automation.RunReport(now, run_id, tuple(lines) or ("nothing was due",), failed)

    def _send_alerts(self, config: SmtpConfig, alerts: Iterable[automation.DueAlert],
                     now: datetime, holder: str) -> tuple[list[str], int]:
        """Claims each planned alert in the store under its keys, sends it, and records
        the outcome under every threshold it covers, which ends the claim; (one line per
        alert, how many failed). An alert sent or claimed by another pass meanwhile is
        left to it; a claim whose pass died is taken over after the claim lease. Only a
        pass that dies between sending and recording can so cause a second email."""
        lines, failed = [], 0
        lease = self.settings.alerts.claim_lease
        for alert in alerts:
            if not self.store.claim_alert(alert.client_id, alert.thresholds, alert.period,
                                          holder, lease):
                continue
            status, error = _deliver(config, alert.email)
            with self.store.transaction():
                for threshold in alert.thresholds:
                    self.store.save_notification(Notification(
                        alert.client_id, threshold, alert.period, status, now, alert.email.to,
                        alert.email.subject, error))
            if status == "sent":
                lines.append(alert.line().replace("email ", "emailed ", 1))
            else:
                failed += 1
                lines.append(f"{alert.line()}: FAILED, retried next pass: {error}")
        return lines, failed

    def notifications(self) -> list[Notification]:
        return self.store.notifications()

    # automatic deactivation and its undo ----------------------------------------------
    def auto_deactivate(self, actor: Actor, client_id: str, run_id: str,
                        order: str | None = None) -> list[Deactivation]:
        """Switches off a client's attributes in the policy's order until it fits its
        budget; a client within budget is never touched. Each attribute gets an audit
        entry with the reason and the run id, so the run can be undone."""
        self._require_admin(actor, "deactivate attributes")
        order = order or self.automation_policy().order
        self._before_lock(client_id)
        with self.store.transaction(client_id):
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
        self._before_lock()
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

    # the policy -------------------------------------------------------------------------
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
