"""The scheduled pass: run-due idempotence and catch-up at fixed times, automatic
deactivation (order, stopping point, restore), history snapshots, and a dry run that
leaves the database file byte-identical."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import date, datetime, UTC
from pathlib import Path

import pytest

from budget import automation, cli
from budget.model import (
    Actor,
    Attribute,
    AuditEntry,
    BadInput,
    Change,
    Client,
    NotAllowed,
    Tier,
)
from tests.support.factories import ADMIN, STORES_AND_SIDECARS, Clock, make_service, words

ROOT = Path(__file__).resolve().parent.parent
both_stores = pytest.mark.parametrize("store_factory", STORES_AND_SIDECARS, indirect=True)


def dump(path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return list(conn.iterdump())


def run_cli(path, *args: str) -> tuple[int, str]:
    """`tokenbudget --store sqlite:///PATH ARGS` in this process."""
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["--store", f"sqlite:///{path}", *args])
    return code, out.getvalue()


def behind_schedule(path) -> None:
    """Three clients whose reset dates passed months ago (one quarterly), one ahead."""
    svc = make_service(path)
    svc.load_data_set(
        ADMIN, [Tier(1, "Basic", 100)],
        [Client("M", "Monthly", 1, budget_reset_date=date(2026, 7, 15), topup=30),
         Client("Q", "Quarterly", 1, budget_reset_date=date(2026, 2, 1), period_months=3),
         Client("E", "Month end", 1, budget_reset_date=date(2026, 8, 31)),
         Client("F", "Future", 1, budget_reset_date=date(2027, 6, 1))],
        [Attribute("m1", "M", "Size", True, words(50), "", ""),
         Attribute("q1", "Q", "Size", True, words(20), "", "")])


# run-due -----------------------------------------------------------------------------------
def test_run_due_catches_up_missed_months_once_and_is_idempotent(tmp_path):
    path = tmp_path / "late.db"
    behind_schedule(path)
    code, out = run_cli(path, "run-due", "--now", "2026-11-25T06:00:00")
    assert code == 0, out
    assert "Monthly reset: usage 50 tokens, next reset 2026-12-15" in out
    svc = make_service(path)
    m, q, e, f = (svc.client(c) for c in "MQEF")
    assert (m.budget_reset_date, m.last_reset_period, m.topup) == (
        date(2026, 12, 15), date(2026, 11, 15), 0)
    assert (q.budget_reset_date, q.last_reset_period) == (date(2027, 2, 1), date(2026, 11, 1))
    assert (e.budget_reset_date, e.last_reset_period) == (date(2026, 11, 30), date(2026, 10, 31))
    assert f.budget_reset_date == date(2027, 6, 1) and f.last_reset_period is None
    # one reset each however many periods were missed: one audit entry, one snapshot
    assert sorted(a.client_id for a in svc.audit() if a.action == "reset") == ["E", "M", "Q"]
    assert [h[2:] for h in svc.history("M")] == [(50, 100)]
    assert all(a.actor == "run-due" for a in svc.audit())

    before = dump(path)
    code, again = run_cli(path, "run-due", "--now", "2026-11-25T06:00:00")
    assert (code, again.strip()) == (0, "nothing was due")
    assert dump(path) == before  # the second pass changed nothing at all

    code, later = run_cli(path, "run-due", "--now", "2027-03-02T00:00:00+00:00")
    assert code == 0
    assert "Monthly reset: usage 50 tokens, next reset 2027-03-15" in later
    assert "Quarterly reset" in later and "Future" not in later
    assert len([a for a in make_service(path).audit() if a.action == "reset"]) == 6


def test_dry_run_lists_the_catch_up(tmp_path):
    path = tmp_path / "late.db"
    behind_schedule(path)
    code, out = run_cli(path, "run-due", "--dry-run", "--now", "2026-11-25T06:00")
    assert code == 0
    assert ("would reset Monthly (M): due since 2026-07-15, 5 period boundaries passed "
            "(one reset catches up); next reset 2026-12-15") in out
    assert "would reset Quarterly (Q): due since 2026-02-01, 4 period boundaries" in out
    assert "Future" not in out
    assert make_service(path).audit() == []


def test_bad_now_names_the_option(tmp_path, capsys):
    path = tmp_path / "late.db"
    behind_schedule(path)
    assert cli.main(["--store", f"sqlite:///{path}", "run-due", "--now", "yesterday"]) == 2
    assert "run-due: --now: not an ISO time: 'yesterday'" in capsys.readouterr().err


def test_dry_run_leaves_the_database_file_byte_identical(tmp_path):
    """In a separate process, as cron runs it: closing the connection would checkpoint
    any write from the WAL into the file, so a write of any kind would show."""
    path = tmp_path / "demo.db"
    env = {**os.environ, "TOKENBUDGET_AUTO_DEACTIVATE": "on", "PYTHONPATH": str(ROOT)}
    env.pop("TOKENBUDGET_STORE", None)

    def tokenbudget(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "budget", "--store", f"sqlite:///{path}",
                               *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=240)

    assert tokenbudget("demo-data").returncode == 0
    conn = sqlite3.connect(path)  # some texts with no saved count: a read would count them
    with conn:
        conn.execute("DELETE FROM token_counts WHERE attribute_id IN "
                     "(SELECT id FROM attributes WHERE rowid % 7 = 0)")
    conn.close()  # the last connection: checkpoints the WAL into the file
    before = path.read_bytes()
    dry = tokenbudget("run-due", "--dry-run", "--now", "2027-02-15T06:00")
    assert dry.returncode == 0, dry.stderr
    assert path.read_bytes() == before
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    lines = dry.stdout.splitlines()
    resets = [line for line in lines if line.startswith("would reset ")]
    offs = [line for line in lines if line.startswith("would deactivate for ")]
    assert len(resets) == 40 and offs and any(line.startswith("would email ") for line in lines)
    # the real pass does what the dry run said, and that does change the file
    real = tokenbudget("run-due", "--now", "2027-02-15T06:00")
    assert real.returncode == 0, real.stderr
    assert path.read_bytes() != before
    done = real.stdout.splitlines()
    assert len([x for x in done if x.startswith("deactivated for ")]) == len(offs)
    assert len([x for x in done if " reset: usage " in x]) == 40


# automatic deactivation ------------------------------------------------------------------
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def over_budget(store_factory, **raw):
    """Client C: c1 (50) and c2 (10) active since the load, c3 (20) switched on at T0+1h,
    c4 (15) at T0+2h, c5 (0 tokens) at T0+3h; usage 95 of 100. A: 80 of 100 (fits).
    B: over budget (150 of 120) with the policy off."""
    clock = Clock(T0)
    svc = store_factory.service(clock, names=raw)
    svc.load_data_set(
        ADMIN, [Tier(1, "Basic", 100), Tier(2, "Professional", 200)],
        [Client("A", "Alpha", 1, budget_reset_date=date(2026, 12, 1)),
         Client("B", "Beta", 2, token_budget=120, budget_reset_date=date(2026, 12, 1)),
         Client("C", "Gamma", 1, budget_reset_date=date(2026, 12, 1))],
        [Attribute("a1", "A", "Size", True, words(80), "", ""),
         Attribute("b1", "B", "Size", True, words(150), "", ""),
         Attribute("c1", "C", "Old big", True, words(50), "", ""),
         Attribute("c2", "C", "Old small", True, words(10), "", ""),
         Attribute("c3", "C", "Recent", False, words(20), "", ""),
         Attribute("c4", "C", "Newest", False, words(15), "", ""),
         Attribute("c5", "C", "Empty", False, "", "", "")])
    for hour, aid in ((1, "c3"), (2, "c4"), (3, "c5")):
        clock.now = T0.replace(hour=9 + hour)
        assert svc.apply(ADMIN, Change("C", active={aid: True})).allowed
    clock.now = T0.replace(hour=13)
    svc.set_budget_override(ADMIN, "C", 70)  # now 95 of 70: over by 25
    clock.now = T0.replace(hour=14)
    return svc


def active(svc, cid):
    return sorted(a.id for a in svc.attributes(cid) if a.active)


@both_stores
def test_newest_activated_first_stops_as_soon_as_it_fits_and_restores(store_factory):
    svc = over_budget(store_factory)
    svc.set_auto_deactivate(ADMIN, "C", True)  # on for C only; A fits, B's policy is off
    svc.set_auto_deactivate(ADMIN, "A", True)
    audit_before = len(svc.audit())
    report = svc.run_due(ADMIN)
    # c5 is newest but costs nothing; c4 (15) leaves 80 > 70; c3 (20) leaves 60: stop
    assert active(svc, "C") == ["c1", "c2", "c5"]
    assert active(svc, "A") == ["a1"] and active(svc, "B") == ["b1"]
    assert svc.client_usage("C").usage == 60 and svc.client("C").token_usage == 60
    assert [d.attribute_id for d in svc.deactivation_runs()] == ["c4", "c3"]
    (line,) = [x for x in report.lines if x.startswith("deactivated")]
    assert line.startswith("deactivated for Gamma (C), newest-activated first: "
                           "Newest (15 tokens), Recent (20 tokens); 95 / 70 tokens (135% used) "
                           "-> 60 / 70 tokens (85% used)")
    entries = [e for e in svc.audit()[audit_before:] if e.action == "auto_deactivate"]
    assert [list(e.before)[0] for e in entries] == ["c4", "c3"]
    assert entries[0].after["reason"] == ("over budget at 95 / 70 tokens (135% used); "
                                          "newest-activated first: Newest (15 tokens) off, "
                                          "80 / 70 tokens (114% used)")
    assert {e.after["run"] for e in entries} == {report.run_id}
    assert svc.history("C")[-1][2:] == (60, 70)

    again = svc.run_due(ADMIN)  # C fits now: untouched
    assert not [x for x in again.lines if x.startswith("deactivated")]
    assert len(svc.deactivation_runs()) == 2 and active(svc, "C") == ["c1", "c2", "c5"]

    restored = svc.restore_run(ADMIN, report.run_id)
    assert sorted(d.attribute_id for d in restored) == ["c3", "c4"]
    assert active(svc, "C") == ["c1", "c2", "c3", "c4", "c5"]
    assert svc.client("C").token_usage == 95
    assert svc.audit()[-1].action == "auto_restore"
    with pytest.raises(BadInput, match=f"run {report.run_id}: run id: .*already restored"):
        svc.restore_run(ADMIN, report.run_id)


@both_stores
def test_largest_first_when_on_globally(store_factory):
    svc = over_budget(store_factory, TOKENBUDGET_AUTO_DEACTIVATE="on",
                      TOKENBUDGET_AUTO_DEACTIVATE_ORDER="largest")
    svc.set_auto_deactivate(ADMIN, "B", False)  # B opts out of the global policy
    plan = svc.plan_due()
    assert [(d.client_id, [c.id for c in d.attributes]) for d in plan.deactivations] == [
        ("C", ["c1"])]  # 50 tokens off leaves 45 of 70: one is enough
    svc.run_due(ADMIN)
    assert active(svc, "C") == ["c2", "c3", "c4", "c5"] and active(svc, "B") == ["b1"]
    assert [a.action for a in svc.audit()].count("auto_deactivate") == 1


@pytest.mark.parametrize("store_factory", ["airtable"], indirect=True)
def test_dry_run_on_airtable_only_reads(store_factory):
    """The Airtable store's dry run: no write request reaches the base, no sidecar row
    changes; the real pass then writes what the dry run listed."""
    svc = over_budget(store_factory, TOKENBUDGET_AUTO_DEACTIVATE="on")
    svc.clock.now = datetime(2027, 3, 5, tzinfo=UTC)  # every reset overdue
    sidecar = dump(store_factory.sidecar)
    store_factory.server.reset_log()
    plan = svc.plan_due()
    assert [r.client_id for r in plan.resets] == ["A", "B", "C"]
    assert [d.client_id for d in plan.deactivations] == ["B", "C"]
    assert {r.kind for r in store_factory.server.requests} <= {"list"}  # none: the mirror
    assert dump(store_factory.sidecar) == sidecar
    svc.run_due(ADMIN)
    assert store_factory.server.count(kind="update") > 0
    assert active(svc, "B") == [] and active(svc, "C") == ["c1", "c2", "c5"]


def test_admin_switch_kept_with_the_data_wins_over_the_environment(tmp_path):
    svc = make_service(tmp_path / "p.db", names={"TOKENBUDGET_AUTO_DEACTIVATE": "off"})
    assert svc.automation_policy().auto_deactivate is False
    svc.set_auto_deactivate(ADMIN, None, True, "largest")
    policy = svc.automation_policy()
    assert (policy.auto_deactivate, policy.order) == (True, "largest")
    assert svc.audit()[-1].after == {"enabled": True, "order": "largest"}
    with pytest.raises(NotAllowed):
        svc.set_auto_deactivate(Actor("v", "viewer"), None, False)
    with pytest.raises(BadInput, match="policy: order"):
        svc.set_auto_deactivate(ADMIN, None, None, "random")
    svc.set_auto_deactivate(ADMIN, None, False)  # "off" for everyone is stored as off
    assert svc.automation_policy().auto_deactivate is False
    assert make_service(tmp_path / "p.db", names={"TOKENBUDGET_AUTO_DEACTIVATE": "on"}
                        ).automation_policy().auto_deactivate is False  # the stored choice wins


def test_viewers_cannot_run_the_pass_or_restore(tmp_path):
    svc = make_service(tmp_path / "v.db")
    for call in (lambda: svc.run_due(Actor("v", "viewer")),
                 lambda: svc.restore_run(Actor("v", "analyst"), "x"),
                 lambda: svc.auto_deactivate(Actor("v", "viewer"), "A", "x")):
        with pytest.raises(NotAllowed):
            call()


def test_activation_times_from_the_audit_log():
    at = [datetime(2026, 11, d, tzinfo=UTC) for d in (1, 2, 3)]
    entries = [
        AuditEntry(at[0], "a", "attribute.update", "C", {"x": {"active": False}},
                   {"x": {"active": True}}),
        AuditEntry(at[1], "a", "attribute.update", "C", {"x": {"active": True}},
                   {"x": {"active": True}}),  # a text edit: not an activation
        AuditEntry(at[2], "a", "auto_restore", "C", {"y": {"active": False}},
                   {"y": {"active": True}, "run": "r1"})]
    assert automation.activation_times(entries) == {"x": at[0], "y": at[2]}


# history -----------------------------------------------------------------------------------
@both_stores
def test_every_budget_change_records_a_snapshot(store_factory, small):
    small.set_service_level(ADMIN, "A", 2)
    small.set_budget_override(ADMIN, "A", 150)
    small.grant_topup(ADMIN, "A", 25)
    small.set_tier_limit(ADMIN, 2, 300)  # B is on level 2 with no override
    small.apply(ADMIN, Change("A", active={"a1": False}))
    small.reset(ADMIN, "A")
    assert [h[2:] for h in small.history("A")] == [(80, 200), (80, 150), (80, 175), (40, 175),
                                                   (40, 150)]
    assert [h[2:] for h in small.history("B")] == [(150, 300)]
    small.set_encoding(ADMIN, "chars4")  # every usage moves: a snapshot for each client
    assert {h[0]: h[2:] for h in small.history()[-2:]} == {
        "A": (small.client_usage("A").usage, 150), "B": (small.client_usage("B").usage, 300)}


# the Scheduled pass page -----------------------------------------------------------------
PASS_PAGE = "app_pages/scheduled_pass.py"


def page_data(path):
    """C is months behind its reset date and over budget; A fits and is not due."""
    svc = make_service(path)
    svc.load_data_set(
        ADMIN, [Tier(1, "Basic", 100)],
        [Client("A", "Alpha", 1, budget_reset_date=date(2099, 1, 1)),
         Client("C", "Gamma", 1, token_budget=50, budget_reset_date=date(2020, 1, 1))],
        [Attribute("a1", "A", "Size", True, words(30), "", ""),
         Attribute("c1", "C", "Big", True, words(40), "", ""),
         Attribute("c2", "C", "Small", True, words(20), "", "")])
    return svc


def page_text(at) -> str:
    return "\n".join(str(m.value) for m in (*at.markdown, *at.caption))


def test_pass_page_previews_then_runs_the_pass_after_confirmation(app, tmp_path):
    svc = page_data(tmp_path / "p.db")
    at = app(svc.store.path, PASS_PAGE)
    text = page_text(at)
    assert "- reset Gamma (C): due since 2020-01-01" in text
    assert "- email 100% alert for Gamma (C) to nobody" in text
    assert "**email is off** (SMTP_HOST is not set)" in text
    assert "No automatic deactivation has happened yet." in text
    at.button(key="run_due").click().run()
    assert "Run the pass now?" in page_text(at)
    assert svc.audit() == []  # nothing before the confirmation
    at.button(key="run_due_confirm").click().run()
    assert not at.exception
    assert [(e.action, e.client_id) for e in svc.audit()] == [("reset", "C")]
    assert "- Gamma reset: usage 60 tokens" in page_text(at)  # what the last pass did
    assert "- reset Gamma" not in page_text(at)  # no longer due


def test_pass_page_switches_policy_deactivates_and_restores(app, tmp_path):
    svc = page_data(tmp_path / "p.db")
    at = app(svc.store.path, PASS_PAGE)
    at.selectbox(key="pass_client").select("C").run()
    at.selectbox(key="auto_client_C").select(True).run()
    assert not at.exception and svc.auto_deactivate_flags() == {"C": True}
    at.radio(key="auto_order").set_value("largest").run()
    assert svc.automation_policy().order == "largest"
    assert ("- deactivate for Gamma (C), largest first: Big (40 tokens); "
            "60 / 50 tokens (120% used) -> 20 / 50 tokens (40% used)") in page_text(at)
    at.button(key="run_due").click().run()
    at.button(key="run_due_confirm").click().run()
    assert not at.exception
    assert sorted(a.id for a in svc.attributes("C") if a.active) == ["c2"]
    (run,) = {d.run_id for d in svc.deactivation_runs()}
    at.button(key="restore").click().run()
    text = page_text(at)
    assert f"Switch back on the 1 attribute(s) run **{run}** switched off: Big (40 tokens)?" in text
    assert ("- Gamma: 20 / 50 tokens (40% used) → 60 / 50 tokens (120% used) — "
            "**over budget**") in text
    at.button(key="restore_confirm").click().run()
    assert not at.exception
    assert sorted(a.id for a in svc.attributes("C") if a.active) == ["c1", "c2"]
    assert [e.action for e in svc.audit()][-1] == "auto_restore"


def test_pass_page_lists_sent_and_failed_notifications(app, tmp_path):
    from budget.model import Notification
    svc = page_data(tmp_path / "p.db")
    at_time = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    svc.store.save_notification(Notification("A", 80, date(2026, 11, 1), "sent", at_time,
                                             ("ops@alpha.example",), "subject"))
    svc.store.save_notification(Notification("C", 100, date(2026, 11, 1), "failed", at_time,
                                             ("ops@gamma.example",), "subject",
                                             "SMTP mail:587: 554 rejected"))
    at = app(svc.store.path, PASS_PAGE)
    (table,) = [d.value for d in at.dataframe if "attempts" in d.value.columns]
    rows = {(r.client, r.threshold, r.status, r.error) for r in table.itertuples()}
    assert rows == {("Alpha", "80%", "✅ sent", ""),
                    ("Gamma", "100%", "❌ failed", "SMTP mail:587: 554 rejected")}


def test_a_wrong_setting_is_named_before_anything_runs(app, tmp_path, monkeypatch):
    svc = page_data(tmp_path / "p.db")
    monkeypatch.setenv("SMTP_HOST", "mail.example")
    monkeypatch.setenv("SMTP_SECURITY", "ssl3")
    at = app(svc.store.path, None)
    assert [e.value for e in at.error] == [
        "The app cannot start: settings: SMTP_SECURITY: Input should be 'starttls', 'tls' or "
        "'none', got 'ssl3'. Fix it in the environment or .streamlit/secrets.toml, then reload."]
    assert not at.dataframe  # no page ran on a half-read configuration


def test_cli_policy_runs_and_restore(tmp_path):
    path = tmp_path / "p.db"
    page_data(path)  # C: 60 of 50, a year behind
    assert run_cli(path, "auto-deactivate", "on", "--client", "C", "--order", "largest")[0] == 2
    assert run_cli(path, "auto-deactivate", "off", "--order", "largest")[0] == 0
    assert run_cli(path, "auto-deactivate", "on", "--client", "C")[0] == 0
    code, out = run_cli(path, "run-due")
    assert code == 0 and "deactivated for Gamma (C), largest first: Big (40 tokens)" in out
    code, listing = run_cli(path, "deactivations", "--json")
    (row,) = __import__("json").loads(listing)
    assert (row["client_id"], row["attribute_id"], row["tokens"]) == ("C", "c1", 40)
    code, out = run_cli(path, "restore", row["run_id"])
    assert (code, out.strip()) == (0, f"restored 1 attribute(s) of run {row['run_id']}: C/c1")
    assert run_cli(path, "restore", row["run_id"])[0] == 2  # already restored
    assert run_cli(path, "auto-deactivate", "default")[0] == 2  # needs --client
    assert make_service(path).auto_deactivate_flags() == {"C": True}
    assert run_cli(path, "notifications")[1] == "\n"  # email is off: nothing attempted
