"""The budget arithmetic at its edges: the warning share, the figures of an allowed
over-budget change, period boundaries (no reset date yet, quarterly, UTC offsets) and
percentages of an empty budget. Each case pins a result a plausible slip would change."""

import time
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from budget import core
from budget.model import AttributeCost, BadInput, Change, Client, FieldTokens, Tier

TIERS = {1: Tier(1, "Basic", 100), 2: Tier(2, "Professional", 200)}
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def cost(aid: str, client: str, active: bool, tokens: int) -> AttributeCost:
    return AttributeCost(aid, client, aid, active, FieldTokens(tokens, 0, 0))


def test_usage_by_client_counts_attributes_and_active_ones():
    costs = [cost("a1", "A", True, 10), cost("a2", "A", False, 5), cost("a3", "A", True, 7),
             cost("b1", "B", False, 3)]
    assert core.usage_by_client(costs) == {"A": (17, 3, 2), "B": (0, 1, 0)}


def test_summary_uses_the_warning_share_it_is_given():
    clients = [Client("A", "Alpha", 1), Client("B", "Beta", 2), Client("C", "Empty", 1)]
    costs = [cost("a1", "A", True, 60), cost("a2", "A", False, 30), cost("b1", "B", True, 100)]
    totals = core.usage_by_client(costs)
    default, half = core.summarize(clients, totals, TIERS), core.summarize(clients, totals,
                                                                           TIERS, 0.5)
    assert [u.status for u in default] == ["ok", "ok", "ok"]
    assert [u.status for u in half] == ["warning", "warning", "ok"]
    a, b, c = half
    assert (a.client.id, a.budget, a.usage, a.attributes, a.active_attributes) == \
        ("A", 100, 60, 2, 1)
    assert (b.budget, b.usage, b.attributes, b.active_attributes) == (200, 100, 1, 1)
    assert (c.usage, c.attributes, c.active_attributes) == (0, 0, 0)


def test_status_at_the_warning_share_and_at_the_budget():
    assert core.status(80, 100) == "warning" and core.status(79, 100) == "ok"
    assert core.status(100, 100) == "warning" and core.status(101, 100) == "exceeded"
    assert core.status(49, 100, 0.5) == "ok" and core.status(50, 100, 0.5) == "warning"
    assert core.status(1, 0) == "exceeded"


def test_budget_names_the_unknown_level():
    with pytest.raises(BadInput) as e:
        core.budget(Client("X", "X", 9), TIERS)
    assert (e.value.record, e.value.field) == ("client X", "Service Level")
    assert "level 9" in e.value.problem
    assert core.budget(Client("X", "X", 9, token_budget=50, topup=5), TIERS) == 55


def test_projected_usage_keeps_the_attributes_a_change_does_not_touch():
    costs = [cost("a1", "A", True, 10), cost("a2", "A", True, 20), cost("a3", "A", False, 40),
             cost("b1", "B", True, 1000)]
    edit = Change("A", fields={"a1": {"Instructions": "x"}})
    assert core.projected_usage(costs, edit, {"a1": FieldTokens(3, 1, 1)}) == 25
    assert core.projected_usage(costs, Change("A", active={"a3": True, "a1": False}), {}) == 60
    # a recount of an inactive attribute does not count until it is switched on
    assert core.projected_usage(costs, Change("A"), {"a3": FieldTokens(1, 0, 0)}) == 30


def test_an_over_budget_trim_is_allowed_with_its_own_figures():
    trim = core.validate(1500, 1200, 1000)
    assert (trim.allowed, trim.current, trim.projected, trim.budget) == (True, 1500, 1200, 1000)
    assert trim.reason == "over budget, but the change does not raise usage"
    assert (trim.delta, trim.over_by) == (-300, 200)
    fits = core.validate(900, 1000, 1000)
    assert (fits.allowed, fits.current, fits.projected, fits.budget, fits.reason) == \
        (True, 900, 1000, 1000, "")
    refused = core.validate(900, 1250, 1000)
    assert (refused.allowed, refused.current, refused.projected, refused.budget) == \
        (False, 900, 1250, 1000)
    assert refused.reason == "would use 1,250 of 1,000 tokens (250 over budget)"


def test_as_utc_converts_an_offset_and_takes_naive_time_as_utc():
    plus2 = datetime(2026, 12, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert core.as_utc(plus2) == datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    assert core.as_utc(plus2).tzinfo == UTC
    assert core.as_utc(datetime(2026, 12, 1, 1, 30)) == \
        datetime(2026, 12, 1, 1, 30, tzinfo=UTC)


def test_as_utc_does_not_depend_on_the_machines_time_zone(monkeypatch):
    monkeypatch.setenv("TZ", "JST-09")  # a machine in Tokyo (POSIX: UTC+9)
    time.tzset()
    try:
        assert core.as_utc(datetime(2026, 12, 1, 1, 30)) == \
            datetime(2026, 12, 1, 1, 30, tzinfo=UTC)
        plus2 = datetime(2026, 12, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
        assert core.as_utc(plus2).utcoffset() == timedelta(0)
        assert core.next_boundary(date(2026, 12, 1), datetime(2026, 11, 30, 23, 30)) == \
            date(2026, 12, 1)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_boundary_near_midnight_follows_the_utc_day():
    anchor = date(2026, 12, 1)
    before = datetime(2026, 12, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))  # Nov 30 UTC
    after = datetime(2026, 11, 30, 23, 30, tzinfo=timezone(timedelta(hours=-2)))  # Dec 1 UTC
    assert core.next_boundary(anchor, before) == date(2026, 12, 1)
    assert core.next_boundary(anchor, after) == date(2027, 1, 1)
    assert core.period_start(anchor, before) == date(2026, 11, 1)
    assert core.period_start(anchor, after) == date(2026, 12, 1)


def test_no_reset_date_anchors_on_the_first_of_the_month():
    assert core.next_boundary(None, NOW) == date(2026, 12, 1)
    assert core.period_start(None, NOW) == date(2026, 11, 1)
    assert core.next_boundary(None, NOW, 3) == date(2027, 2, 1)
    assert core.period_start(None, NOW, 3) == date(2026, 11, 1)
    first = datetime(2026, 11, 1, tzinfo=UTC)
    assert core.next_boundary(None, first) == date(2026, 12, 1)
    assert core.next_boundary(None, datetime(2026, 12, 31, 23, tzinfo=UTC)) == \
        date(2027, 1, 1)


@pytest.mark.parametrize("anchor, now, months, expected", [
    (date(2026, 12, 1), NOW, 1, date(2026, 12, 1)),  # an anchor ahead of now
    (date(2027, 6, 1), NOW, 1, date(2026, 12, 1)),  # far ahead: still the next one
    (date(2027, 6, 1), NOW, 3, date(2026, 12, 1)),
    (date(2026, 11, 26), NOW, 1, date(2026, 11, 26)),  # later this month
    (date(2026, 11, 25), NOW, 1, date(2026, 12, 25)),  # today: strictly after
    (date(2026, 10, 25), NOW, 1, date(2026, 12, 25)),
    (date(2025, 11, 24), NOW, 1, date(2026, 12, 24)),
    (date(2025, 11, 26), NOW, 1, date(2026, 11, 26)),
    (date(2026, 1, 15), NOW, 3, date(2027, 1, 15)),  # quarterly: Jan, Apr, Jul, Oct, Jan
    (date(2026, 2, 26), NOW, 3, date(2026, 11, 26)),
    (date(2026, 8, 31), NOW, 3, date(2026, 11, 30)),  # month-end, clamped
    (date(2023, 3, 31), NOW, 12, date(2027, 3, 31)),
    (date(2024, 2, 29), NOW, 12, date(2027, 2, 28)),  # leap-day anchor
    (date(2026, 1, 30), datetime(2026, 2, 10, tzinfo=UTC), 1, date(2026, 2, 28)),
    (date(2026, 1, 30), datetime(2026, 2, 28, tzinfo=UTC), 1, date(2026, 3, 30)),
])
def test_next_boundary(anchor, now, months, expected):
    assert core.next_boundary(anchor, now, months) == expected
    start = core.period_start(anchor, now, months)
    assert start <= now.date() < expected


@pytest.mark.parametrize("anchor, months, expected", [
    (date(2027, 1, 1), 3, date(2026, 10, 1)),  # a quarterly period opened in October
    (date(2027, 1, 1), 1, date(2026, 11, 1)),
    (date(2026, 8, 31), 3, date(2026, 8, 31)),
    (date(2026, 1, 31), 1, date(2026, 10, 31)),  # month-end: Oct 31, not Oct 30
    (date(2026, 11, 30), 1, date(2026, 10, 30)),  # no kept anchor: the date's own day
])
def test_period_start(anchor, months, expected):
    assert core.period_start(anchor, NOW, months) == expected


def test_a_period_shorter_than_a_month_is_refused():
    for months in (0, -1):
        with pytest.raises(BadInput) as e:
            core.next_boundary(date(2026, 1, 1), NOW, months)
        assert (e.value.record, e.value.field) == ("period", "months")
        assert str(months) in e.value.problem
    assert core.next_boundary(date(2026, 1, 1), NOW, 1) == date(2026, 12, 1)


@pytest.mark.parametrize("used, limit, text", [
    (1250, 5000, "1,250 / 5,000 tokens (25% used)"),
    (0, 3000, "0 / 3,000 tokens (0% used)"),
    (0, 0, "0 / 0 tokens (0% used)"),  # an empty budget: no division by zero
    (102, 1000, "102 / 1,000 tokens (10% used)"),
    (1234, 10000, "1,234 / 10,000 tokens (12% used)"),
    (55, 1000, "55 / 1,000 tokens (5% used)"),  # whole percent, rounded down
    (5, 1000, "5 / 1,000 tokens (0% used)"),
    (20, 1000, "20 / 1,000 tokens (2% used)"),
    (1000, 1000, "1,000 / 1,000 tokens (100% used)"),
    (3700, 3000, "3,700 / 3,000 tokens (123% used)"),
])
def test_format_usage(used, limit, text):
    assert core.format_usage(used, limit) == text
