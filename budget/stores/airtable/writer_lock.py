"""The Airtable writers' lock of one machine: an exclusive `flock` on a file next to the
sidecar (`<sidecar>.lock`), held for a whole transaction.

Why not the sidecar's SQLite write lock alone: a write must be recorded in the journal
(and committed, so that it survives a `kill -9`) before it is sent, and the outcome
committed after; that is two commits, and between them SQLite's lock is free. The flock
keeps every other writer of the base out from the first read to the last commit, and
the kernel releases it when its holder dies, so a dead writer never blocks the next."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..base import StoreBusy

POLL = 0.02  # seconds between tries while another writer holds the lock


@contextmanager
def writer_lock(sidecar: str, timeout: float) -> Iterator[None]:
    """Holds the lock while the body runs; StoreBusy after `timeout` seconds of waiting."""
    path = sidecar + ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreBusy(f"Airtable sidecar {sidecar}: busy: another writer held "
                                    f"the lock past the {timeout:g} s lock timeout; try "
                                    "again") from None
                time.sleep(POLL)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the lock
