from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from budget import core
from budget.model import DEFAULT_TIERS, AttributeCost, Change, Client, FieldTokens, Tier

TIERS = {k: Tier(k, n, t) for k, (n, t) in DEFAULT_TIERS.items()}

counts = st.builds(FieldTokens, st.integers(0, 5000), st.integers(0, 5000), st.integers(0, 5000))
costs = st.lists(st.builds(AttributeCost, st.text("ab", min_size=1, max_size=3).map(lambda s: s),
                           st.sampled_from(["A", "B", "C"]), st.just("n"), st.booleans(), counts),
                 max_size=30, unique_by=lambda c: c.id)


def test_default_tier_limits():
    assert {k: t.tokens for k, t in TIERS.items()} == {1: 3000, 2: 6000, 3: 12000, 4: 25000}


@given(costs)
def test_usage_never_negative_and_counts_only_active(cs):
    for cid in "ABC":
        assert core.usage(cs, cid) == sum(c.total for c in cs if c.client_id == cid and c.active)
        assert core.usage(cs, cid) >= 0


small_counts = st.builds(FieldTokens, st.integers(0, 3), st.integers(0, 3), st.integers(0, 3))


@given(st.lists(st.builds(AttributeCost, st.text("abc", min_size=1, max_size=3),
                          st.sampled_from(["A", "B", "C"]), st.just("n"), st.booleans(),
                          small_counts), max_size=30, unique_by=lambda c: c.id),
       st.integers(-1, 12), st.none() | st.sets(st.sampled_from(["A", "B", "C"])))
def test_top_costs_are_the_active_ones_fewer_than_n_others_beat(cs, n, ids):
    """An attribute makes the list when fewer than n of the others chosen have more
    tokens: all of them when there are fewer than n, every tie at the cut kept."""
    chosen = [c for c in cs if c.active and (ids is None or c.client_id in ids)]
    want = [c for c in chosen if sum(d.total > c.total for d in chosen) < n]
    top = core.top_costs(cs, n, ids)
    assert sorted(top, key=lambda c: c.id) == sorted(want, key=lambda c: c.id)
    assert top == sorted(top, key=lambda c: (-c.total, c.client_id, c.id))


@given(costs, counts)
def test_isolation_other_clients_never_count(cs, extra):
    before = core.usage(cs, "A")
    more = cs + [AttributeCost("zz", "B", "n", True, extra)]
    assert core.usage(more, "A") == before
    change = Change("A", active={c.id: True for c in cs if c.client_id == "B"})
    assert core.projected_usage(cs, change, {}) == before


@given(costs, st.integers(0, 5000))
def test_adding_text_never_lowers_projected_usage(cs, grow):
    for c in cs:
        if c.client_id != "A":
            continue
        bigger = FieldTokens(c.tokens.instructions + grow, c.tokens.examples, c.tokens.signals)
        change = Change("A", fields={c.id: {"Instructions": "x"}})
        assert core.projected_usage(cs, change, {c.id: bigger}) >= core.usage(cs, "A")


def test_status_boundaries():
    assert core.status(799, 1000) == "ok"
    assert core.status(800, 1000) == "warning"
    assert core.status(1000, 1000) == "warning"  # exactly at the budget is allowed
    assert core.status(1001, 1000) == "exceeded"
    assert core.status(500, 1000, warning=0.5) == "warning"


def test_budget_override_and_tier_and_topup():
    c = Client("X", "X", 2)
    assert core.budget(c, TIERS) == 6000
    assert core.budget(Client("X", "X", 2, token_budget=4500), TIERS) == 4500
    assert core.budget(Client("X", "X", 2, token_budget=0), TIERS) == 0
    assert core.budget(Client("X", "X", 1, topup=500), TIERS) == 3500


def test_validate_rules():
    assert core.validate(900, 1000, 1000).allowed  # at the budget: fine
    refused = core.validate(900, 1001, 1000)
    assert not refused.allowed and refused.over_by == 1 and refused.delta == 101
    # over budget already, but the change lowers usage: allowed
    assert core.validate(1500, 1200, 1000).allowed
    assert core.validate(1500, 1500, 1000).allowed
    assert not core.validate(1500, 1501, 1000).allowed


def test_bulk_change_checked_as_one():
    cs = [AttributeCost(f"a{i}", "A", "n", False, FieldTokens(400, 0, 0)) for i in range(3)]
    change = Change("A", active={"a0": True, "a1": True, "a2": True})
    assert core.projected_usage(cs, change, {}) == 1200
    assert not core.validate(0, 1200, 1000).allowed


def test_period_boundaries():
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert core.next_boundary(date(2026, 12, 1), now) == date(2026, 12, 1)
    assert core.next_boundary(date(2026, 11, 1), now) == date(2026, 12, 1)
    assert core.next_boundary(date(2026, 1, 31), now) == date(2026, 11, 30)  # clamped
    # a kept anchor on the 31st stays month-end: no drift to the 30th after November
    assert core.next_boundary(date(2026, 11, 30), datetime(2026, 11, 30, tzinfo=UTC),
                              anchor_day=31) == date(2026, 12, 31)
    assert core.next_boundary(date(2026, 2, 28), datetime(2026, 3, 1, tzinfo=UTC),
                              anchor_day=31) == date(2026, 3, 31)
    assert core.period_start(date(2026, 11, 30), now, anchor_day=31) == date(2026, 10, 31)
    assert core.next_boundary(date(2026, 11, 25), now) == date(2026, 12, 25)  # strictly after
    assert core.next_boundary(date(2024, 2, 15), now, 3) == date(2027, 2, 15)
    assert core.period_start(date(2026, 12, 1), now) == date(2026, 11, 1)


def test_format_usage():
    assert core.format_usage(1250, 5000) == "1,250 / 5,000 tokens (25% used)"
    assert core.format_usage(0, 3000) == "0 / 3,000 tokens (0% used)"
