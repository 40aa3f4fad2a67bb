"""The CLI contract under hostile arguments: whatever the argument list, the exit is 0, 1
or 2, a 2 says why in one stderr line and leaves every table as it was, and nothing
ever ends in a traceback. Most cases run `budget.cli.main` in-process (fast); a few run
a real process, for what only a process shows (bytes that are not UTF-8, a closed pipe,
the interpreter's own error output)."""

import io
import os
import sqlite3
import subprocess
import sys

import pytest

from budget import cli

BAD_UTF8 = os.fsdecode(b"\xff")  # how Python hands a non-UTF-8 argument to the program
HUGE = str(10**20)
LONG = "x" * 200_000
VALUES = ["", " ", "-1", "-5", "0", "1.5", "abc", "1e9", HUGE, str(2**63), "9" * 400,
          "-" + "9" * 5000, "ünïcödé", "💥", "<|endoftext|>", BAD_UTF8, LONG, "NOPE",
          "a\x00b", "a\nb"]


def _cases() -> list[list[str]]:
    cases: list[list[str]] = []
    for v in VALUES:
        cases += [["set-budget", "A", v], ["tiers", "--set", f"1={v}"],
                  ["tiers", "--set", f"{v}=5"], ["set-tier", "A", v],
                  ["usage", "--client", v], ["attributes", v],
                  ["validate", "A", v, "--activate"], ["reset", v]]
    cases += [
        [], ["nope"], ["--bogus"], ["usage", "--bogus"], ["usage", "--client"],
        ["usage", "--json"], ["attributes", "A", "--json"], ["audit", "--client", "NOPE"],
        ["audit", "--client", BAD_UTF8], ["validate", "A", "a1"],
        ["validate", "A", "a1", "--activate", "--deactivate"],
        ["validate", "A", "a1", "--set", "Instructions"],
        ["validate", "A", "a1", "--set", f"Instructions={LONG}"],
        ["apply", "A", "a1", "--set", f"Instructions={LONG}"],
        ["apply", "A", "a1", "--set", f"Instructions={BAD_UTF8}"],
        ["apply", "A", "a1", "--set", "Instructions=<|endoftext|>"],
        ["apply", "A", "a3", "--activate"], ["apply", "NOPE", "a1", "--deactivate"],
        ["reset"], ["reset", "A", "--all"], ["set-budget", "A"],
        ["set-budget", "A", "5", "--clear"], ["set-budget", "A", "-0"],
        ["tiers", "--set", "nosep"], ["tiers", "--set", "1=5", "--set", "2=abc"],
        ["tiers", "--set", "1=5", "--set", f"2={HUGE}"], ["tiers", "--set", "1=5", "--set", "0=5"],
        ["tiers", "--set", "1=5", "--set", f"{BAD_UTF8}=5"], ["tiers", "--set", "=5"],
        ["count", "--encoding", "chars4", "-"], ["count", "--encoding", "nope", "-"],
        ["count", "-"], ["count", "/no/such/file"], ["count", LONG], ["count"],
        ["demo-data", "--clients", HUGE], ["demo-data", "--clients", "1e9"],
        ["demo-data", "--clients", "-1"], ["demo-data", "--attributes-per-client", HUGE],
        ["restore", "NOPE"], ["restore", BAD_UTF8], ["notifications", "--json"],
        ["deactivations"], ["auto-deactivate", "default"], ["auto-deactivate", "maybe"],
        ["auto-deactivate", "on", "--client", "NOPE"],
        ["run-due", "--dry-run", "--now", "yesterday"],
        ["run-due", "--dry-run", "--now", "2026-13-01"],
        ["copy-store", "--to", "ftp://x"], ["copy-store", "--to", "sqlite:///"],
        ["--store", "mysql://x", "usage"], ["--store", "sqlite:///", "usage"],
        ["--store", f"sqlite:///{BAD_UTF8}/x.db", "usage"],
        ["--strict", "usage"], ["--strict", "tiers", "--set", "1=abc"],
    ]
    return cases


CASES = _cases()


def _id(args: list[str]) -> str:
    text = " ".join(a if len(a) < 30 else f"<{len(a)} chars>" for a in args) or "<none>"
    return text.encode("unicode_escape").decode("ascii")


def dump(db) -> list[str]:
    """Every row of every table."""
    with sqlite3.connect(db) as conn:
        return list(conn.iterdump())


def run_in_process(db, args, capsys, monkeypatch) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `tokenbudget --store DB ARGS`; a traceback fails the test."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("<|endoftext|> lead lead"))
    argv = args if "--store" in args else ["--store", f"sqlite:///{db}", *args]
    try:
        code = cli.main(argv)
    except SystemExit as e:  # argparse's --help; errors must return
        code = e.code if isinstance(e.code, int) else 2
    out = capsys.readouterr()
    return code, out.out, out.err


def check_contract(code, err, before, after) -> None:
    assert code in (0, 1, 2)
    assert "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith("tokenbudget: "), err
        assert after == before, "exit 2 but the store changed"


def test_the_table_is_big_enough():
    assert len(CASES) >= 100


@pytest.mark.parametrize("args", CASES, ids=[_id(c) for c in CASES])
def test_in_process(small, args, capsys, monkeypatch):
    db = small.store.path
    before = dump(db)
    code, _, err = run_in_process(db, args, capsys, monkeypatch)
    check_contract(code, err, before, dump(db))


def test_a_bad_tier_refuses_the_good_one_beside_it(small, capsys, monkeypatch):
    db = small.store.path
    before = dump(db)
    code, _, err = run_in_process(db, ["tiers", "--set", "1=5", "--set", "2=abc"],
                               capsys, monkeypatch)
    assert code == 2 and "tier 2" in err
    assert dump(db) == before


def test_huge_numbers_are_bad_input(small, capsys, monkeypatch):
    for args in (["set-budget", "A", HUGE], ["tiers", "--set", f"1={HUGE}"],
                 ["tiers", "--set", f"{HUGE}=5"], ["demo-data", "--clients", HUGE]):
        code, _, err = run_in_process(small.store.path, args, capsys, monkeypatch)
        assert code == 2 and ("at most" in err or " to " in err), err


def test_count_takes_every_encoding(small, capsys, monkeypatch):
    code, out, _ = run_in_process(small.store.path, ["count", "--encoding", "chars4", "-"],
                                  capsys, monkeypatch)
    assert (code, out) == (0, "6 -\n")  # ceil(23 / 4)


def test_argparse_errors_are_one_line(small, capsys, monkeypatch):
    code, _, err = run_in_process(small.store.path, ["usage", "--bogus"], capsys, monkeypatch)
    assert code == 2 and err.startswith("tokenbudget: error: ") and err.count("\n") == 1


# real processes ------------------------------------------------------------------------------
def tb_bytes(db, *args: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "budget", b"--store", f"sqlite:///{db}".encode(),
                           *args], capture_output=True, timeout=120)


PROCESS_CASES = [
    (b"usage", b"--client", b"\xff"),
    (b"set-budget", b"A", b"\xff\xfe"),
    (b"tiers", b"--set", b"1=5", b"--set", b"2=\xff"),
    (b"set-budget", b"A", HUGE.encode()),
    (b"usage", b"--bogus"),
    (b"count", b"--encoding", b"chars4", b"/dev/null"),
]


@pytest.mark.parametrize("args", PROCESS_CASES, ids=[_id([os.fsdecode(a) for a in c])
                                                     for c in PROCESS_CASES])
def test_in_a_process(small, args):
    db = small.store.path
    before = dump(db)
    r = tb_bytes(db, *args)
    check_contract(r.returncode, r.stderr.decode("utf-8", "replace"), before, dump(db))


def test_a_closed_pipe_ends_quietly(demo_copy):
    """`tokenbudget usage | head -1`: the reader went away; nothing to say about it."""
    p = subprocess.Popen([sys.executable, "-m", "budget", "--store", f"sqlite:///{demo_copy}",
                          "usage"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()  # before the process writes a byte
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 0
    assert err == ""
