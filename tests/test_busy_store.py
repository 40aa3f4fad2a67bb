"""A store busy past its lock timeout is "busy, try again", not a crash: StoreBusy from
the stores, exit 2 with one line from the CLI, 503 with Retry-After from the API."""

import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import replace

import pytest
from psycopg import errors as pg

from budget import cli
from budget.service import BudgetService
from budget.stores import SQLiteStore, StoreBusy, StoreError
from budget.stores.airtable import AirtableStore
from budget.stores.airtable.sidecar_protocol import open_sidecar
from budget.stores.postgresql.errors import Translator
from tests.support.api_server import AS_ADMIN, AS_VIEWER, serve
from tests.support.airtable_server import FakeAirtable, standard_base
from tests.support.factories import AIRTABLE_ON_POSTGRESQL, AirtableFactory, settings_from


@contextmanager
def write_lock(path):
    """Another process's writer, holding SQLite's write lock until the block ends."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


@pytest.fixture
def db(small):
    return small.store.path


def test_the_store_raises_store_busy_where_a_transaction_begins(db):
    store = SQLiteStore(db, lock_timeout=0.1)
    with write_lock(db), pytest.raises(StoreBusy, match="busy.*0.1 s lock timeout; try again"):
        with store.transaction():
            pass
    with store.transaction():  # the lock is free again: the same call goes through
        pass


def test_and_where_a_statement_runs(db):
    store = SQLiteStore(db, lock_timeout=0.1)
    with write_lock(db), pytest.raises(StoreBusy):
        store.save_setting("encoding", "chars4")
    assert store.setting("encoding") is None


def test_the_cli_says_busy_in_one_line_and_exits_2(db, monkeypatch, capsys):
    monkeypatch.setenv("TOKENBUDGET_LOCK_TIMEOUT", "0.1")
    with write_lock(db):
        code = cli.main(["--store", f"sqlite:///{db}", "set-budget", "A", "150"])
        assert cli.main(["--store", f"sqlite:///{db}", "usage"]) == 0  # readers never wait
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "busy" in err and "try again" in err
    assert "Traceback" not in err


def test_the_cli_in_a_process(db):
    with write_lock(db):
        r = subprocess.run([sys.executable, "-m", "budget", "--store", f"sqlite:///{db}",
                            "tiers", "--set", "1=500"], capture_output=True, text=True,
                           timeout=120, env={"TOKENBUDGET_LOCK_TIMEOUT": "0.1", "PATH": ""})
    assert r.returncode == 2 and "busy" in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) == 1


def test_the_api_answers_503_with_retry_after(db):
    service = BudgetService.from_settings(settings_from(store=f"sqlite:///{db}",
                                                        lock_timeout=0.1))
    with serve(service) as http:
        with write_lock(db):
            r = http.post("/api/clients/A/reset", headers=AS_ADMIN)
            assert r.status_code == 503
            assert r.headers["Retry-After"] == "1"
            assert r.json()["error"] == "unavailable" and "busy" in r.json()["message"]
            assert http.get("/api/token-usage", headers=AS_VIEWER).status_code == 200
        assert http.post("/api/clients/A/reset", headers=AS_ADMIN).status_code == 200


@pytest.mark.parametrize("error", [pg.LockNotAvailable("lock timeout"),
                                   pg.QueryCanceled("statement timeout")])
def test_postgresql_lock_and_statement_timeouts_are_store_busy(error):
    errors = Translator("postgresql://u:secret@h:5432/db", 10, 60, 10)
    busy = errors.error(error)
    assert isinstance(busy, StoreBusy) and "busy" in str(busy) and "secret" not in str(busy)
    assert not isinstance(errors.error(pg.UniqueViolation("dup")), StoreBusy)
    assert isinstance(errors.error(pg.UniqueViolation("dup")), StoreError)


def test_an_unreachable_store_is_503_with_retry_after(tmp_path):
    base = standard_base(FakeAirtable(), id_fields=True)
    base.start()
    service = AirtableFactory(base, tmp_path / "sidecar.db").service()
    base.stop()
    with serve(service) as http:
        r = http.get("/api/token-usage", headers=AS_VIEWER)
    assert r.status_code == 503 and r.headers["Retry-After"] == "30"


@pytest.mark.parametrize("store_factory", ["airtable", AIRTABLE_ON_POSTGRESQL], indirect=True)
def test_the_airtable_sidecar_waits_for_its_lock_as_long_as_the_setting_says(store_factory):
    """In a file or in PostgreSQL, the sidecar's write lock waits TOKENBUDGET_LOCK_TIMEOUT,
    then StoreBusy; in PostgreSQL a lock held on client B leaves client A's writes be."""
    store = AirtableStore(replace(store_factory.config, lock_timeout=0.3))
    holder = open_sidecar(str(store_factory.sidecar), lock_timeout=1)
    try:
        with holder.transaction(client_id="B"):  # another host's write to client B
            with pytest.raises(StoreBusy, match=r"0\.3 s"):
                with store.transaction(client_id="B"):
                    pass
            if store_factory.kind == AIRTABLE_ON_POSTGRESQL:
                start = time.monotonic()
                with store.transaction(client_id="A"):
                    store.save_setting("note", "A's write")
                waited = time.monotonic() - start
                print(f"\nwrite to A while B is locked: waited {waited * 1000:.0f} ms")
                assert waited < 0.3
        store.save_setting("encoding", "chars4")  # free again: the same call goes through
        assert store.setting("encoding") == "chars4"
    finally:
        holder.close()
        store.close()
