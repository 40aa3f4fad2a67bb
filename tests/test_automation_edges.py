"""The scheduled pass at its edges, pure: thresholds exactly reached, deactivation that
lands exactly on the budget, settings of the policy, the plan of quarterly clients and
clients with no reset date; and `run-due --now` with a UTC offset through the CLI."""

import contextlib
import io
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from budget import automation, cli
from budget.automation import DueAlert, DueDeactivation, DueReset, Plan, Policy
from budget.model import AttributeCost, AuditEntry, BadInput, Client, FieldTokens, Tier
from budget.alerts import Email
from tests.support.factories import settings_from

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
TIERS = {1: Tier(1, "Basic", 100)}


def cost(aid: str, tokens: int, active: bool = True, client: str = "C",
         name: str | None = None) -> AttributeCost:
    return AttributeCost(aid, client, name or aid, active, FieldTokens(tokens, 0, 0))


# thresholds ---------------------------------------------------------------------------
def test_a_threshold_is_reached_at_exactly_its_share():
    assert automation.reached(799, 1000, (80, 90, 100)) == ()
    assert automation.reached(792, 1000, (80,)) == ()  # 79.2 % is not 80 %
    assert automation.reached(800, 1000, (80, 90, 100)) == (80,)
    assert automation.reached(900, 1000, (80, 90, 100)) == (80, 90)
    assert automation.reached(1000, 1000, (80, 90, 100)) == (80, 90, 100)
    assert automation.reached(1, 1, (100,)) == (100,)
    assert automation.reached(0, 0, (80,)) == ()  # nothing used: no alert, whatever the budget
    assert automation.reached(1, 0, (80,)) == (80,)


def policy(names: dict, stored: dict | None = None) -> Policy:
    """The pass's policy from the names a person sets, as the service builds it."""
    s = settings_from(names)
    return Policy.from_settings(s.alerts, s.deactivation, (stored or {}).get)


@pytest.mark.parametrize("value, expected", [
    ("80,90,100", (80, 90, 100)), ("100, 75%", (75, 100)), ([90, "80"], (80, 90)),
    ("1", (1,)), ("80,80", (80,)), (("50", 150), (50, 150)),
])
def test_parse_thresholds(value, expected):
    assert policy({"TOKENBUDGET_ALERT_THRESHOLDS": value}).thresholds == expected


@pytest.mark.parametrize("value", ["0", "80,ninety", "-5", "", "80,,90", [], "8.5", "80X",
                                   "%"])
def test_parse_thresholds_refuses(value):
    with pytest.raises(BadInput) as e:
        policy({"TOKENBUDGET_ALERT_THRESHOLDS": value})
    assert (e.value.record, e.value.field) == ("settings", "TOKENBUDGET_ALERT_THRESHOLDS")


# the policy ---------------------------------------------------------------------------
def test_policy_defaults():
    p = policy({})
    assert (p.thresholds, p.recipients, p.managers, p.auto_deactivate, p.order) == (
        (80, 90, 100), "both", {}, False, "newest")
    assert Policy() == p


@pytest.mark.parametrize("text, on", [("1", True), ("true", True), ("Yes", True),
                                      (" ON ", True), ("0", False), ("false", False),
                                      ("no", False), ("off", False)])
def test_the_switch_reads_on_and_off(text, on):
    assert policy({"TOKENBUDGET_AUTO_DEACTIVATE": text}).auto_deactivate is on


def test_the_stored_switch_and_order_win_over_the_environment():
    raw = {"TOKENBUDGET_AUTO_DEACTIVATE": "on", "TOKENBUDGET_AUTO_DEACTIVATE_ORDER": "largest",
           "TOKENBUDGET_ALERT_RECIPIENTS": " Manager ",
           "TOKENBUDGET_MANAGER_EMAILS": "Dana=dana@example.com"}
    p = policy(raw, {"auto_deactivate": "off", "auto_deactivate_order": "newest"})
    assert (p.auto_deactivate, p.order, p.recipients) == (False, "newest", "manager")
    assert p.managers == {"dana": "dana@example.com"}
    env_only = policy(raw)
    assert (env_only.auto_deactivate, env_only.order) == (True, "largest")
    assert policy({"TOKENBUDGET_AUTO_DEACTIVATE_ORDER": " Largest "}).order == "largest"


@pytest.mark.parametrize("raw, field", [
    ({"TOKENBUDGET_AUTO_DEACTIVATE": "maybe"}, "TOKENBUDGET_AUTO_DEACTIVATE"),
    ({"TOKENBUDGET_AUTO_DEACTIVATE_ORDER": "random"}, "TOKENBUDGET_AUTO_DEACTIVATE_ORDER"),
    ({"TOKENBUDGET_ALERT_RECIPIENTS": "everyone"}, "TOKENBUDGET_ALERT_RECIPIENTS"),
])
def test_policy_refuses_bad_settings(raw, field):
    with pytest.raises(BadInput) as e:
        policy(raw)
    assert (e.value.record, e.value.field) == ("settings", field)


# choosing what to switch off ---------------------------------------------------------------
def test_deactivation_stops_when_a_switch_off_lands_exactly_on_the_budget():
    costs = [cost("big", 50), cost("mid", 30), cost("small", 20)]
    assert automation.choose_deactivations(costs, 150, 100, "largest", {}) == (costs[0],)
    assert automation.choose_deactivations(costs, 100, 100, "largest", {}) == ()
    assert automation.choose_deactivations(costs, 151, 100, "largest", {}) == tuple(costs[:2])


def test_an_attribute_of_one_token_can_be_switched_off():
    one = cost("one", 1)
    assert automation.choose_deactivations([one, cost("zero", 0)], 101, 100, "largest",
                                           {}) == (one,)


def test_largest_first_breaks_ties_by_name_then_id():
    costs = [cost("z", 10, name="b"), cost("y", 10, name="a"), cost("x", 10, name="a"),
             cost("off", 99, active=False), cost("zero", 0)]
    chosen = automation.choose_deactivations(costs, 200, 0, "largest", {})
    assert [c.id for c in chosen] == ["x", "y", "z"]  # never an inactive or empty one


def test_newest_activated_first_then_the_larger_of_the_rest():
    t = [NOW - timedelta(hours=h) for h in (3, 2, 1)]
    costs = [cost("old-small", 5), cost("old-big", 40), cost("a", 10), cost("b", 10),
             cost("c", 10)]
    activated = {"a": t[0], "b": t[2], "c": t[1]}
    chosen = automation.choose_deactivations(costs, 75, 0, "newest", activated)
    assert [c.id for c in chosen] == ["b", "c", "a", "old-big", "old-small"]
    assert [c.id for c in automation.choose_deactivations(costs, 75, 50, "newest",
                                                          activated)] == ["b", "c", "a"]
    ties = [cost("y", 10, name="b"), cost("x", 10, name="b"), cost("w", 10, name="a")]
    assert [c.id for c in automation.choose_deactivations(ties, 30, 0, "newest", {})] == \
        ["w", "x", "y"]


def test_activation_times_keep_the_latest_switch_on():
    at = [NOW - timedelta(days=d) for d in (3, 2, 1)]
    on = ({"x": {"active": False}}, {"x": {"active": True}})
    entries = [AuditEntry(at[1], "a", "attribute.update", "C", *on),
               AuditEntry(at[2], "a", "attribute.update", "C", *on),
               AuditEntry(at[0], "a", "attribute.update", "C", *on),  # out of order
               AuditEntry(at[2], "a", "attribute.update", "C", {"y": {"active": True}},
                          {"y": {"active": False}}),  # a switch-off
               AuditEntry(at[2], "a", "reset", "C", {"topup": 0}, {"topup": 1}),
               AuditEntry(at[2], "a", "auto_restore", "C", {}, {"z": {"active": True}})]
    assert automation.activation_times(entries) == {"x": at[2]}


# resets -----------------------------------------------------------------------------------
def test_reset_due_on_the_day_and_not_before():
    c = Client("A", "Alpha", 1, budget_reset_date=date(2026, 11, 25))
    assert automation.reset_due(c, NOW) == DueReset("A", "Alpha", date(2026, 11, 25), 1,
                                                    date(2026, 12, 25))
    assert automation.reset_due(Client("A", "Alpha", 1, budget_reset_date=date(2026, 11, 26)),
                                NOW) is None
    late = automation.reset_due(Client("A", "Alpha", 1, budget_reset_date=date(2026, 9, 25)),
                                NOW)
    assert (late.boundaries, late.next_reset) == (3, date(2026, 12, 25))
    assert late.line() == ("reset Alpha (A): due since 2026-09-25, 3 period boundaries passed "
                           "(one reset catches up); next reset 2026-12-25")
    assert automation.reset_due(c, NOW).line() == ("reset Alpha (A): due since 2026-11-25; "
                                                   "next reset 2026-12-25")
    two = automation.reset_due(Client("A", "Alpha", 1, budget_reset_date=date(2026, 10, 25)),
                               NOW)
    assert two.boundaries == 2 and "2 period boundaries passed" in two.line()


def test_reset_due_follows_the_utc_day():
    c = Client("A", "Alpha", 1, budget_reset_date=date(2026, 12, 1))
    assert automation.reset_due(c, datetime(2026, 12, 1, 1, 30, tzinfo=timezone(
        timedelta(hours=2)))) is None  # still Nov 30 in UTC
    assert automation.reset_due(c, datetime(2026, 11, 30, 23, 30, tzinfo=timezone(
        timedelta(hours=-2)))) is not None  # already Dec 1 in UTC


def test_reset_due_without_a_reset_date_and_quarterly():
    none = automation.reset_due(Client("N", "None", 1), NOW)
    assert none == DueReset("N", "None", None, 1, date(2026, 12, 1))
    q = Client("Q", "Quarterly", 1, budget_reset_date=date(2026, 2, 1), period_months=3)
    due = automation.reset_due(q, NOW)
    assert (due.boundaries, due.next_reset) == (4, date(2027, 2, 1))
    after = automation.after_reset(q, NOW)
    assert (after.budget_reset_date, after.last_reset_period) == (date(2027, 2, 1),
                                                                  date(2026, 11, 1))
    monthly = automation.after_reset(
        Client("M", "M", 1, budget_reset_date=date(2026, 7, 15), topup=5), NOW)
    assert (monthly.topup, monthly.budget_reset_date, monthly.last_reset_period) == (
        0, date(2026, 12, 15), date(2026, 11, 15))
    odd = automation.after_reset(
        Client("Q", "Q", 1, budget_reset_date=date(2026, 3, 10), period_months=3), NOW)
    assert (odd.budget_reset_date, odd.last_reset_period) == (date(2026, 12, 10),
                                                              date(2026, 9, 10))
    topped = automation.after_reset(Client("N", "N", 1, topup=50), NOW)
    assert (topped.topup, topped.budget_reset_date, topped.last_reset_period) == (
        0, date(2026, 12, 1), date(2026, 11, 1))


# the plan ------------------------------------------------------------------------------
def plan(clients, costs, *, sent=frozenset(), flags=None, policy=None, email_on=True,
         activated=None, warning=0.8, now=NOW):
    return automation.plan(now, clients, costs, TIERS, policy or Policy(), set(sent),
                           flags or {},
                           lambda cid: (activated or {}), email_on, warning)


def test_plan_alerts_once_per_threshold_and_quarter():
    q = Client("Q", "Quarterly", 1, budget_reset_date=date(2027, 1, 1), period_months=3,
               email="q@example.com")
    costs = [cost("q1", 95, client="Q")]
    (alert,) = plan([q], costs).alerts
    assert (alert.client_id, alert.name, alert.period, alert.thresholds, alert.usage,
            alert.budget) == ("Q", "Quarterly", date(2026, 10, 1), (80, 90), 95, 100)
    assert alert.email.to == ("q@example.com",)
    assert "Budget period: 2026-10-01 to 2027-01-01" in alert.email.body
    assert alert.line() == ("email 90% alert for Quarterly (Q) to q@example.com: "
                            "95 / 100 tokens (95% used)")
    assert plan([q], costs, sent={("Q", 80, date(2026, 10, 1))}).alerts[0].thresholds == (90,)
    both = {("Q", 80, date(2026, 10, 1)), ("Q", 90, date(2026, 10, 1))}
    assert plan([q], costs, sent=both).alerts == ()
    other = {("Q", 80, date(2026, 7, 1)), ("X", 90, date(2026, 10, 1))}
    assert plan([q], costs, sent=other).alerts[0].thresholds == (80, 90)


def test_plan_after_a_due_reset_alerts_afresh_for_the_new_period():
    c = Client("A", "Alpha", 1, budget_reset_date=date(2026, 11, 1), topup=50)
    costs = [cost("a1", 85, client="A")]
    p = plan([c], costs, sent={("A", 80, date(2026, 11, 1))})
    assert [r.client_id for r in p.resets] == ["A"]
    (alert,) = p.alerts  # the reset cleared the period's alert state, and the top-up
    assert (alert.period, alert.thresholds, alert.budget) == (date(2026, 11, 1), (80,), 100)
    assert p.lines() == [
        "would reset Alpha (A): due since 2026-11-01; next reset 2026-12-01",
        "would email 80% alert for Alpha (A) to nobody (no contact or manager address): "
        "85 / 100 tokens (85% used)"]
    assert not p.empty


def test_plan_uses_the_warning_share_and_notes_that_email_is_off():
    c = Client("A", "Alpha", 1, budget_reset_date=date(2026, 12, 1))
    p = plan([c], [cost("a1", 85, client="A")], email_on=False)
    assert p.notes == ("email is off (SMTP_HOST is not set): 1 alert(s) due are not sent and "
                       "stay due",)
    assert p.lines("")[-1] == p.notes[0]
    assert plan([c], [cost("a1", 85, client="A")]).notes == ()
    assert plan([c], [], email_on=False).notes == ()


def test_plan_deactivates_only_clients_over_budget_with_the_policy_on():
    over = Client("C", "Gamma", 1, budget_reset_date=date(2026, 12, 1))
    fits = Client("F", "Fits", 1, budget_reset_date=date(2026, 12, 1))
    costs = [cost("c1", 70), cost("c2", 60), cost("f1", 100, client="F")]
    on = Policy(auto_deactivate=True, order="largest")
    (off,) = plan([over, fits], costs, policy=on).deactivations
    assert (off.client_id, off.name, off.usage, off.budget, off.order) == (
        "C", "Gamma", 130, 100, "largest")
    assert off.attributes == (costs[0],) and off.after == 60
    assert off.line() == ("deactivate for Gamma (C), largest first: c1 (70 tokens); "
                          "130 / 100 tokens (130% used) -> 60 / 100 tokens (60% used)")
    assert plan([over], costs, policy=on, flags={"C": False}).deactivations == ()
    assert [d.client_id for d in plan([over], costs, flags={"C": True}).deactivations] == ["C"]
    assert plan([over], costs).deactivations == ()  # the policy is off by default
    empty = [cost("c0", 0), cost("c1", 130, active=False)]
    assert plan([over], empty, policy=on).deactivations == ()


def test_plan_asks_for_the_activation_times_of_each_client():
    over = [Client("C", "Gamma", 1, budget_reset_date=date(2026, 12, 1)),
            Client("D", "Delta", 1, budget_reset_date=date(2026, 12, 1))]
    costs = [cost("c1", 80), cost("c2", 40), cost("d1", 80, client="D"),
             cost("d2", 40, client="D")]
    times = {"C": {"c2": NOW}, "D": {"d1": NOW}}
    p = automation.plan(NOW, over, costs, TIERS, Policy(auto_deactivate=True), set(), {},
                        lambda cid: times[cid], True)
    assert [[c.id for c in d.attributes] for d in p.deactivations] == [["c2"], ["d1"]]


def test_an_empty_plan():
    p = Plan(NOW)
    assert p.empty and p.lines() == ["nothing is due"]
    assert Plan(NOW, notes=("x",)).empty and Plan(NOW, notes=("x",)).lines() == ["x"]
    alert = DueAlert("A", "Alpha", date(2026, 11, 1), (80, 100), 100, 100,
                     Email(("a@x.com", "m@x.com"), "s", "b"))
    assert alert.line() == "email 100% alert for Alpha (A) to a@x.com, m@x.com: " \
                           "100 / 100 tokens (100% used)"
    d = DueDeactivation("C", "Gamma", 120, 100, "newest", (cost("c1", 15), cost("c2", 10)))
    assert d.after == 95
    assert not Plan(NOW, deactivations=(d,)).empty and not Plan(NOW, alerts=(alert,)).empty
    assert not Plan(NOW, resets=(DueReset("A", "A", None, 1, date(2026, 12, 1)),)).empty


# run-due --now with an offset, through the CLI ------------------------------------------
def run_cli(path, *args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["--store", f"sqlite:///{path}", *args])
    return code, out.getvalue()


@pytest.fixture
def db(small, store_factory, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no secrets.toml of the repository's
    return store_factory.path


def test_run_due_now_with_an_offset_is_converted_to_utc(db):
    code, out = run_cli(db, "run-due", "--dry-run", "--now", "2026-12-01T01:30+02:00")
    assert code == 0
    assert out.splitlines()[0] == "dry run at 2026-11-30 23:30 UTC; nothing written"
    assert "reset Alpha" not in out  # Alpha's reset date, Dec 1, is still ahead in UTC
    code, out = run_cli(db, "run-due", "--dry-run", "--now", "2026-11-30T23:30-02:00")
    assert out.splitlines()[0] == "dry run at 2026-12-01 01:30 UTC; nothing written"
    assert "would reset Alpha (A): due since 2026-12-01; next reset 2027-01-01" in out


def test_run_due_now_near_midnight_resets_on_the_utc_day(db, store_factory):
    code, out = run_cli(db, "run-due", "--now", "2026-12-01T01:30+02:00")
    assert code == 0 and "Alpha reset" not in out
    assert store_factory.service().client("A").budget_reset_date == date(2026, 12, 1)
    code, out = run_cli(db, "run-due", "--now", "2026-11-30T23:30-02:00")
    assert code == 0 and "Alpha reset: usage 80 tokens, next reset 2027-01-01" in out
    a = store_factory.service().client("A")
    assert (a.budget_reset_date, a.last_reset_period) == (date(2027, 1, 1), date(2026, 12, 1))


def test_run_due_now_without_an_offset_is_utc(db):
    code, out = run_cli(db, "run-due", "--dry-run", "--now", "2026-12-01T00:00")
    assert out.splitlines()[0] == "dry run at 2026-12-01 00:00 UTC; nothing written"
    assert "would reset Alpha" in out
