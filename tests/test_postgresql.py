"""The PostgreSQL store on a real server: schema migrations, locks across processes and
hosts, a writer killed mid-transaction, errors without the password, copy-store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime

import psycopg
import pytest

from budget.cli import main
from budget.model import (Attribute, AuditEntry, Change, Client, Deactivation, FieldTokens,
                          Notification, Tier)
from budget.stores import StoreError, open_store
from budget.stores.copy import read
from budget.stores.postgresql import PostgresStore
from budget.stores.postgresql.migrations import LATEST, MIGRATIONS, migrate
from tests.support.factories import (ADMIN, AIRTABLE_ON_POSTGRESQL, NOW, PostgresFactory,
                                     make_service, words)
from tests.test_pass_lock import store_env

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def pg(postgres_databases):
    factory = PostgresFactory(postgres_databases())
    yield factory
    factory.close()


def _versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [v for v, in conn.execute("SELECT version FROM schema_version ORDER BY 1")]


# migrations -----------------------------------------------------------------------
def test_migrations_applied_once_and_a_newer_schema_refused(pg):
    first = pg.open()
    applied_at = psycopg.connect(pg.url).execute("SELECT applied_at FROM schema_version"
                                                 ).fetchall()
    assert first.schema_version == LATEST and _versions(pg.url) == sorted(MIGRATIONS)
    pg.open()  # a second host starting: nothing is applied again
    assert psycopg.connect(pg.url).execute("SELECT applied_at FROM schema_version"
                                           ).fetchall() == applied_at

    # a release with one more migration applies only that one
    with psycopg.connect(pg.url, autocommit=True) as conn:
        assert migrate(conn, "test", {**MIGRATIONS, LATEST + 1:
                                      "ALTER TABLE settings ADD COLUMN note text"}) == LATEST + 1
    assert _versions(pg.url) == [*sorted(MIGRATIONS), LATEST + 1]

    # ... and this release then refuses the database, naming both versions
    with pytest.raises(StoreError, match=f"schema version {LATEST + 1}, newer than version "
                                         f"{LATEST} that this release"):
        pg.open()


def test_selected_by_url_and_labelled_without_the_password(pg, postgres_databases):
    password = pg.url.split(":")[2].split("@")[0]
    for url in (pg.url, pg.url.replace("postgresql://", "postgres://", 1)):
        store = open_store(url)
        assert isinstance(store, PostgresStore)
        assert "***" in store.label and password not in store.label
        store.close()  # type: ignore[attr-defined]


# errors ---------------------------------------------------------------------------
def test_redact_masks_every_form_of_the_password():
    from budget.stores.postgresql.errors import redact
    assert redact("postgresql://u:p%40ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("postgresql://u@h/db?password=sec&sslmode=require") == \
        "postgresql://u@h/db?password=***&sslmode=require"
    assert redact("postgres://h/db") == "postgres://h/db"


def test_unreachable_server_and_wrong_password_are_one_line_store_errors(pg):
    password = pg.url.split(":")[2].split("@")[0]
    port = int(pg.url.rsplit(":", 1)[1].split("/")[0])
    closed = pg.url.replace(f":{port}/", f":{port + 1 if port < 65535 else port - 1}/")
    for url, why in ((closed, "Connection refused"),
                     (pg.url.replace(password, password + "x"), "password authentication")):
        with pytest.raises(StoreError) as e:
            PostgresStore(url, connect_timeout=2)
        message = str(e.value)
        print(message)
        assert why in message and "***" in message and "\n" not in message
        assert password not in message


def test_lock_timeout_is_a_busy_store_error(pg):
    pg.service().load_data_set(ADMIN, [Tier(1, "Basic", 100)], [Client("A", "Alpha", 1)], [])
    holder, waiter = pg.open(), PostgresStore(pg.url, lock_timeout=0.3)
    try:
        with holder.transaction(client_id="A"):
            with pytest.raises(StoreError, match=r"busy: a lock was not granted within 0.3 s"):
                with waiter.transaction(client_id="A"):
                    pass
    finally:
        waiter.close()


def test_statement_timeout_is_a_busy_store_error(pg):
    from budget.stores.postgresql.errors import Translator
    with psycopg.connect(pg.url, options="-c statement_timeout=100") as conn:
        with pytest.raises(psycopg.errors.QueryCanceled) as e:
            conn.execute("SELECT pg_sleep(2)")
    message = str(Translator(pg.url, 10, 0.1, 10).error(e.value))
    assert "busy: a statement ran past the 0.1 s statement timeout" in message
    assert "***" in message


def test_data_version_moves_with_writes_from_any_store(pg):
    _two_clients(pg)
    reader, writer = pg.open(), pg.open()
    before = reader.data_version()
    reader.clients()
    writer.save_counts("cl100k_base", {"a1": FieldTokens(1, 2, 3)})  # the cache only
    assert reader.data_version() == before
    writer.save_setting("encoding", "cl100k_base")
    assert reader.data_version() != before


# locks ----------------------------------------------------------------------------
def _two_clients(pg) -> None:
    pg.service().load_data_set(
        ADMIN, [Tier(1, "Basic", 100)], [Client("A", "Alpha", 1), Client("B", "Beta", 1)],
        [Attribute("a1", "A", "Size", True, words(10)),
         Attribute("b1", "B", "Size", True, words(10))])


def _wait_while_held(pg, client_id: str | None, hold: float = 1.5) -> float:
    """Seconds a write (to client A, or whole-store work) waited while another
    connection held client B's lock for `hold` seconds."""
    holder, writer = pg.open(), pg.open()
    locked, done = threading.Event(), threading.Event()

    def hold_b() -> None:
        with holder.transaction(client_id="B"):
            holder.save_client(replace(holder.client("B"), email="b@example.com"))
            locked.set()
            done.wait(hold)

    t = threading.Thread(target=hold_b)
    t.start()
    locked.wait(10)
    start = time.monotonic()
    with writer.transaction(client_id=client_id):
        writer.save_client(replace(writer.client("A"), email="a@example.com"))
    waited = time.monotonic() - start
    done.set()
    t.join()
    return waited


def test_a_write_to_one_client_does_not_wait_for_another_clients_lock(pg):
    _two_clients(pg)
    other = _wait_while_held(pg, "A")
    whole = _wait_while_held(pg, None)
    print(f"write to A while B is locked for 1.5 s: waited {other * 1000:.0f} ms; "
          f"whole-store work waited {whole * 1000:.0f} ms")
    assert other < 0.5
    assert whole > 1.0  # the store lock really is held meanwhile


def test_one_pass_at_a_time_across_stores(pg):
    one, two = pg.open(), pg.open()
    with one.pass_lock() as got_one:
        with two.pass_lock() as got_two:
            assert (got_one, got_two) == (True, False)
    with two.pass_lock() as got:
        assert got


_HOLD_PASS = textwrap.dedent("""
    import sys, time
    from budget.stores.postgresql import PostgresStore
    with PostgresStore(sys.argv[1]).pass_lock() as got:
        print(got, flush=True)
        time.sleep(600)
""")


def test_a_pass_killed_with_kill_9_releases_its_lock(pg, tmp_path):
    holder = _python(["-c", _HOLD_PASS, pg.url], tmp_path)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "True", holder.stderr
    store = pg.open()
    with store.pass_lock() as got:
        assert not got  # another host's pass is running
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(10)
    deadline = time.monotonic() + 10
    while True:
        with store.pass_lock() as got:
            if got or time.monotonic() > deadline:
                break
        time.sleep(0.05)
    assert got


# several processes on two "hosts" ------------------------------------------------
HOSTS, PROCESSES, BUDGETED_CLIENTS, BUDGET = 2, 8, 4, 1000

# a host's process: imports everything and reads the counts, says it is ready, waits for
# the gate so that every process starts within milliseconds, then activates its share,
# one validated change each, and reports what a user would have seen
_ACTIVATE = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from budget.model import Actor, Change
    from budget.service import BudgetService
    from budget.settings import Settings
    ready, gate, pairs = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
    svc = BudgetService.from_settings(Settings.load())  # the store the environment names
    svc.costs()
    svc.counter.count("the tokenizer loaded before the race, not in the first activation")
    ready.touch()
    while not gate.exists():
        time.sleep(0.002)
    saved, refused, errors, waits = 0, 0, [], []
    for pair in pairs:
        client_id, aid = pair.split("/")
        start = time.monotonic()
        try:
            if svc.apply(Actor("worker", "admin"), Change(client_id, active={aid: True})).allowed:
                saved += 1
            else:
                refused += 1
        except Exception as e:  # what the CLI and the API would show a user
            errors.append(f"{type(e).__name__}: {e}")
        waits.append(time.monotonic() - start)
    print(json.dumps({"saved": saved, "refused": refused, "errors": errors, "waits": waits}))
""")


def _python(args: list[str], cwd, store: dict[str, str] | None = None) -> subprocess.Popen:
    """A process with the settings of `store` (environment variables) and no others."""
    env = {**{k: v for k, v in os.environ.items()
              if not k.startswith(("TOKENBUDGET_", "AIRTABLE_"))},
           "PYTHONPATH": REPO, **(store or {})}
    return subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _gated(procs: list[subprocess.Popen], ready: list, gate) -> float:
    """Opens the gate once every process is ready; the time it opened."""
    deadline = time.monotonic() + 120
    while not all(r.exists() for r in ready):
        assert time.monotonic() < deadline, [p.stderr.read() for p in procs
                                             if p.poll() is not None and p.stderr]
        time.sleep(0.01)
    gate.touch()
    return time.monotonic()


def _hosts(tmp_path) -> list:
    """The working folders of the two hosts: nothing on disk is shared."""
    folders = [tmp_path / f"host{h + 1}" for h in range(HOSTS)]
    for folder in folders:
        folder.mkdir()
    return folders


@pytest.mark.parametrize(("store_factory", "spare", "base"),
                         [("postgresql", 100, 500), (AIRTABLE_ON_POSTGRESQL, 50, 750)],
                         indirect=["store_factory"])
def test_eight_processes_on_two_hosts_near_the_budget_never_overshoot(store_factory, spare,
                                                                      base, tmp_path):
    """8 processes x 50 activations of 10 tokens on 4 clients at 500 of 1,000 tokens,
    where 50 fit per client: exactly 50 are saved per client, each with its audit row,
    usage ends at the budget and not past it, and no user sees an error. On the
    PostgreSQL store; and on Airtable (the loopback base, whose requests take longer)
    with its sidecar in PostgreSQL, with half as many: 8 x 25 at 750, 25 fit."""
    pg = store_factory
    clients = [f"C{c}" for c in range(BUDGETED_CLIENTS)]
    fit = (BUDGET - base) // 10
    pg.service().load_data_set(
        ADMIN, [Tier(1, "Basic", BUDGET)], [Client(c, f"Client {c}", 1) for c in clients],
        [a for c in clients for a in (
            Attribute(f"{c}-base", c, "Base", True, words(base)),
            *(Attribute(f"{c}-x{j:03}", c, f"x{j:03}", False, words(10))
              for j in range(spare)))])
    audit_before = {c: len(pg.open().audit(c)) for c in clients}
    pairs = [f"{c}/{c}-x{j:03}" for j in range(spare) for c in clients]  # clients interleaved
    shares = [pairs[p::PROCESSES] for p in range(PROCESSES)]
    activations = spare * BUDGETED_CLIENTS // PROCESSES
    assert {len(s) for s in shares} == {activations}
    folders, gate = _hosts(tmp_path), tmp_path / "gate"
    ready = [tmp_path / f"ready{p}" for p in range(PROCESSES)]
    procs = [_python(["-c", _ACTIVATE, str(ready[p]), str(gate), *shares[p]],
                     folders[p % HOSTS], store_env(pg)) for p in range(PROCESSES)]
    opened = _gated(procs, ready, gate)
    results = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    elapsed = time.monotonic() - opened

    service = pg.service()
    saved = sum(r["saved"] for r in results)
    refused = sum(r["refused"] for r in results)
    errors = [e for r in results for e in r["errors"]]
    deadlocks = [e for e in errors if "deadlock" in e.lower()]
    waits = sorted(w for r in results for w in r["waits"])
    usage = {c: service.client_usage(c) for c in clients}
    overshoot = sum(max(0, u.usage - u.budget) for u in usage.values())
    audit_rows = sum(len(service.audit(c)) - audit_before[c] for c in clients)
    print(f"\n{pg.kind}: {PROCESSES} processes on {HOSTS} hosts x {activations} activations: "
          f"{saved} saved, {refused} refused, {len(errors)} errors ({len(deadlocks)} "
          f"deadlocks) in {elapsed:.1f} s; overshoot {overshoot}; audit rows {audit_rows}; "
          f"per activation median {waits[len(waits) // 2] * 1000:.0f} ms, "
          f"p95 {waits[int(len(waits) * 0.95)] * 1000:.0f} ms, max {waits[-1] * 1000:.0f} ms")
    assert errors == []
    assert saved == BUDGETED_CLIENTS * fit and refused == len(pairs) - saved
    assert overshoot == 0
    assert all(u.usage == BUDGET == u.client.token_usage for u in usage.values())
    assert audit_rows == saved


@pytest.mark.parametrize("store_factory", ["postgresql", AIRTABLE_ON_POSTGRESQL],
                         indirect=True)
def test_two_run_due_on_two_hosts_send_each_alert_and_reset_each_client_once(
        store_factory, tmp_path):
    """Two `tokenbudget run-due` started together from two hosts' folders against a real
    SMTP server: 10 clients due an 80 % alert and 10 due a reset. On the PostgreSQL
    store, and on Airtable with its sidecar in PostgreSQL."""
    pg = store_factory
    from tests.support.smtp_server import SmtpServer
    alerted = [f"A{i:02}" for i in range(10)]
    reset = [f"R{i:02}" for i in range(10)]
    smtp = SmtpServer(delay=0.05)  # a pass of 10 emails lasts half a second: they overlap
    smtp.controller.start()
    try:
        recipients = smtp.settings(TOKENBUDGET_ALERT_RECIPIENTS="contact")
        svc = pg.service(names=recipients)
        svc.load_data_set(
            ADMIN, [Tier(1, "Basic", 100)],
            [*(Client(c, f"Client {c}", 1, budget_reset_date=date(2026, 12, 1),
                      email=f"ops@{c.lower()}.example") for c in alerted),
             *(Client(c, f"Client {c}", 1, budget_reset_date=date(2026, 11, 1),
                      email=f"ops@{c.lower()}.example") for c in reset)],
            [*(Attribute(f"{c}-a", c, "Size", True, words(85)) for c in alerted),
             *(Attribute(f"{c}-a", c, "Size", True, words(40)) for c in reset)])
        folders, gate = _hosts(tmp_path), tmp_path / "gate"
        ready = [tmp_path / f"ready{h}" for h in range(HOSTS)]
        runner = textwrap.dedent("""
            import sys, time
            from pathlib import Path
            from budget.cli import main
            Path(sys.argv[1]).touch()
            while not Path(sys.argv[2]).exists():
                time.sleep(0.002)
            sys.exit(main(sys.argv[3:]))
        """)
        env = {**{k: v for k, v in os.environ.items()
                  if not k.startswith(("TOKENBUDGET_", "AIRTABLE_", "SMTP_"))},
               **store_env(pg), "PYTHONPATH": REPO, **recipients}
        procs = [subprocess.Popen([sys.executable, "-c", runner, str(ready[h]), str(gate),
                                   "run-due", "--now", NOW.strftime("%Y-%m-%dT%H:%M")],
                                  cwd=folders[h], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for h in range(HOSTS)]
        _gated(procs, ready, gate)
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        smtp.controller.stop()
    assert [p.returncode for p in procs] == [0] * HOSTS, outs
    per_key = smtp.inbox.per_subject()
    resets = Counter(e.client_id for e in svc.audit() if e.action == "reset")
    skipped = sum("this one did nothing" in out for out, _ in outs)
    print(f"\n{pg.kind}: {HOSTS} run-due on {HOSTS} hosts: {len(smtp.inbox.messages)} emails for "
          f"{len(per_key)} alert keys (each sent {sorted(set(per_key.values()))} time), "
          f"resets per due client {sorted(set(resets.values()))}, {skipped} pass skipped")
    assert len(per_key) == len(alerted) and set(per_key.values()) == {1}
    assert {n.client_id for n in svc.notifications() if n.status == "sent"} == set(alerted)
    assert resets == {c: 1 for c in reset}
    assert all(svc.store.client(c).budget_reset_date == date(2026, 12, 1) for c in reset)


_HALF_WRITE = textwrap.dedent("""
    import sys, time
    from dataclasses import replace
    from datetime import datetime, timezone
    from budget.model import AuditEntry
    from budget.stores.postgresql import PostgresStore
    store = PostgresStore(sys.argv[1])
    with store.transaction(client_id="A"):
        store.save_client(replace(store.client("A"), token_usage=999))
        store.add_history("A", datetime.now(timezone.utc), 999, 100)
        store.add_audit(AuditEntry(datetime.now(timezone.utc), "doomed", "reset", "A", {}, {}))
        print("written", flush=True)
        time.sleep(600)
""")


def test_a_writer_killed_mid_transaction_leaves_nothing_and_the_next_proceeds(pg, tmp_path):
    _two_clients(pg)
    store = pg.open()
    before = (store.client("A"), store.history("A"), store.audit("A"))
    writer = _python(["-c", _HALF_WRITE, pg.url], tmp_path)
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "written", writer.stderr
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(10)
    start = time.monotonic()
    result = pg.service().apply(ADMIN, Change("A", active={"a1": False}))
    waited = time.monotonic() - start
    print(f"next writer after kill -9: {waited * 1000:.0f} ms")
    assert result.allowed and waited < 5
    after = store.client("A")
    assert after is not None and after.token_usage == 0  # the doomed 999 never landed
    assert [h for h in store.history("A") if h[2] == 999] == []
    assert [e for e in store.audit("A") if e.actor == "doomed"] == []
    assert len(store.audit("A")) == len(before[2]) + 1


# copy-store -----------------------------------------------------------------------
def _automation_rows(path) -> None:
    """Notifications (one retried, one whose alert a reset cleared), a deactivation run
    partly restored, a per-client flag, a setting and history: every table has rows."""
    store = make_service(path).store
    at = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    period = date(2026, 11, 1)
    cid = store.clients()[0].id
    other = store.clients()[1].id
    sent = Notification(cid, 80, period, "sent", at, ("a@example.com",), "80% used")
    store.save_notification(replace(sent, status="failed", error="timeout"))
    store.save_notification(sent)  # sent on the second attempt
    store.save_notification(replace(sent, threshold=90))
    store.save_notification(replace(sent, client_id=other))
    store.clear_alerts(other, period)  # reset: that alert may go out again
    attrs = store.attributes(cid)[:2]
    runs = [Deactivation("run1", at, cid, a.id, a.name, 10, "over budget") for a in attrs]
    for d in runs:
        store.add_deactivation(d)
    store.mark_restored(runs[:1], NOW)
    store.save_auto_deactivate_flag(other, False)
    store.save_setting("auto_deactivate", "on")
    store.add_audit(AuditEntry(at, "alice", "reset", cid, {"on": date(2026, 11, 1)}, {}))
    for day in (1, 2):
        store.add_history(cid, at.replace(day=day), 2500 + day, 3000)


def test_copy_store_from_sqlite_verifies_and_refuses_a_non_empty_destination(
        demo_copy, pg, tmp_path, capsys):
    _automation_rows(demo_copy)
    source = f"sqlite:///{demo_copy}"
    assert main(["--store", source, "copy-store", "--to", pg.url]) == 0
    out = capsys.readouterr().out
    print(out)
    assert "verified: the copy holds the same" in out and "DIFFERENT" not in out
    sqlite_side, pg_side = read(open_store(source)), read(pg.open())
    assert all(sqlite_side.rows().values())  # every table had something to copy
    assert pg_side == sqlite_side  # not only the counts: every row

    # and back: PostgreSQL into a fresh SQLite file holds the same again
    back = f"sqlite:///{tmp_path / 'back.db'}"
    assert main(["--store", pg.url, "copy-store", "--to", back]) == 0
    assert read(open_store(back)) == sqlite_side
    capsys.readouterr()

    assert main(["--store", source, "copy-store", "--to", pg.url]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not empty (" in err and "clients" in err and "\n" not in err
    assert pg.url.split(":")[2].split("@")[0] not in err  # the password
