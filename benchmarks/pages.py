"""Server-side render time of the Overview and Client pages (Streamlit AppTest, no
browser): the first render with empty caches, which includes loading every client's
usage, and the next, cached one. Both must stay under PAGE_TARGET at the target size.
And the live preview: the Client page's run from a typed text reaching the server (the
live box's state set, as the browser sends it) to the end of the run that shows its
figures, which must stay under PREVIEW_TARGET."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from budget.stores import SQLiteStore

from .harness import ROOT
from .row import Row
from .size import SizeRun

SECTION = "pages"
PAGE_TARGET = 2.0  # seconds, at 100,000 attributes
PREVIEW_TARGET = 300.0  # ms of server time after the last keystroke's text arrives
KEYSTROKES = 7  # texts sent, one more character each; the median run is reported
WHY_MISSED = (
    "Why: a first render loads every client's usage (the load section) before it draws; "
    "a cached render reuses it. What would close it: a faster load (see there), or "
    "computing the usage table when the data version moves instead of on first view.")


@contextmanager
def app_on(db: Path) -> Iterator[None]:
    """The app's settings pointed at `db` for the duration, with fresh caches; the
    environment and caches are put back afterwards (the smoke test shares a process).
    Streamlit is imported on use: loaded earlier, it would weigh on the sections that
    run before this one in the same process."""
    import streamlit as st

    before = os.environ.get("TOKENBUDGET_STORE")
    os.environ["TOKENBUDGET_STORE"] = f"sqlite:///{db}"
    try:
        yield
    finally:
        if before is None:
            del os.environ["TOKENBUDGET_STORE"]
        else:
            os.environ["TOKENBUDGET_STORE"] = before
        st.cache_data.clear()
        st.cache_resource.clear()


def measure(db: Path) -> dict[str, float]:
    """Server-side render time of Overview and Client in AppTest: the first render
    (empty caches: opens the store and loads the data) and the next one (cached). Each
    AppTest runs once untimed first: its first run scans the installed packages for
    components (about 0.3 s), which a server does once at start, not per page view."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    first = SQLiteStore(str(db)).clients()[0]
    out: dict[str, float] = {}
    with app_on(db):
        for page, params in (("overview", {}), ("client", {"client": first.id})):
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
            for k, v in params.items():
                at.query_params[k] = v
            at.run()
            st.cache_data.clear()
            st.cache_resource.clear()
            for run in ("first", "cached"):
                t0 = time.perf_counter()
                at.run()
                out[f"{page}_{run}"] = time.perf_counter() - t0
                if at.exception:
                    raise AssertionError(f"{page} page failed: {at.exception}")
            if page == "client" and at.title[0].value != first.name:
                raise AssertionError("the client page did not open the client asked for")
        out["preview_ms"] = preview_ms(at)
    return out


def preview_ms(at) -> float:
    """The median ms of the Client page's run after a text typed into Signals arrives:
    one more character per run, as the box sends them while the user types."""
    from tests.support.apptest import live_box

    box = live_box(at, "Signals")
    runs = []
    for i in range(1, KEYSTROKES + 1):
        box.input(box.value + " more"[:i])
        t0 = time.perf_counter()
        at.run()
        runs.append((time.perf_counter() - t0) * 1000)
        if at.exception or "tokens (delta" not in "".join(c.value for c in at.caption):
            raise AssertionError(f"the typed text was not previewed: {at.exception}")
    return sorted(runs)[len(runs) // 2]


def rows(run: SizeRun) -> list[Row]:
    """Both pages, first and cached render."""
    pages = measure(run.db)
    return [run.row(SECTION, f"{page.title()} page, {render} render", pages[f"{page}_{render}"],
                    "s", run.at_target_size(PAGE_TARGET))
            for page in ("overview", "client") for render in ("first", "cached")] + [
        run.row(SECTION, "Client page, a typed text to its preview (server, median run)",
                pages["preview_ms"], "ms", PREVIEW_TARGET)]
