"""Scheduled passes started together (cron on several hosts, the dashboard's button)
never send an alert twice: the pass lock in the store lets one pass run while the
others say so and do nothing, and every alert is claimed in the store under its key
(client, threshold, period) before it is sent. Measured against a real SMTP server."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import nullcontext
from datetime import date

import pytest

from budget.model import Attribute, Client, Tier
from budget.stores import SQLiteStore
from budget.stores.lease_lock import LeaseLock
from tests.support.airtable_server import API_KEY, BASE_ID
from tests.support.factories import (ADMIN, NOW, STORES_AND_SIDECARS, Clock, make_service,
                                     words)
from tests.support.smtp_server import SmtpServer

CLIENTS = 20
PASSES = 5  # `tokenbudget run-due` processes, besides the dashboard's pass in a thread
NOW_ARG = NOW.strftime("%Y-%m-%dT%H:%M")

# a process that imports everything, says it is ready, waits for the gate, then runs
# `tokenbudget run-due`: the passes start within milliseconds of each other
_RUNNER = """
import sys, time
from pathlib import Path
from budget.cli import main
Path(sys.argv[1]).touch()
while not Path(sys.argv[2]).exists():
    time.sleep(0.002)
sys.exit(main(sys.argv[3:]))
"""


@pytest.fixture
def slow_smtp():
    """Each message takes 50 ms to be accepted, so a pass of 20 emails lasts a second:
    passes started together overlap for all of it."""
    server = SmtpServer(delay=0.05)
    server.controller.start()
    yield server
    server.controller.stop()


def store_env(factory) -> dict[str, str]:
    """The environment that makes `tokenbudget` open the factory's store."""
    if factory.kind == "sqlite":
        return {"TOKENBUDGET_STORE": f"sqlite:///{factory.path}"}
    if factory.kind == "postgresql":
        return {"TOKENBUDGET_STORE": factory.url}
    return {"TOKENBUDGET_STORE": "airtable", "AIRTABLE_API_KEY": API_KEY,
            "AIRTABLE_BASE_ID": BASE_ID, "AIRTABLE_ENDPOINT_URL": factory.server.url,
            "AIRTABLE_SIDECAR": str(factory.sidecar), "AIRTABLE_MIN_INTERVAL": "0",
            "AIRTABLE_RATE_LIMIT_PENALTY": "0.05", "AIRTABLE_RETRY_BACKOFF": "0.01",
            "AIRTABLE_CLIENT_ID_FIELD": "Client ID",
            "AIRTABLE_ATTRIBUTE_ID_FIELD": "Attribute ID"}


def load_clients_at_85(store_factory, server: SmtpServer, **extra):
    """20 clients at 85 % of a 100-token budget: each is due one 80 % alert."""
    svc = store_factory.service(Clock(NOW), names=server.settings(
        TOKENBUDGET_ALERT_RECIPIENTS="contact", **extra))
    svc.load_data_set(
        ADMIN, [Tier(1, "Basic", 100)],
        [Client(f"C{i:02}", f"Client {i:02}", 1, budget_reset_date=date(2026, 12, 1),
                email=f"ops@c{i:02}.example") for i in range(CLIENTS)],
        [Attribute(f"a{i:02}", f"C{i:02}", "Size", True, words(85), "", "")
         for i in range(CLIENTS)])
    return svc


@pytest.mark.parametrize("store_factory", STORES_AND_SIDECARS, indirect=True)
def test_passes_started_together_send_each_alert_once(store_factory, slow_smtp, tmp_path):
    svc = load_clients_at_85(store_factory, slow_smtp)
    env = {**{k: v for k, v in os.environ.items()
              if not k.startswith(("TOKENBUDGET_", "AIRTABLE_", "SMTP_"))},
           **store_env(store_factory), **slow_smtp.settings(TOKENBUDGET_ALERT_RECIPIENTS="contact")}
    gate = tmp_path / "gate"
    procs = [subprocess.Popen([sys.executable, "-c", _RUNNER, str(tmp_path / f"ready{n}"),
                               str(gate), "run-due", "--now", NOW_ARG],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for n in range(PASSES)]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready{n}").exists() for n in range(PASSES)):
        assert time.monotonic() < deadline, "the pass processes did not start"
        time.sleep(0.01)
    reports = []
    page = threading.Thread(target=lambda: reports.append(svc.run_due(ADMIN)))
    gate.touch()
    page.start()  # the dashboard's "Run the pass now", as the page calls it
    outs = [p.communicate(timeout=120) for p in procs]
    page.join(120)

    assert [p.returncode for p in procs] == [0] * PASSES, outs
    per_key = slow_smtp.inbox.per_subject()
    skipped = (sum("this one did nothing" in out for out, _ in outs)
               + sum(getattr(r, "skipped", False) for r in reports))
    print(f"\n{store_factory.kind}: {len(slow_smtp.inbox.messages)} emails for "
          f"{len(per_key)} keys, per key {sorted(per_key.values())}; "
          f"{skipped} of {PASSES + 1} passes skipped")
    assert len(per_key) == CLIENTS
    assert set(per_key.values()) == {1}, per_key
    sent = {(n.client_id, n.threshold, n.period, n.status, n.attempts)
            for n in svc.notifications()}
    assert sent == {(f"C{i:02}", 80, date(2026, 11, 1), "sent", 1) for i in range(CLIENTS)}


@pytest.mark.parametrize("store_factory", STORES_AND_SIDECARS, indirect=True)
def test_claims_alone_keep_each_alert_to_one_email(store_factory, slow_smtp):
    """Passes that overlap although the lock should have kept them apart (a stalled
    pass whose lease ran out): the claims still send each alert once."""
    svc = load_clients_at_85(store_factory, slow_smtp)
    passes = [store_factory.service(Clock(NOW), names=slow_smtp.settings(
        TOKENBUDGET_ALERT_RECIPIENTS="contact")) for _ in range(4)]
    for p in passes:
        p.store.pass_lock = lambda: nullcontext(True)  # type: ignore[method-assign]
    threads = [threading.Thread(target=p.run_due, args=(ADMIN,)) for p in passes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(slow_smtp.inbox.per_subject().values()) == [1] * CLIENTS
    assert {n.status for n in svc.notifications()} == {"sent"}


@pytest.mark.parametrize("store_factory", STORES_AND_SIDECARS, indirect=True)
def test_a_stale_claim_is_taken_over_and_the_alert_sent_once(store_factory, slow_smtp):
    svc = load_clients_at_85(store_factory, slow_smtp)
    period = date(2026, 11, 1)
    store = svc.store
    assert store.claim_alert("C00", (80,), period, "dead-host pid 1 run x", 0.05)
    assert store.claim_alert("C01", (80,), period, "live-host pid 2 run y", 900)
    assert not store.claim_alert("C01", (80,), period, "another pass", 900)  # held
    time.sleep(0.1)  # C00's lease runs out: its pass died
    report = svc.run_due(ADMIN)
    per_key = slow_smtp.inbox.per_subject()
    assert per_key[("ops@c00.example",
                    "[tokenbudget] Client 00 reached 80% of its token budget")] == 1
    assert len(per_key) == CLIENTS - 1  # C01's live claim: its own pass sends it
    assert not any("Client 01" in line for line in report.lines)
    assert set(per_key.values()) == {1}
    assert not store.claim_alert("C00", (80,), period, "a later pass", 900)  # sent
    svc.run_due(ADMIN)  # nothing new: no second email
    assert len(slow_smtp.inbox.messages) == CLIENTS - 1


@pytest.mark.parametrize("store_factory", STORES_AND_SIDECARS, indirect=True)
def test_a_second_pass_while_the_first_holds_the_lock_does_nothing_and_says_so(
        store_factory, slow_smtp, tmp_path, monkeypatch, capsys):
    from budget.cli import main
    svc = load_clients_at_85(store_factory, slow_smtp)
    monkeypatch.chdir(tmp_path)
    for k, v in {**store_env(store_factory),
                 **slow_smtp.settings(TOKENBUDGET_ALERT_RECIPIENTS="contact")}.items():
        monkeypatch.setenv(k, v)
    first = store_factory.open()
    with first.pass_lock() as got:
        assert got
        holder = first.pass_holder()
        assert holder is not None and holder.pid == os.getpid()
        assert main(["run-due", "--now", NOW_ARG]) == 0
        out = capsys.readouterr().out
        report = svc.run_due(ADMIN)
    assert out.strip() == (f"another scheduled pass is running (since "
                           f"{holder.since:%H:%M} UTC, on {holder.host} pid {os.getpid()}); "
                           "this one did nothing")
    assert report.skipped and report.lines == (out.strip(),) and report.failed == 0
    assert slow_smtp.inbox.messages == [] and svc.notifications() == []
    assert first.pass_holder() is None  # released
    assert not svc.run_due(ADMIN).skipped
    assert len(slow_smtp.inbox.messages) == CLIENTS


def test_the_dashboard_button_says_another_pass_runs(app, tmp_path):
    path = tmp_path / "p.db"
    svc = make_service(path)
    svc.load_data_set(ADMIN, [Tier(1, "Basic", 100)],
                      [Client("C", "Gamma", 1, budget_reset_date=date(2020, 1, 1))],
                      [Attribute("c1", "C", "Big", True, words(40), "", "")])
    at = app(path, "app_pages/scheduled_pass.py")
    with svc.store.pass_lock():
        at.button(key="run_due").click().run()
        at.button(key="run_due_confirm").click().run()
    assert not at.exception
    (info,) = at.info
    assert info.value.startswith("another scheduled pass is running (since ")
    assert info.value.endswith("; this one did nothing")
    assert svc.audit() == []  # the reset that was due did not happen


def test_the_sqlite_lease_is_renewed_taken_over_when_stale_and_deleted(tmp_path):
    path = str(tmp_path / "lock.db")
    SQLiteStore(path)
    lock = LeaseLock(path, lease=0.4, renew_every=0.05)
    with lock.held() as got:
        assert got
        time.sleep(0.8)  # twice the lease: the renewals keep it
        with LeaseLock(path).held() as second:
            assert not second
    assert LeaseLock(path).holder() is None  # deleted at the end
    with sqlite3.connect(path) as conn:  # a pass that died: its lease ran out
        conn.execute("INSERT INTO locks VALUES ('pass', 'dead', 'gone-host', 1, ?, ?)",
                     (NOW.isoformat(), time.time() - 1))
    with LeaseLock(path).held() as got:
        assert got


def test_older_sqlite_files_gain_the_claims_table(tmp_path):
    path = tmp_path / "old.db"
    SQLiteStore(str(path))
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE alert_claims")
    store = SQLiteStore(str(path))
    assert store.claim_alert("A", (80, 90), date(2026, 11, 1), "me", 900)
    assert not store.claim_alert("A", (90,), date(2026, 11, 1), "someone else", 900)


@pytest.mark.parametrize("store_factory", ["postgresql"], indirect=True)
def test_a_postgresql_database_of_the_first_schema_gains_the_claims(store_factory):
    import psycopg

    from budget.stores.postgresql.migrations import LATEST, MIGRATIONS, migrate
    with psycopg.connect(store_factory.url, autocommit=True) as conn:
        assert migrate(conn, "test", {1: MIGRATIONS[1]}) == 1  # as the last release left it
    store = store_factory.open()
    assert store.schema_version == LATEST
    assert store.claim_alert("A", (80,), date(2026, 11, 1), "me", 900)
    assert not store.claim_alert("A", (80,), date(2026, 11, 1), "someone else", 900)
