"""Pages as the user sees them: headless Debian Chromium (Playwright) against a real
`streamlit run` of ours and of a minimal reference page (benchmarks/reference_app.py)
in the same run, timed until the script has finished and nothing is left to draw: no
skeleton, no stale element, every chart's SVG and every grid's canvas in place.

Per page: the first visit (a new tab, the first of that page since the server
started), a revisit (another new tab), and on the Client page the three interactions:
choose a client, type into a field until the preview shows, press Save until it says
saved, done for PICKS clients in turn, each opened for the first time, the median of
them kept for the round. ROUNDS rounds, each on newly started servers and browser,
alternate which side goes first; each measure is reported as the median of the rounds'
ours / reference, then in seconds (medians). Skipped, with the reason printed,
without Chromium or Playwright."""

from __future__ import annotations

import os
import pickle
import sqlite3
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from statistics import median

from budget import views
from budget.service import BudgetService
from budget.settings import Settings
from budget.stores import SQLiteStore

from .harness import ROOT
from .row import Row
from .size import SizeRun

SECTION = "browser"
TARGET = 1.5  # ours / reference, every page and interaction
TRIM = 12  # characters deleted from the end of a text, one keystroke each
# rounds, each on fresh servers and a fresh browser, medians reported; and clients chosen in
# turn in a round, each opened for the first time there. With 3 and 3, the same code's
# ratios moved by up to 0.15x between whole runs (a 1.41x choose came out 1.51x), and the
# same page against a copy of itself in 8 alternating timings measured 0.95x to 1.05x
ROUNDS = 5
PICKS = 5
PAGES = {"overview": "", "client": "client?client={client}", "analytics": "analytics"}
REFERENCE = ROOT / "benchmarks" / "reference_app.py"
WHY_MISSED = (
    "Why: a Save writes the attribute, its usage, a history and an audit row in one "
    "transaction, forgets the cached figures and redraws the part of the page it moves "
    "(headline, status, grid, chart, editor, bulk switch, notice: about 25 elements, "
    "its text boxes anew under the saved version's keys, as a draft is kept per version "
    "it is based on); the reference saves nothing and changes one figure. Choosing a "
    "client draws its headline, status, grid, chart, editor and bulk switch, about 20 "
    "elements where the reference draws five; its "
    "suggestions are looked for only once asked. A first visit is the first page after "
    "the server starts. On this shared 2-core machine a ratio moves by 0.1x to 0.3x "
    "between runs. See benchmarks/notes.md, 'In the browser'.")
# the page is drawn: script done, nothing stale or loading, every chart and grid drawn
DRAWN = """() => {
  const app = document.querySelector("[data-testid='stApp']");
  if (!app || app.dataset.testScriptState !== 'notRunning') return false;
  if (document.querySelector("[data-testid='stSkeleton'], [data-stale='true']")) return false;
  for (const c of document.querySelectorAll("[data-testid='stPlotlyChart']"))
    if (!c.querySelector('.main-svg')) return false;
  for (const g of document.querySelectorAll("[data-testid='stDataFrame']"))
    if (!g.querySelector('canvas')) return false;
  return document.querySelector('h1') !== null;
}"""


def missing_reason() -> str | None:
    """Why no browser can run here, or None."""
    from tests.support.browser import CHROMIUM
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    return None


def _drawn(page, timeout_ms: float = 120_000) -> None:
    page.wait_for_timeout(50)  # the rerun an action starts reaches the page
    page.wait_for_function(DRAWN, timeout=timeout_ms, polling=20)


def _timed(action: Callable[[], None], done: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    action()
    done()
    return time.perf_counter() - t0


def reference_data(db: Path, path: Path) -> tuple[str, list[str]]:
    """Writes the reference's data to `path`: the Overview's frame; for the Client page
    the selector's options (every client, labelled as ours labels them) and the
    attribute library of the client shown first and of the PICKS chosen next, so
    choosing a client redraws its own grid and chart on both sides; for Analytics as
    many frames and charts as ours draws (counted in the browser: see `counts`).
    Returns the client shown first and the ones chosen next."""
    svc = BudgetService(SQLiteStore(str(db)), Settings(store=f"sqlite:///{db}"))
    overview = views.usage_display(views.usage_frame(svc.usage_report(), svc.tiers()))
    clients = svc.store.clients()
    first, picks = clients[0], clients[1:1 + PICKS]
    data = {"overview": {"frames": [overview], "charts": 0},
            "analytics": {"frames": [overview.head(20)], "charts": 8},
            "clients": {c.id: views.client_label(c.id, c.name) for c in clients},
            "libraries": {c.id: views.attribute_frame(svc.store.attributes(c.id),
                                                      svc.costs(c.id))
                          for c in (first, *picks)}}
    path.write_bytes(pickle.dumps(data))
    return first.id, [c.id for c in picks]


def counts(page) -> tuple[int, int]:
    """(grids, charts) the page shows."""
    return (page.locator("[data-testid='stDataFrame']").count(),
            page.locator("[data-testid='stPlotlyChart']").count())


def visits(browser, server: str, paths: dict[str, str]) -> dict[str, float]:
    """First visit and revisit of each page, each in a new tab, in the order of PAGES."""
    out: dict[str, float] = {}
    for name, path in paths.items():
        for visit in ("first", "revisit"):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            t0 = time.perf_counter()
            page.goto(f"{server}/{path}")
            _drawn(page)
            out[f"{name} {visit}"] = time.perf_counter() - t0
            if name == "analytics" and visit == "revisit":
                out["analytics grids"], out["analytics charts"] = counts(page)
            page.close()
    return out


def interactions(browser, server: str, path: str, picks: dict[str, str]
                 ) -> dict[str, float]:
    """On one tab of the Client page (or the reference's), for each client of `picks`
    (id: name) in turn: choose it (typing its id into the selector, until its name is
    the title), type into a field until the preview shows, Save until it says saved.
    Each interaction's median over the clients."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server}/{path}")
    _drawn(page)
    times: dict[str, list[float]] = {}
    for pick, title in picks.items():
        for what, seconds in _interactions(page, pick, title).items():
            times.setdefault(what, []).append(seconds)
    page.close()
    return {what: median(seconds) for what, seconds in times.items()}


def _interactions(page, pick: str, title: str) -> dict[str, float]:
    out: dict[str, float] = {}

    def choose() -> None:
        page.get_by_test_id("stSelectbox").first.click()
        page.keyboard.type(pick)
        page.keyboard.press("Enter")

    out["choose a client"] = _timed(choose, lambda: (
        page.wait_for_function(
            "s => document.querySelector('h1')?.textContent.includes(s)", arg=title,
            timeout=120_000), _drawn(page)))
    box = page.get_by_label("Signals", exact=True)

    def type_() -> None:  # a trim, as a user shortens a text: allowed even over budget
        box.click()
        box.press("End")
        for _ in range(TRIM):
            box.press("Backspace")
        box.press("Control+Enter")

    out["type until the preview shows"] = _timed(type_, lambda: (
        page.get_by_text("tokens (delta").first.wait_for(timeout=120_000), _drawn(page)))
    out["press Save until it says saved"] = _timed(
        lambda: page.locator(".st-key-save button").click(),
        lambda: (page.get_by_test_id("stAlertContentSuccess").first.wait_for(timeout=120_000),
                 _drawn(page)))
    return out


def one_round(run: SizeRun, db: Path, ref: Path, first: str, picks: list[str],
              ours_first: bool) -> dict[str, dict[str, float]]:
    """Every timing of ours and of the reference on servers and a browser started for
    this round (so a first visit is the first since the server started, with the
    browser's cache empty), `ours_first` deciding which side each step measures first.
    When ours goes first, the reference is told how many grids and charts our Analytics
    page drew before it draws its own (it reads its data on its first visit)."""
    from playwright.sync_api import sync_playwright

    from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, streamlit_server

    names = {c.id: c.name for c in SQLiteStore(str(db)).clients()}
    with ExitStack() as stack:
        urls = {"ours": stack.enter_context(streamlit_server(db, run.workdir)),
                "reference": stack.enter_context(streamlit_server(
                    db, run.workdir, app=REFERENCE, REFERENCE_DATA=str(ref)))}
        p = stack.enter_context(sync_playwright())
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        paths = {"ours": {k: v.format(client=first) for k, v in PAGES.items()},
                 "reference": {k: f"?view={k}" for k in PAGES}}
        order = ["ours", "reference"] if ours_first else ["reference", "ours"]
        out: dict[str, dict[str, float]] = {}
        for side in order:
            out[side] = visits(browser, urls[side], paths[side])
            grids, charts = out[side].pop("analytics grids"), out[side].pop("analytics charts")
            if side == "ours":
                data = pickle.loads(ref.read_bytes())
                data["analytics"] = {"frames": data["analytics"]["frames"][:1] * int(grids),
                                     "charts": int(charts)}
                ref.write_bytes(pickle.dumps(data))
        for side in order:
            out[side].update(interactions(browser, urls[side], paths[side]["client"],
                                          {c: names[c] for c in picks}))
    return out


def measure(run: SizeRun) -> dict[str, dict[str, float]]:
    """Each timing of ours and of the reference, the median of ROUNDS rounds that
    alternate which side goes first; "ratio" holds the median of each round's ours /
    reference, the two measured within seconds of each other."""
    db = run.workdir / "browser.db"
    with sqlite3.connect(run.db) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    ref = run.workdir / "reference.pickle"
    first, picks = reference_data(db, ref)
    rounds = [one_round(run, db, ref, first, picks, ours_first=i % 2 == 0)
              for i in range(ROUNDS)]
    keys = list(rounds[0]["ours"])
    return {"ours": {k: median(r["ours"][k] for r in rounds) for k in keys},
            "reference": {k: median(r["reference"][k] for r in rounds) for k in keys},
            "ratio": {k: median(r["ours"][k] / r["reference"][k] for r in rounds)
                      for k in keys}}


def rows(run: SizeRun, log: Callable[[str], None] = print) -> list[Row]:
    """Ours / reference for each page and interaction, then ours and the reference in
    seconds; none, with the reason logged, without a browser."""
    reason = missing_reason()
    if reason is not None:
        log(f"  {run.label}: browser section skipped: {reason}")
        return []
    m = measure(run)
    ours, ref = m["ours"], m["reference"]
    out = [run.row(SECTION, f"{k}: ours / reference", m["ratio"][k], "x", TARGET, "<=")
           for k in ours]
    out += [run.row(SECTION, f"{k}: ours (reference {ref[k]:.2f} s)", ours[k], "s")
            for k in ours]
    return out
