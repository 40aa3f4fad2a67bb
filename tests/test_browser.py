"""Every page in headless Debian Chromium against a real `streamlit run`."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
PAGES = {"overview": "", "client": "client?client=C0004", "analytics": "analytics",
         "admin": "admin", "audit": "audit", "root-deep-link": "?client=C0002"}

pytestmark = pytest.mark.browser


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
def streamlit_server(db, work: Path, **env: str) -> Iterator[str]:
    """`streamlit run app.py` on a free loopback port over the SQLite file `db`; yields
    its URL once /_stcore/health answers. No file watcher: an edit to a page while a
    test runs would make the browser re-read the page list mid-test."""
    port = _free_port()
    log = work / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
         "--server.headless=true", f"--server.port={port}", "--server.address=127.0.0.1",
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


@pytest.fixture(scope="module")
def server(demo_db, tmp_path_factory):
    require_chromium()
    with streamlit_server(demo_db, tmp_path_factory.mktemp("streamlit")) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders_without_exception(server, browser, name):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server}/{PAGES[name]}")
    idle = "[data-testid='stApp'][data-test-script-state='notRunning']"
    page.wait_for_selector(idle, timeout=60_000)
    page.wait_for_selector("h1", timeout=30_000)
    page.wait_for_timeout(1500)  # a deep link reruns once more (switch_page)
    page.wait_for_selector(idle, timeout=60_000)
    if page.locator("[data-testid='stDataFrame']").count():
        page.wait_for_selector("[data-testid='stDataFrame'] canvas", timeout=30_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    errors = page.locator("[data-testid='stException']")
    assert errors.count() == 0, errors.first.inner_text()
    heading = page.locator("h1").first.inner_text()
    expected = {"overview": "Token budgets", "analytics": "Analytics", "admin": "Admin",
                "audit": "Audit log"}
    if name in expected:
        assert heading == expected[name]
    else:  # a client page: its headline carries the figures
        assert "Token Usage:" in page.locator("h3").first.inner_text()
    page.close()
