"""Analytics figures against small data sets worked out by hand, and the batch edit."""

from datetime import date, timedelta

import pandas as pd
import pytest

from budget import analytics, views
from budget.model import (
    Actor,
    Attribute,
    AttributeCost,
    Change,
    FieldTokens,
    NotAllowed,
)
from tests.support.factories import ADMIN, NOW, Clock, make_service, words

DAY = timedelta(days=1)


def frame_of(svc) -> pd.DataFrame:
    return views.usage_frame(svc.usage_report(), svc.tiers())


def cost(aid, cid, name, active, i, e=0, s=0) -> AttributeCost:
    return AttributeCost(aid, cid, name, active, FieldTokens(i, e, s))


# top attributes ---------------------------------------------------------------------------
def test_top_attributes_across_clients_with_filters(small):
    frame = frame_of(small)  # A: Basic, 80/100 warning; B: Professional, 150/200 ok
    top = analytics.top_attributes(small.costs(), frame, n=10)
    assert list(zip(top["attribute_id"], top["tokens"], strict=True)) == [
        ("b1", 150), ("a2", 40), ("a1", 40)]
    assert top.loc[0, "label"] == "Size · Beta" and top.loc[0, "tier"] == "Professional"
    assert top.loc[1, ["instructions", "examples"]].tolist() == [30, 10]  # a3 is inactive: absent
    assert list(analytics.top_attributes(small.costs(), frame, 1)["attribute_id"]) == ["b1"]
    basic = analytics.top_attributes(small.costs(), frame, 10, tiers=["Basic"])
    assert set(basic["client_id"]) == {"A"}
    warning = analytics.top_attributes(small.costs(), frame, 10, statuses=["warning"])
    assert set(warning["client_id"]) == {"A"}
    assert analytics.top_attributes(small.costs(), frame, 10, statuses=["exceeded"]).empty


# trends ----------------------------------------------------------------------------------
def test_slope_is_least_squares_tokens_per_day():
    t = NOW
    assert analytics.slope_per_day([(t, 100), (t + DAY, 110), (t + 2 * DAY, 120)]) == 10
    # 0, 20, 10 over days 0..2: the line through them rises 5 a day
    assert analytics.slope_per_day([(t, 0), (t + DAY, 20), (t + 2 * DAY, 10)]) == 5
    assert analytics.slope_per_day([(t, 100)]) is None
    assert analytics.slope_per_day([(t, 100), (t, 120)]) is None  # one moment is no line
    assert analytics.slope_per_day([]) is None


def test_reaches_budget_phrases():
    assert analytics.reaches_budget(120, 200, 10.0, NOW) == (
        date(2026, 12, 3), "reaches budget 2026-12-03")  # 80 tokens at 10 a day: 8 days
    assert analytics.reaches_budget(120, 200, None, NOW) == (None, "not enough history yet")
    assert analytics.reaches_budget(120, 200, 0.5, NOW) == (None, "no trend")  # flat
    assert analytics.reaches_budget(120, 200, -3.0, NOW) == (None, "falling")
    assert analytics.reaches_budget(201, 200, 10.0, NOW) == (None, "over budget now")
    assert analytics.reaches_budget(200, 200, 10.0, NOW) == (NOW.date(),
                                                            "reaches budget 2026-11-25")


def test_forecast_from_history_written_by_changes(small):
    """Three edits a day apart put A at 70, 75, 80 tokens: 5 a day, so the 20 left of its
    100 last 4 days, once two days of history are enough. B has no snapshots."""
    clock = Clock(NOW - 2 * DAY)
    small.clock = clock
    for n in (30, 35, 40):  # a1: 40 -> 30 -> 35 -> 40 tokens
        assert small.apply(ADMIN, Change("A", fields={"a1": {"Instructions": words(n)}})).allowed
        clock.now += DAY
    assert [u for _, _, u, _ in small.history("A")] == [70, 75, 80]
    default = analytics.forecast(frame_of(small), small.history(), NOW).set_index("client_id")
    assert default.loc["A", "trend"] == "not enough history yet"  # 2 days < 7
    out = analytics.forecast(frame_of(small), small.history(), NOW, min_days=2
                             ).set_index("client_id")
    assert list(out.index) == ["A", "B"]  # least headroom first: 20, then 50
    assert out.loc["A", "headroom"] == 20 and out.loc["A", "tokens_per_day"] == 5
    assert out.loc["A", "reaches_budget"] == date(2026, 11, 29)
    assert out.loc["A", "trend"] == "reaches budget 2026-11-29"
    assert out.loc["B", "trend"] == "not enough history yet"
    assert out.loc["B", "snapshots"] == 0


def test_edits_seconds_apart_make_no_trend(small):
    """Two or three edits seconds apart once extrapolated to ~100,000 tokens a day and
    'reaches budget tomorrow': a trend needs days of history, not seconds."""
    clock = Clock(NOW)
    small.clock = clock
    for n in (10, 60, 20):  # a1: 40 -> 10 -> 60 -> 20 tokens, five seconds apart
        assert small.apply(ADMIN, Change("A", fields={"a1": {"Instructions": words(n)}})).allowed
        clock.now += timedelta(seconds=5)
    assert analytics.slope_per_day([(at, u) for _, at, u, _ in small.history("A")]) > 10_000
    out = analytics.forecast(frame_of(small), small.history(), NOW).set_index("client_id")
    assert out.loc["A", "trend"] == "not enough history yet"
    assert pd.isna(out.loc["A", "tokens_per_day"]) and pd.isna(out.loc["A", "reaches_budget"])


def test_trend_over_months_is_whole_tokens_per_day():
    """Snapshots over three months: a trend, in whole tokens per day."""
    start = NOW - timedelta(days=90)
    history = [("A", start + timedelta(days=d), 1_000 + 3 * d, 10_000) for d in range(0, 91, 15)]
    assert analytics.trend_per_day([(at, u) for _, at, u, _ in history]) == pytest.approx(3)
    assert analytics.trend_per_day([(at, u) for _, at, u, _ in history[:2]]) is None  # 2 points
    frame = pd.DataFrame([{"client_id": "A", "client": "Alpha", "tier": "Basic", "usage": 1_270,
                           "budget": 10_000, "remaining": 8_730, "percent_used": 12,
                           "status": "ok"}])
    out = analytics.forecast(frame, history, NOW).iloc[0]
    assert out["tokens_per_day"] == 3 and str(out["tokens_per_day"]).isdigit()
    assert out["trend"] == f"reaches budget {(NOW + timedelta(days=2910)).date():%Y-%m-%d}"
    assert analytics.trend_per_day([(at, u) for _, at, u, _ in history], min_days=120) is None


def test_usage_over_time_sums_every_client():
    """Each client's last known usage is carried forward (and its first back, before
    it); a client without snapshots counts at its usage now."""
    t1, t2, t3 = NOW, NOW + DAY, NOW + 2 * DAY
    history = [("A", t1, 10, 100), ("B", t2, 20, 200), ("A", t3, 15, 100)]
    current = {"A": 15, "B": 20, "C": 1_000}
    per, overall = analytics.usage_over_time(history, {"A": "Alpha", "B": "Beta"}, current)
    assert list(per["client"]) == ["Alpha", "Beta", "Alpha"]
    assert overall.to_dict("list") == {"at": [t1, t2, t3], "usage": [1_030, 1_030, 1_035],
                                       "clients": [1, 2, 2]}
    _, later = analytics.usage_over_time(history, {}, current, start=t2 + DAY / 2)
    assert later.to_dict("list") == {"at": [t2 + DAY / 2, t3], "usage": [1_030, 1_035],
                                     "clients": [2, 2]}
    per, overall = analytics.usage_over_time([], {}, current)
    assert per.empty and overall.empty


def test_usage_over_time_after_edits_seconds_apart_stays_at_the_real_total(demo_copy):
    """Edits to a few demo clients seconds apart: the total over time is the real total
    at every point, not the sum of the few clients that have a snapshot."""
    svc = make_service(demo_copy, clock=Clock(NOW))
    report = svc.usage_report()
    for u in report[:4]:  # deactivate one active attribute each, five seconds apart
        attr = next(a for a in svc.attributes(u.client.id) if a.active)
        assert svc.apply(ADMIN, Change(u.client.id, active={attr.id: False})).allowed
        svc.clock.now += timedelta(seconds=5)
    current = {u.client.id: u.usage for u in svc.usage_report()}
    _, overall = analytics.usage_over_time(svc.history(), {}, current)
    assert len(overall) == 4
    total_before = sum(u.usage for u in report)
    assert total_before > overall["usage"].iloc[0] > 0.9 * total_before
    assert overall["usage"].iloc[-1] == sum(current.values())
    assert overall["usage"].is_monotonic_decreasing


# distribution by tier --------------------------------------------------------------------
def test_tier_summary(small):
    small.set_budget_override(ADMIN, "B", 140)  # B: 150 / 140, exceeded
    out = analytics.tier_summary(frame_of(small)).set_index("tier")
    assert out.loc["Basic", ["clients", "usage", "ok", "warning", "exceeded"]].tolist() == [
        1, 80, 0, 1, 0]
    assert out.loc["Professional", ["usage", "exceeded", "mean_percent_used"]].tolist() == [
        150, 1, 107]  # 150 / 140 = 107.14%: whole percent, rounded down
    assert list(out.index) == ["Basic", "Professional"]  # by service level


# chars4 against real counts ---------------------------------------------------------------
def test_estimate_error_on_the_small_set(small):
    """words(n) is n tokens and 5n-1 characters, so chars4 = ceil((5n-1)/4):
    a1 40 -> 50; a2 30 + 10 -> 38 + 13 = 51; b1 150 -> 188."""
    names = {"A": "Alpha", "B": "Beta"}
    attrs, clients = analytics.estimate_error(small.costs(), small.costs(encoding="chars4"), names)
    by = attrs.set_index("attribute_id")
    assert by.loc["a1", ["tokens", "chars4", "error", "error_percent"]].tolist() == [
        40, 50, 10, 25.0]
    assert by.loc["a2", ["chars4", "error"]].tolist() == [51, 11]
    assert by.loc["a3", "chars4"] == 31  # 124 characters; inactive: listed, not in A's total
    per = clients.set_index("client_id")
    assert per.loc["A", ["tokens", "chars4", "error", "error_percent", "direction"]].tolist() == [
        80, 101, 21, 26.2, "over-counted"]
    assert per.loc["B", ["tokens", "chars4", "error"]].tolist() == [150, 188, 38]


def test_estimate_error_directions_by_hand():
    real = [cost("x", "X", "cjk", True, 30), cost("y", "Y", "en", True, 10),
            cost("z", "Z", "same", True, 7), cost("w", "Z", "off", False, 0)]
    est = [cost("x", "X", "cjk", True, 12), cost("y", "Y", "en", True, 13),
           cost("z", "Z", "same", True, 7), cost("w", "Z", "off", False, 5)]
    attrs, clients = analytics.estimate_error(real, est, {})
    assert list(attrs["attribute_id"][:2]) == ["x", "w"]  # largest difference first
    assert pd.isna(attrs.set_index("attribute_id").loc["w", "error_percent"])  # of 0 tokens
    per = clients.set_index("client_id")
    assert per.loc["X", ["error", "error_percent", "direction"]].tolist() == [-18, -60.0,
                                                                              "under-counted"]
    assert per.loc["Y", "direction"] == "over-counted" and per.loc["Z", "direction"] == "exact"
    assert list(clients["client_id"]) == ["X", "Z", "Y"]  # most under-counted first


# prompt cost -----------------------------------------------------------------------------
def test_prompt_cost_and_roi(small):
    """A: 80 tokens × 2,000 leads = 160,000 tokens × 2.50 / M = 0.40; revenue 50 for
    level 1 -> 0.8 % and 3,200 tokens per unit. B has no revenue figure."""
    out = analytics.prompt_cost(frame_of(small), 2_000, 2.50, {1: 50.0}).set_index("client_id")
    assert out.loc["A", ["tokens_per_lead", "monthly_tokens", "monthly_cost"]].tolist() == [
        80, 160_000, 0.40]
    assert out.loc["A", ["monthly_revenue", "cost_percent_of_revenue",
                         "tokens_per_revenue_unit"]].tolist() == [50.0, 0.8, 3_200]
    assert out.loc["B", "monthly_cost"] == 0.75 and pd.isna(out.loc["B", "cost_percent_of_revenue"])
    assert list(out.index) == ["B", "A"]  # most expensive first


# similar attributes across clients -------------------------------------------------------
def test_similar_groups_by_name_and_by_text():
    attrs = [Attribute("a1", "A", "Company size", True, "Big is good."),
             Attribute("b1", "B", "company  Size 2", True, "Larger is better."),
             Attribute("c1", "C", "Company sizes", False, "x"),
             Attribute("a2", "A", "Intent", True, "Watch  the pricing page."),
             Attribute("b2", "B", "Buying signals", True, "watch the pricing page."),
             Attribute("a3", "A", "Industry", True, "SaaS only."),
             Attribute("a4", "A", "Empty", True), Attribute("b4", "B", "Blank", True),
             Attribute("a5", "A", "Region", True, "EU."), Attribute("a6", "A", "Region 2", True)]
    groups = {g.label: g for g in analytics.similar_groups(attrs)}
    assert set(groups) == {"Company size", "Intent"}  # Industry, Region: one client only
    assert groups["Company size"].attribute_ids == ("a1", "b1", "c1")
    assert groups["Company size"].clients == 3
    assert set(groups["Intent"].attribute_ids) == {"a2", "b2"}  # same text, other names
    assert analytics.name_key(" Company  Size 12 ") == "company size"
    assert analytics.template_text([attrs[0], attrs[1], attrs[0]], "Instructions") == "Big is good."


# batch edit through the service ----------------------------------------------------------
def test_batch_edit_applies_where_allowed_and_reports_the_rest(small):
    """Size is in A (a1, 40 of A's 80/100) and B (b1, 150/200). 70 tokens of text fit B
    (-80) but not A (+30 -> 110): A is refused, B saved, and an unknown id is reported."""
    targets = [("A", "a1"), ("B", "b1"), ("B", "nope")]
    fields = {"Instructions": words(70)}
    preview = small.preview_batch(targets, fields)
    assert [r.allowed for r in preview] == [False, True, False]
    assert small.audit() == []  # a preview writes nothing
    results = small.apply_batch(ADMIN, targets, fields)
    assert [(r.client_id, r.attribute_id, r.allowed) for r in results] == [
        ("A", "a1", False), ("B", "b1", True), ("B", "nope", False)]
    assert results[0].reason == "would use 110 of 100 tokens (10 over budget)"
    assert results[1].reason == "150 → 70 of 200 tokens"
    assert "attribute nope" in results[2].reason and "no such attribute" in results[2].reason
    assert small.client_usage("A").usage == 80 and small.client_usage("B").usage == 70
    assert small.client("B").token_usage == 70  # the stored copy moves with it
    (entry,) = small.audit()
    assert (entry.action, entry.client_id) == ("attribute.batch_edit", "B")
    assert entry.after["b1"]["instructions"] == words(70)


def test_batch_edit_stale_target_does_not_block_others(small):
    small.apply(ADMIN, Change("A", fields={"a2": {"Signals": "x"}}))  # a2 is now version 1
    results = small.apply_batch(ADMIN, [("A", "a2"), ("B", "b1")], {"Signals": "same"},
                                expected_versions={"a2": 0, "b1": 0})
    assert [r.allowed for r in results] == [False, True]
    assert "changed since it was read" in results[0].reason
    texts = {a.id: a.signals for a in small.all_attributes()}
    assert texts["b1"] == "same" and texts["a2"] == "x"


def test_batch_edit_needs_an_admin_and_writes_nothing_otherwise(small):
    with pytest.raises(NotAllowed):
        small.apply_batch(Actor("ann", "analyst"), [("B", "b1")], {"Instructions": "short"})
    assert small.audit() == [] and small.client_usage("B").usage == 150


def test_batch_edit_bad_field_is_reported_per_target(small):
    (r,) = small.apply_batch(ADMIN, [("B", "b1")], {"Notes": "x"})
    assert not r.allowed and r.reason.startswith("attribute b1: Notes: unknown field")
    assert small.audit() == []
