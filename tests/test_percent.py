"""Percent used: one whole number, rounded down, the same on every page, in the CSV, the
CLI and the API."""

import io
import json
import subprocess
import sys

import pandas as pd
import pytest

from budget import core, views
from budget.model import Client, Usage
from tests.support.api_server import AS_VIEWER, serve
from tests.support.apptest import text_of
from tests.support.factories import make_service


@pytest.mark.parametrize(("used", "limit", "pct"), [
    (5727, 6000, 95),     # 95.45: rounded down, never up to 96
    (5730, 6000, 95),     # 95.5 exactly: still 95
    (5999, 6000, 99),     # a token short of the budget is not 100
    (999_999, 1_000_000, 99),
    (6000, 6000, 100),    # at the budget
    (7380, 6000, 123),    # over it
    (1, 3000, 0),
    (0, 3000, 0),
    (0, 0, 0),            # an empty budget: no division by zero
    (5, 0, 100),          # anything used of an empty budget is over it
])
def test_percent_used_is_a_whole_number_rounded_down(used, limit, pct):
    assert core.percent_used(used, limit) == pct
    assert type(core.percent_used(used, limit)) is int
    assert core.format_usage(used, limit).endswith(f"({pct}% used)")
    usage = Usage(Client("c", "C", 1), limit, used, core.status(used, limit))
    assert usage.percent_used == pct and type(usage.percent_used) is int


def test_format_usage_says_it_one_way():
    assert core.format_usage(1250, 5000) == "1,250 / 5,000 tokens (25% used)"
    assert core.format_usage(5727, 6000) == "5,727 / 6,000 tokens (95% used)"


def test_overview_csv_and_client_headline_agree_for_every_demo_client(demo_copy):
    """The Overview download against each client's headline: one figure per client."""
    svc = make_service(demo_copy)
    csv = views.usage_frame(svc.usage_report(), svc.tiers()).to_csv(index=False)
    table = pd.read_csv(io.StringIO(csv))
    assert len(table) == 40
    fractional = 0
    for row in table.itertuples(index=False):
        usage = svc.client_usage(row.client_id)
        exact = 100 * usage.usage / usage.budget
        fractional += exact != int(exact)
        assert f"({row.percent_used}% used)" in views.headline(usage), row.client
        assert row.percent_used == int(exact) and str(row.percent_used).isdigit()
    assert fractional > 10  # the demo data does exercise the rounding


def test_overview_page_client_page_cli_and_api_show_one_figure(app, demo_copy):
    svc = make_service(demo_copy)
    report = svc.usage_report()
    # the client whose exact share has the largest fraction: where rounding twice shows
    u = max(report, key=lambda u: (100 * u.usage / u.budget) % 1)
    pct = 100 * u.usage // u.budget
    at = app(demo_copy)
    shown = at.dataframe[0].value.set_index("client_id")
    assert shown.loc[u.client.id, "percent_used"] == pct
    at = app(demo_copy, "app_pages/client.py", client=u.client.id)
    assert f"{u.usage:,} / {u.budget:,} tokens ({pct}% used)" in text_of(at)
    run = subprocess.run([sys.executable, "-m", "budget", "--store", f"sqlite:///{demo_copy}",
                          "usage", "--client", u.client.id, "--json"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    (row,) = json.loads(run.stdout)
    assert row["percent_used"] == pct and type(row["percent_used"]) is int
    with serve(svc) as api:
        (out,) = api.get("/api/token-usage", params={"client_id": u.client.id},
                         headers=AS_VIEWER).json()
    assert out["percent_used"] == pct and type(out["percent_used"]) is int
