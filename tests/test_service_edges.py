"""The service at its edges (SQLite): the warning share from settings, zero as a
number, tiers that do not exist yet, partial recounts, duplicate ids, the policy
switch, resets of quarterly clients and of clients with no reset date, and the alert
state a manual reset clears."""

import socket
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from budget.model import (Actor, Attribute, BadInput, Change, Client, FieldTokens, NotAllowed,
                          Notification, StaleWrite, Tier)
from budget.service import BudgetService
from budget.settings import Settings
from budget.tokens import counter
from tests.support.factories import ADMIN, NOW, Clock, words


def statuses(svc):
    return {u.client.id: u.status for u in svc.usage_report()}


def test_the_warning_share_from_settings_decides_the_status(store_factory, small):
    assert statuses(small) == {"A": "warning", "B": "ok"}  # 80 / 100, 150 / 200
    half = store_factory.service(warning=0.5)
    assert statuses(half) == {"A": "warning", "B": "warning"}
    assert half.client_usage("B").status == "warning"
    assert half.preview_client("B", token_budget=400).status == "ok"  # 150 / 400
    assert half.preview_client("B", token_budget=250).status == "warning"  # 150 / 250
    assert small.preview_client("B", token_budget=180).status == "warning"
    strict = store_factory.service(warning=0.9)
    assert statuses(strict) == {"A": "ok", "B": "ok"}


def test_preview_client_shows_the_budget_after_the_change(small):
    u = small.preview_client("A", service_level=2)
    assert (u.budget, u.usage, u.status) == (200, 80, "ok")
    assert small.preview_client("A", topup=30).budget == 130
    assert small.client("A").service_level == 1  # a preview writes nothing


def test_an_over_budget_trim_is_saved_with_its_own_figures(small):
    small.set_budget_override(ADMIN, "A", 50)  # 80 / 50
    trim = small.apply(ADMIN, Change("A", fields={"a1": {"Instructions": words(35)}}))
    assert (trim.allowed, trim.current, trim.projected, trim.budget) == (True, 80, 75, 50)
    assert trim.reason == "over budget, but the change does not raise usage"
    c = small.client("A")
    assert c.token_usage == 75 and small.history("A")[-1][2:] == (75, 50)
    edit = small.audit()[-1]
    assert edit.action == "attribute.edit" and edit.client_id == "A"
    assert edit.before["a1"] == {"name": "Size", "instructions": words(40)}
    assert edit.after["a1"] == {"name": "Size", "instructions": words(35)}


def test_a_refused_change_writes_nothing(small):
    before = small.store.attributes("A")
    refused = small.apply(ADMIN, Change("A", fields={"a1": {"Instructions": words(61)}}))
    assert (refused.allowed, refused.current, refused.projected, refused.budget) == \
        (False, 80, 101, 100)
    assert small.store.attributes("A") == before and small.audit() == []
    assert small.client("A").token_usage == 80


def test_zero_is_a_budget_a_top_up_and_a_limit(small):
    assert small.set_budget_override(ADMIN, "A", 0).token_budget == 0
    assert small.client_usage("A").budget == 0
    assert small.set_budget_override(ADMIN, "A", "0").token_budget == 0
    assert small.grant_topup(ADMIN, "B", 0).topup == 0
    assert small.set_tier_limit(ADMIN, 2, 0) == Tier(2, "Professional", 0)
    assert small.client_usage("B").budget == 0
    assert small.preview_tier_limit(1, 0) == []  # A's override is already 0
    for call, field in [(lambda: small.set_budget_override(ADMIN, "A", -1), "Token Budget"),
                        (lambda: small.grant_topup(ADMIN, "A", "-5"), "Top-up"),
                        (lambda: small.set_tier_limit(ADMIN, 1, -1), "Token Budget")]:
        with pytest.raises(BadInput, match="must not be negative") as e:
            call()
        assert e.value.field == field


def test_whole_numbers_only_from_ints_and_their_text(small):
    assert small.set_budget_override(ADMIN, "A", " +120 ").token_budget == 120
    for bad in (True, 1.0, "1e3", "12 tokens", None.__class__):
        with pytest.raises(BadInput, match="client A: Top-up: must be a whole number"):
            small.grant_topup(ADMIN, "A", bad)
    assert small.client("A").topup == 0


def test_a_new_tier_level(small):
    created = small.set_tier_limit(ADMIN, 5, 50_000)
    assert created == Tier(5, "Tier 5", 50_000) and small.tiers()[5] == created
    entry = small.audit()[-1]
    assert (entry.action, entry.client_id, entry.before, entry.after) == \
        ("tier_limit", None, {}, {"level": 5, "name": "Tier 5", "tokens": 50_000})
    assert small.set_tier_limit(ADMIN, 6, 9, name="Custom") == Tier(6, "Custom", 9)
    assert small.set_tier_limit(ADMIN, 6, 10) == Tier(6, "Custom", 10)  # the name stays
    assert small.set_tier_limit(ADMIN, 1, 90, name="Starter") == Tier(1, "Starter", 90)
    assert small.client_usage("A").budget == 90
    assert small.preview_tier_limit(7, 10) == []  # a level nobody is on
    with pytest.raises(BadInput, match="tier 0: level: must be 1 or more"):
        small.set_tier_limit(ADMIN, 0, 10)
    moved = small.set_service_level(ADMIN, "A", 5)
    assert moved.service_level == 5 and small.client_usage("A").budget == 50_000


def test_a_tier_limit_records_a_snapshot_for_the_clients_on_it(small):
    small.set_budget_override(ADMIN, "B", 500)
    small.set_tier_limit(ADMIN, 1, 120)
    assert [h[2:] for h in small.history("A")] == [(80, 120)]
    small.set_tier_limit(ADMIN, 2, 300)  # B's budget is its override: no snapshot
    assert [h[2:] for h in small.history("B")] == [(150, 500)]


def test_service_level_must_be_in_the_tier_table(small):
    with pytest.raises(BadInput) as e:
        small.set_service_level(ADMIN, "A", 0)
    assert (e.value.record, e.value.field) == ("client A", "Service Level")
    assert e.value.problem == "level 0 is not in the tier table (1, 2)"


def test_a_partial_recount_keeps_the_counts_already_saved(small):
    """Texts edited since another encoding last counted them are recounted alone; the
    usage under that encoding is still the sum over every active attribute."""
    small.preview_encoding("cl100k_base")  # saves cl100k counts of every attribute
    small.apply(ADMIN, Change("A", fields={"a2": {"Examples": words(5)}}))  # a2's go stale
    texts = [t for a in small.attributes("A") if a.active
             for t in (a.instructions, a.examples, a.signals)]
    expected = sum(counter("cl100k_base").count_many(texts))
    costs = small.costs("A", encoding="cl100k_base")
    assert sorted(c.id for c in costs) == ["a1", "a2", "a3"]
    assert sum(c.total for c in costs if c.active) == expected
    assert {c.id: c.total for c in costs}["a2"] == 35


def test_a_dry_count_saves_nothing(store_factory, small):
    small.preview_encoding("chars4")
    small.apply(ADMIN, Change("A", fields={"a1": {"Instructions": words(3)}}))
    dry = small.costs("A", encoding="chars4", save=False)
    assert {c.id: c.total for c in dry}["a1"] == 4  # ceil(14 / 4)
    counted, uncounted = small.store.costs("chars4", "A")
    assert [a.id for a in uncounted] == ["a1"]


def test_duplicate_attribute_ids_are_refused_and_nothing_is_written(small):
    before = (small.usage_report(), small.store.attributes())
    with pytest.raises(BadInput) as e:
        small.load_data_set(ADMIN, [Tier(1, "Basic", 10)], [Client("A", "a", 1)],
                            [Attribute("x", "A", "n", True), Attribute("y", "A", "m", True),
                             Attribute("x", "A", "o", False)])
    assert (e.value.record, e.value.field, e.value.problem) == ("attribute x", "id",
                                                                "duplicate id")
    assert (small.usage_report(), small.store.attributes()) == before


def test_a_loaded_data_set_starts_with_the_right_stored_usage(small):
    n = small.load_data_set(ADMIN, [Tier(1, "Basic", 10)],
                            [Client("A", "a", 1), Client("E", "empty", 1)],
                            [Attribute("x", "A", "n", True, words(4)),
                             Attribute("y", "A", "m", False, words(3))])
    assert n == 2
    a, e = small.client("A"), small.client("E")
    assert (a.token_usage, e.token_usage) == (4, 0)
    assert a.last_token_update == NOW and not small.client_usage("A").drifted


def test_switching_automatic_deactivation_off_for_everyone(store_factory, small):
    svc = store_factory.service(names={"TOKENBUDGET_AUTO_DEACTIVATE": "on"})
    assert svc.automation_policy().auto_deactivate is True
    after = svc.set_auto_deactivate(ADMIN, None, False)
    assert after == {"enabled": False, "order": "newest"}
    assert svc.automation_policy().auto_deactivate is False
    assert svc.store.setting("auto_deactivate") == "off"
    entry = svc.audit()[-1]
    assert (entry.action, entry.before, entry.after) == (
        "auto_deactivate_policy", {"enabled": True, "order": "newest"}, after)
    assert svc.set_auto_deactivate(ADMIN, None, True) == {"enabled": True, "order": "newest"}
    assert svc.store.setting("auto_deactivate") == "on"
    # the order alone leaves the switch as it is
    assert svc.set_auto_deactivate(ADMIN, None, None, "largest") == {"enabled": True,
                                                                     "order": "largest"}
    assert svc.store.setting("auto_deactivate") == "on"


def test_the_policy_of_one_client(small):
    assert small.set_auto_deactivate(ADMIN, "A", True) == {"enabled": True}
    assert small.set_auto_deactivate(ADMIN, "A", False) == {"enabled": False}
    assert small.auto_deactivate_flags() == {"A": False}
    entry = small.audit()[-1]
    assert (entry.client_id, entry.before, entry.after) == ("A", {"enabled": True},
                                                            {"enabled": False})
    assert small.set_auto_deactivate(ADMIN, "A", None) == {"enabled": None}
    assert small.auto_deactivate_flags() == {}
    with pytest.raises(BadInput, match="client A: order: the order applies to everyone"):
        small.set_auto_deactivate(ADMIN, "A", True, "largest")
    with pytest.raises(BadInput, match="client Z: id"):
        small.set_auto_deactivate(ADMIN, "Z", True)


def test_a_mid_period_reset_clears_the_alert_state(small):
    small.store.save_notification(Notification("A", 80, date(2026, 11, 1), "sent", NOW,
                                                ("a@example.com",), "80% used"))
    assert [a.client_id for a in small.plan_due().alerts] == []  # sent this period
    result = small.reset(ADMIN, "A")
    assert result.changed and result.budget_reset_date == date(2026, 12, 1)
    assert small.store.sent_alerts() == set()
    (alert,) = small.plan_due().alerts
    assert (alert.client_id, alert.thresholds, alert.period) == ("A", (80,), date(2026, 11, 1))


def quarterly(small, reset_date):
    small.load_data_set(ADMIN, [Tier(1, "Basic", 100)],
                        [Client("Q", "Quarterly", 1, budget_reset_date=reset_date,
                                period_months=3)],
                        [Attribute("q1", "Q", "Size", True, words(90))])


def test_a_quarterly_client_is_keyed_by_its_quarter(small):
    quarterly(small, date(2027, 1, 1))
    (alert,) = small.plan_due().alerts
    assert (alert.thresholds, alert.period) == ((80, 90), date(2026, 10, 1))
    result = small.reset(ADMIN, "Q")
    q = small.client("Q")
    assert (q.budget_reset_date, q.last_reset_period) == (date(2027, 1, 1), date(2026, 10, 1))
    assert result.changed and not small.reset(ADMIN, "Q").changed


def test_a_quarterly_catch_up_counts_quarters(small):
    quarterly(small, date(2026, 5, 1))
    (due,) = small.plan_due().resets
    assert (due.due, due.boundaries, due.next_reset) == (date(2026, 5, 1), 3, date(2027, 2, 1))
    small.run_due(ADMIN)
    q = small.client("Q")
    assert (q.budget_reset_date, q.last_reset_period) == (date(2027, 2, 1), date(2026, 11, 1))


def test_a_client_with_no_reset_date_is_reset_on_the_first_of_the_month(small):
    small.store.save_client(replace(small.client("A"), budget_reset_date=None))
    (due,) = small.plan_due().resets
    assert (due.client_id, due.due, due.boundaries, due.next_reset) == \
        ("A", None, 1, date(2026, 12, 1))
    assert due.line() == "reset Alpha (A): no reset date yet; next reset 2026-12-01"
    report = small.run_due(Actor("run-due", "admin"))
    assert "Alpha reset: usage 80 tokens, next reset 2026-12-01" in report.lines
    a = small.client("A")
    assert (a.budget_reset_date, a.last_reset_period) == (date(2026, 12, 1), date(2026, 11, 1))
    assert small.plan_due().resets == ()


def test_a_reset_drops_the_top_up_and_records_what_it_did(small):
    small.grant_topup(ADMIN, "A", 40)
    assert small.client_usage("A").budget == 140
    small.clock.now = datetime(2026, 12, 2, tzinfo=UTC)
    result = small.reset(ADMIN, "A")
    assert result.message == "Alpha reset: usage 80 tokens, next reset 2027-01-01"
    a = small.client("A")
    assert (a.topup, a.budget_reset_date, a.last_reset_period) == (0, date(2027, 1, 1),
                                                                   date(2026, 12, 1))
    assert small.history("A")[-1][2:] == (80, 100)
    entry = small.audit()[-1]
    assert entry.before == {"token_usage": 80, "topup": 40,  # dates kept as ISO text
                            "budget_reset_date": "2026-12-01", "last_reset_period": None,
                            "anchor_day": None}
    assert entry.after == {"token_usage": 80, "topup": 0, "budget_reset_date": "2027-01-01",
                           "last_reset_period": "2026-12-01", "anchor_day": 1}
    again = small.reset(ADMIN, "A")
    assert not again.changed and again.usage == 80 and again.budget_reset_date == \
        date(2027, 1, 1)


def test_reset_all_and_a_selection(small):
    assert [r.client_id for r in small.reset_all(ADMIN)] == ["A", "B"]
    assert [r.changed for r in small.reset_all(ADMIN, ["B"])] == [False]


def test_counts_come_from_the_store_once_counted(small):
    """A second read needs no tokenizer: the counts were saved by the first."""
    first = small.costs("B")
    counted, uncounted = small.store.costs(small.encoding, "B")
    assert uncounted == [] and counted == first
    assert first[0].tokens == FieldTokens(150, 0, 0)


def test_clock_is_the_services(small):
    small.clock = Clock(datetime(2027, 1, 5, tzinfo=UTC))
    assert {r.client_id for r in small.plan_due().resets} == {"A", "B"}


# reads, checks and writes in detail ------------------------------------------------------
def test_the_default_clock_is_utc_to_the_second(store_factory, small):
    now = BudgetService(store_factory.open()).clock()
    assert now.utcoffset() == timedelta(0) and now.microsecond == 0


def test_from_settings_keeps_the_settings(store_factory, small):
    svc = BudgetService.from_settings(Settings(store=f"sqlite:///{store_factory.path}",
                                               warning=0.5))
    assert svc.settings.warning == 0.5 and svc.client_usage("B").status == "warning"


def test_the_audit_of_one_client(small):
    small.set_budget_override(ADMIN, "A", 90)
    small.grant_topup(ADMIN, "B", 5)
    assert [(e.action, e.client_id) for e in small.audit("A")] == [("budget_override", "A")]
    assert [(e.action, e.client_id) for e in small.audit("B")] == [("topup", "B")]
    assert len(small.audit()) == 2


def test_active_must_be_true_or_false(small):
    with pytest.raises(BadInput) as e:
        small.validate(Change("A", active={"a1": "yes"}))
    assert (e.value.record, e.value.field, e.value.problem) == (
        "attribute a1", "Active", "must be true or false, got 'yes'")


def test_text_exactly_at_the_character_limit_is_allowed(store_factory, small):
    svc = store_factory.service(max_text_chars=9)
    assert svc.validate(Change("A", fields={"a1": {"Signals": "lead lead"}})).allowed
    with pytest.raises(BadInput, match="attribute a1: Signals: 10 characters is over the "
                                       "limit of 9"):
        svc.validate(Change("A", fields={"a1": {"Signals": "lead lead."}}))


def test_expected_versions_guard_only_the_attributes_they_name(small):
    v = {a.id: a.version for a in small.attributes("A")}
    change = Change("A", fields={"a1": {"Signals": "lead"}})
    assert small.apply(ADMIN, change, {"a1": v["a1"], "a2": v["a2"] + 7}).allowed
    with pytest.raises(StaleWrite, match="attribute a1 changed since it was read"):
        small.apply(ADMIN, Change("A", fields={"a1": {"Signals": ""}}), {"a1": v["a1"]})
    assert [a.signals for a in small.attributes("A") if a.id == "a1"] == ["lead"]


def test_a_write_stamps_the_time_of_the_write(small):
    later = datetime(2026, 11, 26, 8, tzinfo=UTC)
    small.clock.now = later
    small.apply(ADMIN, Change("A", active={"a2": False}))
    assert small.client("A").last_token_update == later
    assert small.history("A")[-1] == ("A", later, 40, 100)


def test_changes_applied_together(small):
    both = small.apply_together(ADMIN, [Change("A", active={"a2": False}),
                                        Change("B", fields={"b1": {"Instructions": words(120)}})])
    assert [(r.allowed, r.current, r.projected, r.budget) for r in both] == [
        (True, 80, 40, 100), (True, 150, 120, 200)]
    assert (small.client_usage("A").usage, small.client_usage("B").usage) == (40, 120)
    assert [e.client_id for e in small.audit()] == ["A", "B"]
    refused = small.apply_together(ADMIN, [Change("A", active={"a2": True}),
                                           Change("B", active={"b1": False})])
    assert [(r.allowed, r.projected) for r in refused] == [(True, 80), (True, 0)]
    one_over = small.apply_together(ADMIN, [Change("A", active={"a3": True}),
                                            Change("B", active={"b1": False})])
    assert [(r.allowed, r.projected) for r in one_over] == [(False, 105), (True, 0)]
    assert small.client_usage("B").usage == 0  # from the second call; the third wrote nothing
    assert len(small.audit()) == 4


def test_stale_service_level_refused(small):
    v = small.client("A").version
    small.set_service_level(ADMIN, "A", 2, expected_version=v)
    with pytest.raises(StaleWrite):
        small.set_service_level(ADMIN, "A", 1, expected_version=v)
    entry = small.audit()[-1]
    assert (entry.action, entry.client_id) == ("service_level", "A")


def test_tier_input_names_the_level(small):
    for call in (lambda: small.set_tier_limit(ADMIN, "two", 10),
                 lambda: small.preview_tier_limit("two", 10)):
        with pytest.raises(BadInput) as e:
            call()
        assert (e.value.record, e.value.field) == ("tier two", "level")


def test_a_tier_limit_snapshots_a_client_with_no_attributes(small):
    small.load_data_set(ADMIN, [Tier(1, "Basic", 100)], [Client("E", "Empty", 1)], [])
    small.set_tier_limit(ADMIN, 1, 70)
    assert [h[2:] for h in small.history("E")] == [(0, 70)]


def test_preview_encoding_uses_the_warning_share(store_factory, small):
    half = store_factory.service(warning=0.5)
    changes = {now.client.id: (now.status, after.status)
               for now, after in half.preview_encoding("chars4")}
    assert changes == {"A": ("warning", "exceeded")}  # B is a warning either way
    strict = store_factory.service(warning=0.95)  # B: 150 and 188 of 200, both ok
    assert [(now.client.id, now.status, after.status)
            for now, after in strict.preview_encoding("chars4")] == [("A", "ok", "exceeded")]
    with pytest.raises(BadInput) as e:
        small.preview_encoding("gpt2")
    assert (e.value.record, e.value.field) == ("settings", "encoding")


def test_set_encoding_is_audited(small):
    small.set_encoding(ADMIN, "chars4")
    entry = small.audit()[-1]
    assert (entry.action, entry.client_id, entry.before, entry.after) == (
        "encoding", None, {"encoding": "o200k_base"}, {"encoding": "chars4"})


def test_preview_client_with_the_warning_share(store_factory, small):
    assert store_factory.service(warning=0.5).preview_client("B", token_budget=250).status \
        == "warning"
    assert small.preview_client("B", token_budget=250).status == "ok"


def test_freshly_counted_costs_keep_their_names(small):
    small.preview_encoding("chars4")
    small.apply(ADMIN, Change("A", fields={"a1": {"Signals": "lead"}}))
    assert {c.id: c.name for c in small.costs("A", encoding="chars4")} == {
        "a1": "Size", "a2": "Industry", "a3": "Intent"}


def test_a_dry_plan_writes_no_counts(small):
    small.apply(ADMIN, Change("A", fields={"a1": {"Signals": "lead"}}))
    small.store.save_setting("encoding", "chars4")  # nothing counted with chars4 yet
    small.plan_due()
    counted, uncounted = small.store.costs("chars4")
    assert counted == [] and len(uncounted) == 4


def test_a_plan_with_email_on_has_no_email_note(store_factory, small):
    svc = store_factory.service(names={"SMTP_HOST": "127.0.0.1", "SMTP_SECURITY": "none",
                                     "SMTP_SENDER": "b@example.com"})
    plan = svc.plan_due()
    assert [a.client_id for a in plan.alerts] == ["A"] and plan.notes == ()
    assert small.plan_due().notes[0].startswith("email is off")


def test_reset_results_name_the_client_and_usage(small):
    first = small.reset(ADMIN, "A")
    assert (first.client_id, first.changed, first.usage) == ("A", True, 80)
    again = small.reset(ADMIN, "A")
    assert (again.client_id, again.changed, again.usage) == ("A", False, 80)


# automatic deactivation and its undo --------------------------------------------------------
def over_tier(store_factory, order="largest"):
    """A on its tier's budget (no override), squeezed to 50: 80 / 50."""
    svc = store_factory.service(names={"TOKENBUDGET_AUTO_DEACTIVATE_ORDER": order})
    svc.set_tier_limit(ADMIN, 1, 50)
    return svc


def test_auto_deactivate_on_a_tier_budget_in_the_policys_order(store_factory, small):
    svc = over_tier(store_factory)
    (d,) = svc.auto_deactivate(ADMIN, "A", "run-1")
    assert (d.run_id, d.at, d.client_id, d.attribute_id, d.name, d.tokens) == (
        "run-1", NOW, "A", "a2", "Industry", 40)  # a tie with a1 (Size): by name
    assert d.reason == ("over budget at 80 / 50 tokens (160% used); largest first: Industry "
                        "(40 tokens) off, 40 / 50 tokens (80% used)")
    assert svc.deactivation_runs() == [d]
    entry = svc.audit()[-1]
    assert (entry.action, entry.client_id) == ("auto_deactivate", "A")
    assert entry.before == {"a2": {"active": True, "name": "Industry", "tokens": 40}}
    assert entry.after == {"a2": {"active": False}, "reason": d.reason, "run": "run-1",
                           "usage": 40, "budget": 50}
    assert svc.client("A").token_usage == 40 and svc.history("A")[-1][2:] == (40, 50)
    assert svc.auto_deactivate(ADMIN, "A", "run-2") == []  # it fits now


def test_restore_on_a_tier_budget_is_audited(store_factory, small):
    svc = over_tier(store_factory)
    svc.auto_deactivate(ADMIN, "A", "run-1")
    (now, after), = svc.preview_restore("run-1")
    assert (now.client.id, now.usage, after) == ("A", 40, 80)
    (back,) = svc.restore_run(ADMIN, "run-1")
    assert back.attribute_id == "a2" and svc.client("A").token_usage == 80
    entry = svc.audit()[-1]
    assert (entry.action, entry.client_id) == ("auto_restore", "A")
    assert entry.before == {"a2": {"active": False}}
    assert entry.after == {"a2": {"active": True}, "run": "run-1", "usage": 80}
    assert svc.history("A")[-1][2:] == (80, 50)
    with pytest.raises(BadInput, match="run run-1: run id: no such run, or it was already "
                                       "restored"):
        svc.preview_restore("run-1")


def test_restore_skips_what_was_switched_on_since(store_factory, small):
    svc = over_tier(store_factory)
    svc.set_tier_limit(ADMIN, 1, 10)  # 80 / 10: both a1 and a2 go
    assert [d.attribute_id for d in svc.auto_deactivate(ADMIN, "A", "run-1")] == ["a2", "a1"]
    svc.set_tier_limit(ADMIN, 1, 100)
    assert svc.apply(ADMIN, Change("A", active={"a2": True})).allowed  # by hand
    assert [d.attribute_id for d in svc.restore_run(ADMIN, "run-1")] == ["a1"]
    assert svc.audit()[-1].before == {"a1": {"active": False}}


def test_restore_touches_only_its_own_run_and_every_client_in_it(store_factory, small):
    svc = over_tier(store_factory)
    svc.set_tier_limit(ADMIN, 2, 100)  # B: 150 / 100
    svc.auto_deactivate(ADMIN, "A", "run-1")
    svc.auto_deactivate(ADMIN, "B", "run-1")
    svc.set_tier_limit(ADMIN, 1, 30)  # A: 40 / 30 again
    svc.auto_deactivate(ADMIN, "A", "run-2")
    assert sorted(d.attribute_id for d in svc.restore_run(ADMIN, "run-1")) == ["a2", "b1"]
    assert not next(a for a in svc.attributes("A") if a.id == "a1").active  # run-2's
    assert [d.attribute_id for d in svc.restore_run(ADMIN, "run-2")] == ["a1"]


# batch edits of template copies --------------------------------------------------------------
def test_preview_and_apply_a_batch(small):
    fields = {"Instructions": words(70)}
    targets = [("A", "a1"), ("B", "b1"), ("A", "zz")]
    preview = small.preview_batch(targets, fields)
    assert [(r.client_id, r.attribute_id, r.allowed) for r in preview] == [
        ("A", "a1", False), ("B", "b1", True), ("A", "zz", False)]
    assert preview[0].reason == "would use 110 of 100 tokens (10 over budget)"
    assert preview[1].reason == "150 → 70 of 200 tokens"
    assert (preview[1].validation.current, preview[1].validation.projected) == (150, 70)
    assert preview[2].reason == "attribute zz: id: no such attribute of client A"
    assert preview[2].validation is None
    assert small.client_usage("B").usage == 150  # a preview writes nothing
    stale = {"b1": small.attributes("B")[0].version + 1}
    applied = small.apply_batch(ADMIN, targets, fields, stale)
    assert [(r.attribute_id, r.allowed) for r in applied] == [("a1", False), ("b1", False),
                                                               ("zz", False)]
    assert applied[1].reason == "attribute b1 changed since it was read; reload"
    v = small.attributes("B")[0].version
    ok = small.apply_batch(ADMIN, [("B", "b1")], fields, {"b1": v})
    assert [(r.allowed, r.reason) for r in ok] == [(True, "150 → 70 of 200 tokens")]
    assert small.client_usage("B").usage == 70
    assert small.apply_batch(ADMIN, [("A", "a2")], {"Examples": ""})[0].allowed
    with pytest.raises(NotAllowed):
        small.apply_batch(Actor("v", "viewer"), [("B", "b1")], fields)


def test_attributes_by_id_across_clients(small):
    found = small.attributes_by_id(["b1", "a1", "b1"])
    assert sorted(found) == ["a1", "b1"] and found["b1"].client_id == "B"
    with pytest.raises(BadInput) as e:
        small.attributes_by_id(["a1", "zz"])
    assert (e.value.record, e.value.field, e.value.problem) == ("attribute zz", "id",
                                                                "no such attribute")


def test_data_version_moves_with_every_write(small):
    before = small.data_version()
    assert isinstance(before, str) and small.data_version() == before
    small.grant_topup(ADMIN, "A", 1)
    assert small.data_version() != before


def test_data_version_is_none_without_a_cheap_way_to_tell(small):
    class Plain:
        pass
    assert BudgetService(Plain()).data_version() is None


def test_settings_that_pages_ask_for(store_factory, small):
    assert small.llm_config() is None
    assert small.cost_assumptions().leads_per_month == 1_000
    svc = store_factory.service(names={"TOKENBUDGET_LEADS_PER_MONTH": "250",
                                     "TOKENBUDGET_LLM_URL": "http://127.0.0.1:9/v1",
                                     "TOKENBUDGET_LLM_MODEL": "m"})
    assert svc.cost_assumptions().leads_per_month == 250
    assert svc.llm_config().model == "m"


# the scheduled pass with email on --------------------------------------------------------------
class Inbox:
    def __init__(self) -> None:
        self.to: list[list[str]] = []

    async def handle_DATA(self, server, session, envelope):
        self.to.append(list(envelope.rcpt_tos))
        return "250 OK"


@pytest.fixture
def mailed(store_factory, tmp_path):
    """Alpha at 80 % and Beta at 94 % of their budgets, email on (a loopback server).
    Beta's name holds the word the report line rewords ("email" -> "emailed")."""
    from aiosmtpd.controller import Controller
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    svc = store_factory.service(names={"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port),
                                     "SMTP_SECURITY": "none", "SMTP_SENDER": "b@example.com"})
    svc.load_data_set(ADMIN, [Tier(1, "Basic", 100)],
                      [Client("A", "Alpha", 1, budget_reset_date=date(2026, 12, 1),
                              email="a@example.com"),
                       Client("B", "Beta email lists", 1, token_budget=160,
                              budget_reset_date=date(2026, 12, 1), email="b@example.com")],
                      [Attribute("a1", "A", "Size", True, words(80)),
                       Attribute("b1", "B", "Size", True, words(150))])
    yield svc, inbox
    controller.stop()


def test_run_due_reports_each_email_it_sent(mailed):
    svc, inbox = mailed
    report = svc.run_due(ADMIN)
    assert (report.now, report.failed) == (NOW, 0)
    assert report.lines == (
        "emailed 80% alert for Alpha (A) to a@example.com: 80 / 100 tokens (80% used)",
        "emailed 90% alert for Beta email lists (B) to b@example.com: 150 / 160 tokens "
        "(93% used)")
    assert inbox.to == [["a@example.com"], ["b@example.com"]]
    assert svc.run_due(ADMIN).lines == ("nothing was due",)


def test_an_alert_sent_meanwhile_by_another_pass_is_skipped_and_the_rest_sent(mailed,
                                                                           monkeypatch):
    svc, inbox = mailed
    planned, calls = svc.plan_due, []

    def plan_then_another_pass_sends_alphas():
        """The pass plans its alerts (after its resets, the second plan), then another
        pass sends Alpha's before this one gets to it."""
        plan = planned()
        calls.append(plan)
        if len(calls) == 2:
            assert [a.client_id for a in plan.alerts] == ["A", "B"]
            svc.store.save_notification(Notification("A", 80, date(2026, 11, 1), "sent",
                                                     NOW, ("a@example.com",), "80% used"))
        return plan

    monkeypatch.setattr(svc, "plan_due", plan_then_another_pass_sends_alphas)
    report = svc.run_due(ADMIN)
    assert report.lines == (
        "emailed 90% alert for Beta email lists (B) to b@example.com: 150 / 160 tokens "
        "(93% used)",)
    assert inbox.to == [["b@example.com"]]


def test_a_figure_no_store_holds_is_refused_by_the_service(small):
    """Found by the page sweep: 10^20 typed as an override reached SQLite and failed there
    ('Python int too large to convert to SQLite INTEGER', a red box on the Admin page)."""
    with pytest.raises(BadInput, match="Token Budget: must be from 0 to 9,223,372,036,854,775,807, "
                                       "got a 21-digit number"):
        small.set_budget_override(ADMIN, "A", str(10**20))
    with pytest.raises(BadInput, match="must be at most"):
        small.grant_topup(ADMIN, "A", 2**63)
    with pytest.raises(BadInput, match=r"got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx… \(200,000 char"):
        small.preview_client("A", topup="x" * 200_000)  # not echoed back in full
    assert small.client("A").token_budget is None and small.audit() == []


def test_a_tier_name_is_one_short_line(small):
    """Found by the page sweep: a 200,000-character tier name was saved and shown back."""
    with pytest.raises(BadInput, match="name: must be one line of at most 60 characters, "
                                       "got 200,000 characters"):
        small.preview_tier_limit(1, 100, "x" * 200_000)
    with pytest.raises(BadInput, match="name: must be a non-empty text"):
        small.set_tier_limit(ADMIN, 1, 100, " ")
    assert small.tiers()[1].name == "Basic" and small.audit() == []
    assert small.set_tier_limit(ADMIN, 1, 100, "基本 🚀").name == "基本 🚀"
