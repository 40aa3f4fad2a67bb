"""The Airtable store at its edges, against the loopback Airtable over real HTTP:
duplicate ids, answers that are not Airtable's JSON, writes whose answer is lost or
whose process dies, a bad record inside a batch, and the 429 penalty under load."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime

import psycopg
import pytest

from budget import cli
from budget.model import AuditEntry, Change, Deactivation
from budget.service import BudgetService
from budget.settings import Settings
from budget.stores.airtable import AirtableStore, PartialWrite
from budget.stores.airtable.deferred import Deferred
from budget.stores.airtable.writer_lock import writer_lock
from budget.stores.base import StoreBusy, StoreError
from tests.support.airtable_server import FakeAirtable, standard_base
from tests.support.api_server import AS_ADMIN, AS_VIEWER, serve
from tests.support.factories import ADMIN, Clock, airtable_config, env_for

IDS = {"AIRTABLE_CLIENT_ID_FIELD": "Client ID", "AIRTABLE_ATTRIBUTE_ID_FIELD": "Attribute ID"}
TEXT = "Score leads from the northern region by company size and recent funding. " * 4


@pytest.fixture
def base():
    server = standard_base(FakeAirtable(), id_fields=True)
    server.start()
    yield server
    server.stop()


def service(server: FakeAirtable, tmp_path, sidecar: str | None = None, **overrides: str
            ) -> BudgetService:
    """The service on the base, with the sidecar in the folder's file, or at `sidecar`."""
    store = AirtableStore(airtable_config(server, sidecar or tmp_path / "sidecar.db", **IDS,
                                          **overrides))
    return BudgetService(store, Settings(store="airtable"), Clock())


def client_with_attribute(server: FakeAirtable, cid: str, text: str = TEXT,
                          aid: str | None = None, name: str | None = None) -> str:
    rid = server.put("Clients", {"Client ID": cid, "Client Name": name or f"Client {cid}",
                                 "Service Level": 1, "Budget Reset Date": "2026-11-01"})
    server.put("Scoring Attributes", {"Attribute ID": aid or f"{cid}-A", "Name": "Region",
                                      "Active": True, "Client": [rid], "Instructions": text})
    return rid


# duplicate ids ----------------------------------------------------------------------------
@pytest.fixture
def duplicated(base):
    """C001 twice (the copy made by duplicating a row in Airtable), C002 healthy."""
    first = client_with_attribute(base, "C001", aid="A1")
    copy = client_with_attribute(base, "C001", aid="A1-copy", name="Client C001 (copy)")
    healthy = client_with_attribute(base, "C002")
    base.reset_log()
    return first, copy, healthy


def test_a_duplicate_client_id_is_refused_for_every_read_and_write_in_the_cli(
        base, duplicated, tmp_path, monkeypatch, capsys):
    first, copy, _ = duplicated
    env_for(base, tmp_path, monkeypatch, **IDS)
    before = base.records("Clients")
    for argv in (["usage", "--client", "C001"], ["attributes", "C001"],
                 ["apply", "C001", "A1", "--set", "Signals=" + "more words " * 20],
                 ["validate", "C001", "A1", "--activate"], ["reset", "C001"],
                 ["set-tier", "C001", "2"], ["set-budget", "C001", "9000"]):
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert first in err and copy in err and "'Clients'" in err and "Client ID" in err
        assert "duplicate id 'C001'" in err
    assert base.records("Clients") == before
    # the other client still works, and every listing names the duplicate
    assert cli.main(["usage"]) == 0
    out, err = capsys.readouterr()
    assert "C002" in out and "C001" not in out
    assert first in err and copy in err
    assert cli.main(["reset", "--all"]) == 0
    out, err = capsys.readouterr()
    assert "Client C002 reset" in out and first in err and copy in err
    after = {r["id"]: r["fields"] for r in base.records("Clients")}
    assert "Token Usage" not in after[first] and "Token Usage" not in after[copy]
    assert after[first]["Budget Reset Date"] == after[copy]["Budget Reset Date"] == "2026-11-01"
    assert cli.main(["--strict", "usage"]) == 2


def test_a_duplicate_client_id_is_422_in_the_api_and_the_others_answer(
        base, duplicated, tmp_path):
    first, copy, _ = duplicated
    svc = service(base, tmp_path)
    with serve(svc) as api:
        r = api.get("/api/token-usage", params={"client_id": "C001"}, headers=AS_VIEWER)
        assert r.status_code == 422 and first in r.text and copy in r.text
        r = api.post("/api/clients/C001/reset", headers=AS_ADMIN)
        assert r.status_code == 422 and "duplicate id 'C001'" in r.text
        r = api.patch("/api/attributes/A1", json={"fields": {"Signals": "x " * 50}},
                      headers=AS_ADMIN)
        assert r.status_code == 422 and first in r.text
        r = api.get("/api/token-usage", headers=AS_VIEWER)
        assert r.status_code == 200 and [u["client_id"] for u in r.json()] == ["C002"]
        assert api.post("/api/clients/C002/reset", headers=AS_ADMIN).status_code == 200


def test_apply_cannot_pass_the_budget_through_a_duplicate(base, duplicated, tmp_path):
    """The reproduction: validated against one record, summed over both."""
    svc = service(base, tmp_path)
    with pytest.raises(Exception, match="duplicate id 'C001'"):
        svc.apply(ADMIN, Change("C001", fields={"A1": {"Signals": "word " * 2500}}))
    assert {a["fields"].get("Signals") for a in base.records("Scoring Attributes")} == {None}
    assert svc.audit() == []


def test_a_duplicate_attribute_id_is_refused_and_named(base, tmp_path):
    rid = client_with_attribute(base, "C003", aid="A9")
    twin = base.put("Scoring Attributes", {"Attribute ID": "A9", "Name": "Twin",
                                           "Active": True, "Client": [rid],
                                           "Instructions": "Short."})
    (orig,) = [r["id"] for r in base.records("Scoring Attributes") if r["id"] != twin]
    svc = service(base, tmp_path)
    with pytest.raises(Exception, match="duplicate id 'A9'") as err:
        svc.apply(ADMIN, Change("C003", fields={"A9": {"Signals": "more"}}))
    assert orig in str(err.value) and twin in str(err.value)
    assert "'Scoring Attributes'" in str(err.value) and "Attribute ID" in str(err.value)
    svc.usage_report()
    assert any(orig in w and twin in w for w in svc.store_warnings)


# answers that are not Airtable's JSON -------------------------------------------------------
@pytest.mark.parametrize("answer", ["cut", "html", "shape"])
def test_a_garbled_answer_is_retried_then_a_store_error_naming_the_table(
        base, tmp_path, monkeypatch, capsys, answer):
    client_with_attribute(base, "C001")
    # every run asks Airtable what changed, as when the sync interval has passed
    env_for(base, tmp_path, monkeypatch, **IDS, AIRTABLE_RETRIES="2", AIRTABLE_SYNC_INTERVAL="0")
    base.fail(200, answer=answer, kind="list", table="Clients", times=2)
    assert cli.main(["usage"]) == 0, capsys.readouterr().err  # retried: a GET is idempotent
    assert "C001" in capsys.readouterr().out
    base.fail(200, answer=answer, kind="list", table="Clients", times=99)
    assert cli.main(["usage"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Airtable table 'Clients'" in err, err
    assert "not Airtable's JSON" in err
    with serve(service(base, tmp_path, AIRTABLE_RETRIES="1", AIRTABLE_SYNC_INTERVAL="0")) as api:
        r = api.get("/api/token-usage", headers=AS_VIEWER)
        assert r.status_code == 503 and "Retry-After" in r.headers
        assert "Airtable table 'Clients'" in r.json()["message"]


# writes never unaudited --------------------------------------------------------------------
def fill(server: FakeAirtable, clients: int) -> list[str]:
    """Clients due for a reset (reset date in the past), one attribute each."""
    rids = []
    for i in range(clients):
        rid = server.put("Clients", {"Client ID": f"C{i:04d}", "Client Name": f"Client {i:04d}",
                                     "Service Level": 1, "Token Usage": 0,
                                     "Budget Reset Date": "2026-11-01"})
        server.put("Scoring Attributes", {"Attribute ID": f"A{i:04d}", "Name": "Region",
                                          "Active": True, "Client": [rid],
                                          "Instructions": f"Score leads from region {i}."})
        rids.append(rid)
    server.reset_log()
    return rids


def unaudited(server: FakeAirtable, sidecar) -> tuple[int, int, int]:
    """(clients changed in Airtable, of them without a reset audit row, audit rows more
    than one per client), read from the base and the sidecar (a file, or a PostgreSQL
    URL) as they are."""
    changed = {r["fields"]["Client ID"] for r in server.records("Clients")
               if r["fields"].get("Budget Reset Date") != "2026-11-01"}
    sql = "SELECT client_id FROM audit_log WHERE action = 'reset'"
    if str(sidecar).startswith("postgresql://"):
        with psycopg.connect(str(sidecar)) as pg:
            rows = [c for (c,) in pg.execute(sql.replace("audit_log",
                                                         "airtable_sidecar.audit_log"))]
    else:
        with sqlite3.connect(sidecar) as conn:
            rows = [c for (c,) in conn.execute(sql)]
    return len(changed), len(changed - set(rows)), len(rows) - len(set(rows))


@pytest.mark.parametrize("fault", [
    {"status": 200, "answer": "cut", "apply": True},  # the answer cut off after it landed
    {"status": 200, "answer": "html", "apply": True},
    {"status": 500, "apply": True},  # a proxy's 500 in front of a write that went through
    {"status": 0, "apply": True},  # the connection dropped after sending
    {"status": 200, "delay": 1.5, "apply": True},  # answered after the read timeout
])
def test_a_write_whose_answer_is_lost_is_read_again_and_audited(base, tmp_path, fault):
    fill(base, 25)
    svc = service(base, tmp_path, AIRTABLE_RETRIES="1", AIRTABLE_READ_TIMEOUT="0.5")
    base.fail(kind="update", table="Clients", after=1, times=99, **fault)
    results = svc.reset_all(ADMIN)
    assert all(r.changed for r in results)
    assert unaudited(base, tmp_path / "sidecar.db") == (25, 0, 0)
    assert len(svc.history()) == 25


def test_an_attribute_changed_behind_a_500_is_audited(base, tmp_path):
    fill(base, 1)
    svc = service(base, tmp_path, AIRTABLE_RETRIES="1")
    base.fail(500, kind="update", table="Scoring Attributes", apply=True, times=99)
    svc.apply(ADMIN, Change("C0000", fields={"A0000": {"Signals": "Funding rounds."}}))
    (attr,) = base.records("Scoring Attributes")
    assert attr["fields"]["Signals"] == "Funding rounds."
    assert [e.action for e in svc.audit("C0000")] == ["attribute.edit"]


def test_a_write_not_known_to_have_landed_is_settled_by_the_next_store(base, tmp_path):
    fill(base, 12)
    svc = service(base, tmp_path, AIRTABLE_RETRIES="1")
    down = base.fail(0, kind="list", times=0)  # Airtable goes away once a write is sent
    stale = base.fail(0, kind="update", table="Clients", apply=True, times=99,
                      call=lambda: setattr(down, "times", 99))
    with pytest.raises(StoreError, match="not known whether it landed"):
        svc.reset_all(ADMIN)
    # the first batch landed, its answer lost; sending stopped there
    assert unaudited(base, tmp_path / "sidecar.db") == (10, 10, 0)
    stale.times = down.times = 0  # Airtable is back
    service(base, tmp_path)  # the next start
    assert unaudited(base, tmp_path / "sidecar.db") == (10, 0, 0)


def killed_reset(server: FakeAirtable, tmp_path, monkeypatch, step: int, apply: bool,
                 kind: str | None = None, sidecar: str | None = None
                 ) -> tuple[int, int, int]:
    """`tokenbudget reset --all` in a process of its own, killed (-9) at its request
    number `step` (counted from 0; of that kind of request when given), before or after
    Airtable applied it; then what the kill left: unaudited() of the base and the sidecar
    as the process left them (the sidecar in the folder's file, or at `sidecar`)."""
    env_for(server, tmp_path, monkeypatch, **IDS,
            AIRTABLE_SIDECAR=sidecar or str(tmp_path / "sidecar.db"))
    proc: list[subprocess.Popen] = []

    def kill() -> None:
        proc[0].kill()
        proc[0].wait()

    server.faults.clear()
    server.fail(0, after=step, apply=apply, call=kill, kind=kind)
    proc.append(subprocess.Popen([sys.executable, "-m", "budget", "reset", "--all"],
                                 cwd=tmp_path, env=os.environ.copy(),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    proc[0].wait(timeout=120)
    server.faults.clear()
    return unaudited(server, sidecar or tmp_path / "sidecar.db")


def requests_of_a_reset(server: FakeAirtable, tmp_path, clients: int) -> int:
    """How many requests `reset --all` sends on a fresh base of `clients` clients."""
    probe = standard_base(FakeAirtable(), id_fields=True)
    probe.start()
    try:
        fill(probe, clients)
        service(probe, tmp_path / "probe").reset_all(ADMIN)
        return probe.count()
    finally:
        probe.stop()


def test_kill_9_at_every_step_of_a_reset_leaves_no_change_unaudited(base, tmp_path,
                                                                    monkeypatch):
    """Each step of a 25-client reset (every request, killed before and after Airtable
    applied it); what the kill left, and what the next start made of it."""
    (tmp_path / "probe").mkdir()
    steps = requests_of_a_reset(base, tmp_path, 25)
    left, after = [], []
    for step in range(steps):
        for apply in (False, True):
            run = tmp_path / f"s{step}{apply:d}"
            run.mkdir()
            server = standard_base(FakeAirtable(), id_fields=True)
            server.start()
            try:
                fill(server, 25)
                left.append(killed_reset(server, run, monkeypatch, step, apply))
                service(server, run)  # the next start
                after.append(unaudited(server, run / "sidecar.db"))
            finally:
                server.stop()
    print(f"\n25 clients, {steps} steps x 2: changed/unaudited left by the kill "
          f"{[x[:2] for x in left]}; after the next start {[x[:2] for x in after]}")
    assert max(x[0] for x in left) > 0  # some kills came after writes had landed
    assert [x[1:] for x in after] == [(0, 0)] * (2 * steps)


@pytest.mark.parametrize("update", [0, 12, 24])
def test_kill_9_in_a_250_client_reset_leaves_no_change_unaudited(base, tmp_path, monkeypatch,
                                                                 update):
    """Killed right after Airtable applied the first, the 13th and the last of the 25
    batches; the next run of the reset then finishes it, each client audited once."""
    fill(base, 250)
    left = killed_reset(base, tmp_path, monkeypatch, update, apply=True, kind="update")
    service(base, tmp_path)
    after = unaudited(base, tmp_path / "sidecar.db")
    print(f"\n250 clients, killed after batch {update + 1}: changed/unaudited left "
          f"{left[:2]}, after the next start {after[:2]}")
    assert left[0] == 10 * (update + 1) and after == (left[0], 0, 0)
    assert cli.main(["reset", "--all"]) == 0
    assert unaudited(base, tmp_path / "sidecar.db") == (250, 0, 0)


def test_a_deferred_write_is_replayed_from_its_journal_text_with_the_same_arguments():
    """What the journal keeps of each kind of deferred write reads back equal (dates,
    times, the model's dataclasses), and names no method but a deferrable one."""
    at = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)
    calls = [Deferred("C1", "save_extras", ("C1", (500, 3, date(2026, 11, 1), 31))),
             Deferred("C1", "add_audit", (AuditEntry(at, "ada", "reset", "C1", {"a": 1},
                                                     {"when": "2026-12-01"}),)),
             Deferred("C1", "add_history", ("C1", at, 120, 1000)),
             Deferred("C1", "clear_alerts", ("C1", date(2026, 11, 1))),
             Deferred("C1", "mark_restored", ([Deactivation("r1", at, "C1", "A1", "Region",
                                                             40, "over budget")], at))]
    for call in calls:
        back = Deferred.from_journal(call.client_id, call.method, call.arguments())
        assert [list(a) if isinstance(a, tuple) else a for a in call.args] == list(back.args)
    with pytest.raises(ValueError, match="not a deferrable"):
        Deferred.from_journal("C1", "replace", "[]")


# the journal with the sidecar in PostgreSQL ----------------------------------------------------
@pytest.fixture
def pg_sidecar(postgres_databases) -> str:
    """A fresh database for the sidecar: its URL."""
    return postgres_databases()


def sessions_in_transaction(url: str) -> int:
    """Sessions of the database other than this one inside a transaction (a killed
    writer's, until the server sees its connection closed)."""
    with psycopg.connect(url) as conn:
        ((n,),) = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                               "current_database() AND pid <> pg_backend_pid() "
                               "AND state LIKE 'idle in transaction%'").fetchall()
    return int(n)


@pytest.mark.parametrize("fault", [{"status": 200, "answer": "cut", "apply": True},
                                   {"status": 500, "apply": True}])
def test_with_the_sidecar_in_postgresql_a_write_whose_answer_is_lost_is_audited(
        base, tmp_path, pg_sidecar, fault):
    fill(base, 25)
    svc = service(base, tmp_path, pg_sidecar, AIRTABLE_RETRIES="1")
    base.fail(kind="update", table="Clients", after=1, times=99, **fault)
    assert all(r.changed for r in svc.reset_all(ADMIN))
    assert unaudited(base, pg_sidecar) == (25, 0, 0) and len(svc.history()) == 25
    assert svc.store._side.journaled() == {}  # type: ignore[attr-defined]


def test_with_the_sidecar_in_postgresql_a_write_not_known_to_have_landed_is_settled_later(
        base, tmp_path, pg_sidecar):
    fill(base, 12)
    svc = service(base, tmp_path, pg_sidecar, AIRTABLE_RETRIES="1")
    down = base.fail(0, kind="list", times=0)
    stale = base.fail(0, kind="update", table="Clients", apply=True, times=99,
                      call=lambda: setattr(down, "times", 99))
    with pytest.raises(StoreError, match="not known whether it landed"):
        svc.reset_all(ADMIN)
    assert unaudited(base, pg_sidecar) == (10, 10, 0)
    stale.times = down.times = 0
    service(base, tmp_path / "other-host", pg_sidecar)  # another host's next start
    assert unaudited(base, pg_sidecar) == (10, 0, 0)


def test_with_the_sidecar_in_postgresql_a_killed_reset_is_settled_by_the_next_start(
        base, tmp_path, monkeypatch, pg_sidecar):
    """Killed (-9) right after Airtable applied its first batch: the entry's writer lock
    goes with the session, so the next start (of another folder: another host) settles
    it; the next run finishes the reset, each client audited once."""
    fill(base, 25)
    left = killed_reset(base, tmp_path, monkeypatch, 0, apply=True, kind="update",
                        sidecar=pg_sidecar)
    deadline = time.monotonic() + 30
    while sessions_in_transaction(pg_sidecar) and time.monotonic() < deadline:
        time.sleep(0.05)  # the server ends the killed session when it sees it closed
    (tmp_path / "other-host").mkdir()
    service(base, tmp_path / "other-host", pg_sidecar)
    after = unaudited(base, pg_sidecar)
    print(f"\n25 clients, PostgreSQL sidecar, killed after batch 1: changed/unaudited "
          f"left {left[:2]}, after the next start {after[:2]}")
    assert left[:2] == (10, 10) and after == (10, 0, 0)
    assert cli.main(["reset", "--all"]) == 0
    assert unaudited(base, pg_sidecar) == (25, 0, 0)


def test_with_the_sidecar_in_postgresql_a_live_writers_entry_is_left_alone(
        base, tmp_path, pg_sidecar):
    """An entry whose writer still holds its transaction is not another store's to
    settle; once the writer is done, nothing is left."""
    fill(base, 2)
    writer = service(base, tmp_path, pg_sidecar)
    seen: list[dict] = []
    other = service(base, tmp_path / "other-host", pg_sidecar)
    base.fail(500, kind="update", table="Clients", times=1, apply=True,  # mid-write
              call=lambda: seen.append(other.store._side.journaled()))  # type: ignore
    writer.reset_all(ADMIN)
    assert seen == [{}]
    assert unaudited(base, pg_sidecar) == (2, 0, 0)


# one bad record in a batch -------------------------------------------------------------------
def test_a_record_airtable_refuses_is_isolated_and_the_rest_of_its_batch_written(base,
                                                                                 tmp_path):
    rids = fill(base, 25)
    bad = rids[12]  # in the second batch of ten
    base.fail(422, kind="update", record=bad, times=99, error_type="INVALID_VALUE_FOR_COLUMN",
              message='Field "Budget Reset Date" cannot accept the provided value')
    svc = service(base, tmp_path)
    with pytest.raises(PartialWrite) as err:
        svc.reset_all(ADMIN)
    changed, missing_audit, doubled = unaudited(base, tmp_path / "sidecar.db")
    print(f"\nhealthy clients reset: {changed} of 24")
    assert (changed, missing_audit, doubled) == (24, 0, 0)
    text = str(err.value)
    assert "Airtable table 'Clients'" in text and f"record Clients {bad} (C0012)" in text
    assert '"Budget Reset Date"' in text
    assert err.value.not_written == [f"Clients {bad} (C0012)"]
    assert bad not in {r["id"] for r in base.records("Clients")
                       if r["fields"]["Budget Reset Date"] != "2026-11-01"}


# the base's 5 requests per second, shared ------------------------------------------------------
def test_three_processes_share_the_bases_rate_limit(base, tmp_path, monkeypatch):
    """Three `usage` runs at once (10 list requests each) against a base that refuses
    a sixth request within a second."""
    fill(base, 500)
    base.rate_limit = 5
    env_for(base, tmp_path, monkeypatch, **IDS, AIRTABLE_MIN_INTERVAL="0.22",
            AIRTABLE_RATE_LIMIT_PENALTY="1")
    assert cli.main(["usage"]) == 0  # counts the texts once, so the three only read
    base.reset_log()
    runs = [subprocess.Popen([sys.executable, "-m", "budget", "usage"], cwd=tmp_path,
                             env=os.environ.copy(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE) for _ in range(3)]
    for run in runs:
        assert run.wait(timeout=300) == 0, run.stderr.read() if run.stderr else ""
    refused = base.count() - sum(r.status == 200 for r in base.requests)
    print(f"\n3 processes, {base.count()} requests, {refused} answered 429")
    assert refused <= 1  # a late wake-up of one process may still bunch two requests


def test_a_429_in_a_transaction_fails_fast_and_the_next_writer_waits_outside_the_lock(
        base, tmp_path):
    fill(base, 3)
    svc = service(base, tmp_path, AIRTABLE_RATE_LIMIT_PENALTY="2")
    base.fail(429, kind="update", times=1)
    start = time.monotonic()
    with pytest.raises(StoreBusy, match=r"'Clients'.*rate limited \(429\).*try again"):
        svc.reset_all(ADMIN)
    held = time.monotonic() - start
    assert base.count("update") == 1  # not retried while holding the writers' lock
    assert svc.audit() == [] and unaudited(base, tmp_path / "sidecar.db") == (0, 0, 0)
    # the next writer, in another store, waits out the penalty before taking the lock
    other = service(base, tmp_path, AIRTABLE_RATE_LIMIT_PENALTY="2")
    waiter = threading.Thread(target=other.reset_all, args=(ADMIN,))
    waiter.start()
    time.sleep(0.3)
    with writer_lock(str(tmp_path / "sidecar.db"), 0):  # free meanwhile: nobody waits on it
        pass
    waiter.join()
    print(f"\nwriter lock held {held:.2f} s by the writer that got the 429 (penalty 2 s)")
    assert unaudited(base, tmp_path / "sidecar.db") == (3, 0, 0)


def test_a_429_in_a_cli_write_is_one_busy_line(base, tmp_path, monkeypatch, capsys):
    fill(base, 1)
    env_for(base, tmp_path, monkeypatch, **IDS, AIRTABLE_RATE_LIMIT_PENALTY="0.5")
    base.fail(429, kind="update", times=1)
    assert cli.main(["reset", "C0000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rate limited (429)" in err and "try again" in err
    assert cli.main(["reset", "C0000"]) == 0  # after the penalty, outside the lock


def test_a_429_in_an_api_write_is_503_with_the_penalty_as_retry_after(base, tmp_path):
    fill(base, 1)
    base.fail(429, kind="update", times=1)
    with serve(service(base, tmp_path, AIRTABLE_RATE_LIMIT_PENALTY="7")) as api:
        r = api.post("/api/clients/C0000/reset", headers=AS_ADMIN)
    assert r.status_code == 503 and r.headers["Retry-After"] == "7", r.text
    assert "rate limited (429)" in r.json()["message"]


def test_a_field_problem_is_not_split_record_by_record(base, tmp_path):
    """An unknown field refuses every request: one is enough to say so."""
    fill(base, 25)
    base.fail(422, kind="update", times=99, error_type="UNKNOWN_FIELD_NAME",
              message='Unknown field name: "Token Usage"')
    with pytest.raises(StoreError, match='"Token Usage".*nothing was written'):
        service(base, tmp_path).reset_all(ADMIN)
    assert base.count("update") == 1


def test_more_than_three_bad_records_stop_the_isolating(base, tmp_path):
    rids = fill(base, 25)
    for rid in (rids[0], rids[3], rids[11], rids[14], rids[21]):
        base.fail(422, kind="update", record=rid, times=99,
                  error_type="INVALID_VALUE_FOR_COLUMN", message="cannot accept the value")
    with pytest.raises(PartialWrite) as err:
        service(base, tmp_path).reset_all(ADMIN)
    assert str(err.value).count("(record Clients") == 3
    changed, missing_audit, _ = unaudited(base, tmp_path / "sidecar.db")
    assert missing_audit == 0 and changed < 20
