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
from tests.support.factories import ADMIN, NOW, PostgresFactory, make_service, words

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


# several processes ----------------------------------------------------------------
_ACTIVATE = textwrap.dedent("""
    import json, sys, time
    from budget.model import Actor, Change
    from budget.service import BudgetService
    from budget.settings import Settings
    url, start, ids = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    svc = BudgetService.from_settings(Settings(store=url))
    svc.costs()  # tokenizer loaded and counts read before the race starts
    time.sleep(max(0.0, start - time.time()))
    out = [svc.apply(Actor("worker", "admin"), Change("A", active={aid: True})).allowed
           for aid in ids]
    print(json.dumps(out))
""")


def _python(args: list[str], cwd, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": REPO}
    env.pop("TOKENBUDGET_STORE", None)
    return subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_two_processes_near_the_budget_never_overshoot(pg, tmp_path):
    """12 activations of 10 tokens from two processes where 6 fit: exactly 6 are saved,
    each with its audit row, and usage ends at the budget, not past it."""
    xs = [f"x{i}" for i in range(6)]
    ys = [f"y{i}" for i in range(6)]
    pg.service().load_data_set(
        ADMIN, [Tier(1, "Basic", 100)], [Client("A", "Alpha", 1)],
        [Attribute("base", "A", "Base", True, words(40)),
         *(Attribute(aid, "A", aid, False, words(10)) for aid in xs + ys)])
    audit_before = len(pg.open().audit("A"))
    start = time.time() + 8
    procs = []
    for name, ids in (("one", xs), ("two", ys)):
        folder = tmp_path / name
        folder.mkdir()
        procs.append(_python(["-c", _ACTIVATE, pg.url, str(start), *ids], folder))
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results += json.loads(out)
    final = pg.service().client_usage("A")
    saved = sum(results)
    print(f"saved {saved} of {len(results)} activations; usage {final.usage} of {final.budget}")
    assert saved == 6
    assert final.usage == 100 == final.client.token_usage  # overshoot 0
    assert len(pg.open().audit("A")) - audit_before == saved


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
