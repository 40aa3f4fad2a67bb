"""The service at its edges (SQLite): the warning share from settings, zero as a
number, tiers that do not exist yet, partial recounts, duplicate ids, the policy
switch, resets of quarterly clients and of clients with no reset date, and the alert
state a manual reset clears."""

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from budget.model import (Actor, Attribute, BadInput, Change, Client, FieldTokens,
                          Notification, Tier)
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
    assert edit.action == "attribute.update" and edit.client_id == "A"
    assert edit.before["a1"]["instructions"] == words(40)
    assert edit.after["a1"] == {"active": True, "instructions": words(35), "examples": "",
                                "signals": ""}


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
