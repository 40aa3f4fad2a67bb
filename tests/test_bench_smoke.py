"""The benchmark's code at a tiny size: every section runs and reports, and the Airtable
store's requests match Airtable's limits (100 records a page, 10 a write). No timings
are asserted: speed is what `make bench` prints."""

import math
import os
from datetime import UTC, datetime

import pytest

from benchmarks import airtable_requests, bench, browser, store_load
from benchmarks.data import cached_db, generate
from benchmarks.harness import interleaved
from benchmarks.report import render_table, write_results
from benchmarks.row import Row
from budget.stores import SQLiteStore
from tests.support.postgres_server import missing_reason

CLIENTS, PER_CLIENT = 3, 70  # 210 attributes: three pages of attributes


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """One run of every section, shared by the tests of this module."""
    tmp = tmp_path_factory.mktemp("bench")
    return bench.run_size(CLIENTS, PER_CLIENT, seed=5, workdir=tmp, data_dir=tmp,
                          log=lambda line: None)


def test_every_section_reports_every_row(rows, tmp_path):
    counts = {s: sum(1 for r in rows if r.section == s) for s in bench.SECTIONS}
    postgresql = 5 if missing_reason() is None else 0  # skipped without the server
    in_browser = 18 if browser.missing_reason() is None else 0  # or without Chromium
    assert counts == {"counting": 9, "pool": 5, "incremental": 3, "load": 4,
                      "postgresql": postgresql, "airtable": 7, "airtable_mirror": 20, "pages": 5,
                      "browser": in_browser}
    assert all(r.size == "3 x 70" and r.attributes == 210 for r in rows)
    table = render_table(rows)
    assert len(table.splitlines()) == len(rows) + 2
    out = tmp_path / "results.md"
    write_results(rows, datetime.now(UTC), "0.1", "0.2", "notes", bench.WHY_MISSED, out)
    text = out.read_text()
    assert f"**{os.cpu_count()} cores**" in text
    assert all(f"| {r.measure} | {r.figure} |" in text for r in rows)


def test_airtable_requests_equal_the_formula(rows):
    want = {"list requests, Clients (3 records)": math.ceil(CLIENTS / 100),
            "list requests, Scoring Attributes (210 records)": math.ceil(210 / 100),
            "update requests, 210 attribute updates": math.ceil(210 / 10)}
    got = {r.measure: r.value for r in rows if r.measure in want}
    assert got == want
    assert all(r.met for r in rows if r.measure in want)
    wall = next(r for r in rows if r.measure.startswith("load: wall time at 5 req/s"))
    assert wall.value == (want["list requests, Clients (3 records)"]
                          + want["list requests, Scoring Attributes (210 records)"]) / 5


def test_the_airtable_mirror_section_meets_each_situation_of_its_table(tmp_path):
    rows = bench.run_size(CLIENTS, PER_CLIENT, seed=5, workdir=tmp_path, data_dir=tmp_path,
                          sections=["airtable_mirror"], log=lambda line: None)
    assert len(rows) == 20
    judged = [r for r in rows if r.limit is not None]
    assert len(judged) == 8 and all(r.met for r in judged), [r.measure for r in judged
                                                              if not r.met]


def test_writes_on_a_base_of_the_written_records_count_the_same(tmp_path, monkeypatch):
    """The path the 20,000 and 100,000 sizes take for writes (see airtable_requests)."""
    monkeypatch.setattr(airtable_requests, "FULL_BASE_WRITES", 0)
    _, clients, attrs = generate(CLIENTS, PER_CLIENT, seed=5)
    out = airtable_requests.measure(clients, attrs, 25, tmp_path)
    assert out["write_base_records"] == 25
    assert out["write_update_requests"] == math.ceil(25 / 10)
    assert out["load_attributes_requests"] == math.ceil(210 / 100)


def test_generated_data_is_deterministic_and_distinct(tmp_path):
    a, b = generate(CLIENTS, PER_CLIENT, seed=5), generate(CLIENTS, PER_CLIENT, seed=5)
    assert a == b
    texts = [t for x in a[2] for t in (x.instructions, x.examples, x.signals)]
    assert len(set(texts)) == len(texts)  # no cache can make a recount cheaper
    mean = sum(map(len, texts)) / len(a[2])
    assert 1_300 < mean < 1_700  # about 1,500 characters an attribute
    path = cached_db(CLIENTS, PER_CLIENT, seed=5, data_dir=tmp_path)
    assert cached_db(CLIENTS, PER_CLIENT, seed=5, data_dir=tmp_path) == path  # reused
    assert len(SQLiteStore(str(path)).attributes()) == CLIENTS * PER_CLIENT


def test_a_missed_target_says_by_how_much_and_why(tmp_path):
    row = Row("2,000 x 50", 100_000, "load", "usage of every client", 1.25, "s", 1.0)
    assert (row.met, row.verdict, row.target) == (False, "**MISSED**", "< 1.000 s")
    assert row.shortfall == "0.250 s over (+25%)"
    out = tmp_path / "results.md"
    write_results([row], datetime.now(UTC), "0", "0", "", bench.WHY_MISSED, out)
    text = out.read_text()
    assert "## Targets (some missed: see below)" in text and "## Targets missed" in text
    assert "| usage of every client | 2,000 x 50 | 1.250 s | < 1.000 s | **MISSED** |" in text
    assert "1.250 s against < 1.000 s, 0.250 s over (+25%). Why:" in text
    assert store_load.WHY_MISSED in text


def test_rounds_alternate_the_order_and_stop_each_path_at_its_count():
    calls: list[str] = []
    paths = {name: (lambda name=name: calls.append(name) or name) for name in "abc"}
    timings = interleaved(paths, {"a": 3, "b": 1, "c": 3})
    assert calls == ["a", "b", "c", "c", "a", "a", "c"]  # no path always first
    assert timings.results == {"a": "a", "b": "b", "c": "c"}
    assert set(timings.wall) == set(timings.cpu) == set(paths)
