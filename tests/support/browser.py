"""Headless Debian Chromium against a real `streamlit run`: the server and the launch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
SHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run must install Debian's chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")


@contextmanager
def streamlit_server(db, work: Path, *, app: Path = ROOT / "app.py", address: str = "127.0.0.1",
                     **env: str) -> Iterator[str]:
    """`streamlit run app.py` (or another `app`) on a free port of `address` (loopback
    unless a test asks for another, e.g. 0.0.0.0) over the SQLite file `db`; yields its
    loopback URL once /_stcore/health answers. No file watcher: an edit to a page while a
    test runs would make the browser re-read the page list mid-test."""
    port = _free_port()
    log = work / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(app),
         "--server.headless=true", f"--server.port={port}", f"--server.address={address}",
         "--server.fileWatcherType=none"],
        cwd=ROOT, env={**os.environ, "TOKENBUDGET_STORE": f"sqlite:///{db}", **env},
        stdout=open(log, "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    pytest.fail(f"streamlit did not start:\n{log.read_text()}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def open_page(browser, server: str, path: str):
    """Opens `path` straight away, as a bookmark would on a fresh server, and waits until
    the app has drawn it: a heading, app.py's navigation (the page files live in
    app_pages/, which Streamlit does not pick up by itself, so even the first visitor
    gets the frame), and the script done."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page.goto(f"{server}/{path}")
    page.wait_for_selector("h1", timeout=90_000)
    page.locator("[data-testid='stSidebarNav']").get_by_text("Audit log").wait_for(
        timeout=90_000)
    page.wait_for_selector(IDLE, timeout=90_000)
    return page


def grid_rows(page, key: str) -> list[dict[str, str]]:
    """The rows of the dataframe keyed `key` that the grid has drawn (it draws only what
    is in view), by column header, from the grid's accessible table."""
    grid = page.locator(f".st-key-{key} [data-testid='stDataFrame']")
    grid.locator("[role=gridcell]").first.wait_for(state="attached", timeout=30_000)
    headers = grid.locator("[role=columnheader]").all_inner_texts()
    return [dict(zip(headers, row.locator("[role=gridcell]").all_inner_texts(), strict=False))
            for row in grid.locator("[role=row]").all()
            if row.locator("[role=gridcell]").count()]


def screenshot(page, name: str) -> None:
    """The whole page as test-output/screenshots/`name`.png. The app scrolls inside its
    main area, not the document, so the window is first made as tall as that content."""
    from playwright.sync_api import expect  # like the browser fixture: only browser suites
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("document.querySelector(\"[data-testid='stMain']\").scrollHeight")
    page.set_viewport_size({"width": page.viewport_size["width"], "height": max(1000, height)})
    page.wait_for_timeout(500)  # the grid and charts redraw at the new size
    # an element whose code is still loading shows a grey skeleton: wait until none does
    expect(page.locator("[data-testid='stSkeleton']")).to_have_count(0, timeout=30_000)
    page.screenshot(path=str(SHOTS / f"{name}.png"))
