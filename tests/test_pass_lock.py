"""Scheduled passes started together (cron on several hosts, the dashboard's button)
never send an alert twice: the pass lock in the store lets one pass run while the
others say so and do nothing, and every alert is claimed in the store under its key
(client, threshold, period) before it is sent. Measured against a real SMTP server."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import date

import pytest

from budget.model import Attribute, Client, Tier
from tests.support.airtable_server import API_KEY, BASE_ID
from tests.support.factories import ADMIN, NOW, STORES, Clock, words
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


@pytest.mark.parametrize("store_factory", STORES, indirect=True)
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
