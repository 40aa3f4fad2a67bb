"""The CLI contract end to end: real processes on a temporary SQLite file."""

import json
import sqlite3
import subprocess
import sys

import pytest

from budget import cli
from tests.support.airtable_server import API_KEY, BASE_ID, standard_base

USAGE_KEYS = {"client_id", "name", "service_level", "budget", "usage", "remaining",
              "percent_used", "status", "budget_reset_date"}
ATTR_KEYS = {"attribute_id", "name", "active", "instructions_tokens", "examples_tokens",
             "signals_tokens", "tokens"}
VALIDATE_KEYS = {"allowed", "current", "projected", "budget", "delta", "over_by"}


def tb(db, *args, stdin=None):
    return subprocess.run([sys.executable, "-m", "budget", "--store", f"sqlite:///{db}", *args],
                          capture_output=True, text=True, input=stdin, timeout=120)


def dump(db) -> list[str]:
    """Every row of every table: what "nothing written" compares."""
    with sqlite3.connect(db) as conn:
        return list(conn.iterdump())


def ok_json(db, *args):
    r = tb(db, *args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def db(small):
    return small.store.path


def test_demo_data_defaults_and_scaling(tmp_path):
    path = tmp_path / "d.db"
    r = tb(path, "demo-data", "--clients", "6", "--attributes-per-client", "5", "--seed", "3")
    assert r.returncode == 0, r.stderr
    rows = ok_json(path, "usage")
    assert len(rows) == 6 and all(set(r) == USAGE_KEYS for r in rows)
    assert all(len(ok_json(path, "attributes", r["client_id"])) == 5 for r in rows)


def test_default_demo_data_set(demo_db):
    rows = ok_json(demo_db, "usage")
    assert len(rows) == 40
    assert {r["service_level"] for r in rows} == {1, 2, 3, 4}
    statuses = [r["status"] for r in rows]
    assert statuses.count("warning") >= 3 and statuses.count("exceeded") >= 3
    sizes = [len(ok_json(demo_db, "attributes", r["client_id"])) for r in rows[:10]]
    assert all(5 <= n <= 30 for n in sizes)


def test_usage_and_attributes(db):
    rows = ok_json(db, "usage", "--client", "A")
    assert rows == [{"client_id": "A", "name": "Alpha", "service_level": 1, "budget": 100,
                     "usage": 80, "remaining": 20, "percent_used": 80, "status": "warning",
                     "budget_reset_date": "2026-12-01"}]
    text = tb(db, "usage").stdout
    assert "Alpha: 80 / 100 tokens (80% used) [warning]" in text
    attrs = {a["attribute_id"]: a for a in ok_json(db, "attributes", "A")}
    assert set(attrs["a2"]) == ATTR_KEYS
    assert (attrs["a2"]["instructions_tokens"], attrs["a2"]["examples_tokens"],
            attrs["a2"]["tokens"]) == (30, 10, 40)


def test_validate_and_apply_exit_codes(db):
    r = tb(db, "validate", "A", "a3", "--activate", "--json")
    assert r.returncode == 1
    assert json.loads(r.stdout) == {"allowed": False, "current": 80, "projected": 105,
                                    "budget": 100, "delta": 25, "over_by": 5}
    r = tb(db, "apply", "A", "a3", "--activate")
    assert r.returncode == 1 and "refused" in r.stdout
    assert ok_json(db, "usage", "--client", "A")[0]["usage"] == 80
    r = tb(db, "validate", "A", "a1", "--set", "Instructions=lead lead", "--json")
    assert r.returncode == 0 and set(json.loads(r.stdout)) == VALIDATE_KEYS
    assert json.loads(r.stdout)["projected"] == 42
    assert tb(db, "apply", "A", "a1", "--set", "Instructions=lead lead").returncode == 0
    assert ok_json(db, "usage", "--client", "A")[0]["usage"] == 42


def test_admin_commands_and_audit(db):
    assert tb(db, "set-tier", "A", "2").returncode == 0
    assert tb(db, "set-budget", "A", "150").returncode == 0
    assert tb(db, "set-budget", "A", "--clear").returncode == 0
    assert tb(db, "reset", "A").returncode == 0
    assert tb(db, "reset", "--all").returncode == 0
    tiers = ok_json(db, "tiers", "--set", "2=300")
    assert {t["level"]: t["tokens"] for t in tiers} == {1: 100, 2: 300}
    audit = ok_json(db, "audit", "--client", "A")
    assert [a["action"] for a in audit] == ["service_level", "budget_override",
                                            "budget_override", "reset"]
    assert all(set(a) == {"at", "actor", "action", "client_id", "before", "after"} for a in audit)
    assert [a["action"] for a in ok_json(db, "audit")].count("tier_limit") == 1


def test_count_files_and_stdin(tmp_path, db):
    f = tmp_path / "x.txt"
    f.write_text("lead lead lead", encoding="utf-8")
    r = tb(db, "count", str(f))
    assert r.stdout.strip() == f"3 {f}"
    rows = json.loads(tb(db, "count", "--json", "--encoding", "cl100k_base", "-",
                         stdin="<|endoftext|>").stdout)
    assert rows[0]["path"] == "-" and rows[0]["tokens"] > 1 and rows[0]["chars4"] == 4


BAD = [
    (("usage", "--client", "NOPE"), "client NOPE"),
    (("attributes", "NOPE"), "client NOPE"),
    (("validate", "A", "zz", "--activate"), "attribute zz"),
    (("validate", "A", "a1", "--set", "Notes=x"), "Notes: unknown field"),
    (("apply", "A", "b1", "--deactivate"), "attribute b1"),
    (("set-tier", "A", "9"), "level 9 is not in the tier table"),
    (("set-tier", "NOPE", "1"), "client NOPE"),
    (("set-budget", "A", "-5"), "must not be negative"),
    (("set-budget", "A", "1.5"), "must be a whole number"),
    (("tiers", "--set", "1=abc"), "must be a whole number"),
    (("reset", "NOPE"), "client NOPE"),
    (("count", "/no/such/file"), "/no/such/file"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_one_line_exit_2_nothing_written(db, args, message):
    before = dump(db)
    r = tb(db, *args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert dump(db) == before


def test_unreadable_store_path(tmp_path):
    r = tb(tmp_path / "missing" / "x.db", "usage")
    assert r.returncode == 2 and "missing" in r.stderr and "Traceback" not in r.stderr


@pytest.fixture
def airtable_with_a_bad_record(airtable_server, tmp_path, monkeypatch):
    """Ten clients on the loopback Airtable base, one with a Service Level that is not a
    number; the CLI reads the base through the settings a person would set."""
    base = standard_base(airtable_server)
    for n in range(9):
        base.put("Clients", {"Client Name": f"Client {n}", "Service Level": 1})
    base.put("Clients", {"Client Name": "Text level", "Service Level": "gold"})
    for name, value in {"AIRTABLE_API_KEY": API_KEY, "AIRTABLE_BASE_ID": BASE_ID,
                        "AIRTABLE_ENDPOINT_URL": base.url, "AIRTABLE_MIN_INTERVAL": "0",
                        "AIRTABLE_SIDECAR": str(tmp_path / "sidecar.db")}.items():
        monkeypatch.setenv(name, value)
    return base


def test_a_skipped_record_is_named_on_stderr(airtable_with_a_bad_record, capsys):
    assert cli.main(["--store", "airtable", "usage"]) == 0
    out = capsys.readouterr()
    assert len(out.out.splitlines()) == 9
    assert len(out.err.splitlines()) == 1
    assert out.err.startswith("tokenbudget: skipped: Clients record rec")
    assert "(Text level): Service Level: not a service level number: 'gold'" in out.err


def test_strict_refuses_a_data_set_with_skipped_records(airtable_with_a_bad_record, capsys):
    assert cli.main(["--store", "airtable", "--strict", "usage"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert len(out.err.splitlines()) == 1
    assert "1 record(s) skipped, nothing done (--strict)" in out.err and "(Text level)" in out.err
