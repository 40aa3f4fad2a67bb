"""Two hosts on one Airtable base that share nothing but the base (the loopback server)
and the sidecar in PostgreSQL (AIRTABLE_SIDECAR=postgresql://...): separate working
folders, separate processes, and still one audit log, one alert state and one pass
lock. With the sidecar in a file, each folder would have its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.support.factories import ADMIN, AIRTABLE_ON_POSTGRESQL
from tests.test_pass_lock import CLIENTS, NOW_ARG, load_clients_at_85, store_env

pytestmark = pytest.mark.parametrize("store_factory", [AIRTABLE_ON_POSTGRESQL], indirect=True)

# a host's process that holds the scheduled pass's lock until it is killed
_HOLD_PASS = """
import time
from budget.service import BudgetService
from budget.settings import Settings
with BudgetService.from_settings(Settings.load()).store.pass_lock() as got:
    print(got, flush=True)
    time.sleep(600)
"""


class Host:
    """A working folder of its own and the environment every host is given."""

    def __init__(self, folder, env: dict[str, str]) -> None:
        folder.mkdir()
        self.folder, self.env = folder, env

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, *args], cwd=self.folder, env=self.env,
                                text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def tokenbudget(self, *args: str) -> tuple[int, str]:
        p = self.popen("-m", "budget", *args)
        out, err = p.communicate(timeout=120)
        assert not err.strip() or p.returncode != 0, err
        return p.returncode, out


def test_two_hosts_share_one_audit_log_alert_state_and_pass_lock(store_factory, smtp_server,
                                                                  tmp_path):
    svc = load_clients_at_85(store_factory, smtp_server)  # each client is due one 80 % alert
    env = {**{k: v for k, v in os.environ.items()
              if not k.startswith(("TOKENBUDGET_", "AIRTABLE_", "SMTP_"))},
           **store_env(store_factory),
           **smtp_server.settings(TOKENBUDGET_ALERT_RECIPIENTS="contact")}
    one, two = Host(tmp_path / "host1", env), Host(tmp_path / "host2", env)

    # one audit log: what one host writes, the other reads
    assert one.tokenbudget("set-budget", "C00", "120")[0] == 0
    code, out = two.tokenbudget("audit", "--client", "C00", "--json")
    assert code == 0
    (entry,) = [e for e in json.loads(out) if e["actor"] != ADMIN.name]
    assert entry["client_id"] == "C00" and entry["after"] != entry["before"]

    # one alert state: the second host's pass finds every alert already sent
    assert one.tokenbudget("run-due", "--now", NOW_ARG)[0] == 0
    sent_by_one = len(smtp_server.inbox.messages)
    assert two.tokenbudget("run-due", "--now", NOW_ARG)[0] == 0
    print(f"\nhost 1 sent {sent_by_one} alerts; host 2 then sent "
          f"{len(smtp_server.inbox.messages) - sent_by_one}")
    assert sent_by_one == CLIENTS - 1  # C00's new budget of 120 puts it under 80 %
    assert len(smtp_server.inbox.messages) == sent_by_one
    assert len(svc.notifications()) == CLIENTS - 1  # the test process sees them too

    # one pass lock: while a process of host 1 holds it, host 2's pass does nothing
    holder = one.popen("-c", _HOLD_PASS)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "True", holder.stderr
        code, out = two.tokenbudget("run-due", "--now", NOW_ARG)
        assert code == 0
        assert out.strip().startswith("another scheduled pass is running (since ")
        assert out.strip().endswith(f"pid {holder.pid}); this one did nothing")
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # a host that dies releases the lock
        holder.wait(10)
    code, out = two.tokenbudget("run-due", "--now", NOW_ARG)
    assert code == 0 and "did nothing" not in out

    # and neither folder holds a sidecar file of its own: `airtable check` says where it is
    code, out = two.tokenbudget("airtable", "check")
    password = str(store_factory.sidecar).split(":")[2].split("@")[0]
    assert code == 0 and "live in PostgreSQL postgresql://" in out
    assert "(schema airtable_sidecar) (not in Airtable)" in out and password not in out
    assert not list(tmp_path.rglob("*.db"))
