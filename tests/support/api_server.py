"""uvicorn in a thread on a free loopback port, and the bearer tokens the tests use."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from budget.api import create_app
from budget.service import BudgetService

ADMIN_TOKEN, VIEWER_TOKEN = "adm-5f0c9e2b71d4", "view-8a13d6c0e94f"
TOKENS = {ADMIN_TOKEN: "admin", VIEWER_TOKEN: "viewer"}
AS_ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
AS_VIEWER = {"Authorization": f"Bearer {VIEWER_TOKEN}"}


def serve(service: BudgetService, tokens: dict[str, str] = TOKENS
          ) -> AbstractContextManager[httpx.Client]:
    return serve_app(create_app(service, tokens))


@contextmanager
def serve_app(app: FastAPI) -> Iterator[httpx.Client]:
    """uvicorn in a thread on a free loopback port; yields a client for its base URL."""
    # proto IPPROTO_TCP, as uvicorn's own bind has it: asyncio then sets TCP_NODELAY on each
    # connection; with proto 0 every answer waits ~40 ms for a delayed ACK
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}",
                          timeout=60) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@contextmanager
def serve_process(env: dict[str, str], cwd: str) -> Iterator[tuple[httpx.Client, int]]:
    """`uvicorn --factory budget.api:from_settings` in a process of its own, as `make api`
    serves it, on a loopback socket the test binds; yields a client and the server's pid,
    so a test can read the server's own memory (/proc/PID/status)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "budget.api:from_settings",
         "--fd", str(sock.fileno()), "--log-level", "warning"],
        env={**os.environ, **env}, cwd=cwd, pass_fds=[sock.fileno()])
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("uvicorn did not start") from None
                    time.sleep(0.1)
            yield client, proc.pid
    finally:
        proc.terminate()
        proc.wait(30)
        sock.close()


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    with open(f"/proc/{pid}/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return kb / 1024
