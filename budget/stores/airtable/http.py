"""Requests to Airtable within its limits, and their failures in words.

Paced under Airtable's 5 requests per second per base (`AIRTABLE_MIN_INTERVAL`), shared
by the processes of a machine; a 429 waits out Airtable's penalty
(`AIRTABLE_RATE_LIMIT_PENALTY`, 30 s) and is retried, except inside a transaction, which
never waits it out while it holds the writers' lock: it fails fast (StoreBusy);
idempotent requests (GET, PATCH with absolute values, DELETE, list) are retried on 5xx,
dropped connections and answers that are not the JSON Airtable promises (a body cut off
mid-way, a proxy's HTML page, JSON of another shape), with backoff. pyairtable's own
retry (429 only, about 3 s) is switched off. Error messages name the table and never
contain the API key."""

from __future__ import annotations

import fcntl
import os
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from pyairtable import Api

from ...redact import scrub
from ..base import StoreBusy, StoreError
from .config import AirtableConfig

_IDEMPOTENT = {"GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
_SLOT = struct.Struct("<d")  # the pacing file: the next free time
# inside a transaction, how long a request may wait for its turn (other processes' turns
# come first); longer means a penalty: fail fast rather than hold the writers' lock
TURN_WAIT = 2.0
GARBLED = "NOT_AIRTABLE_JSON"  # the error type of an answer that is not Airtable's JSON
PENALTY = "RATE_LIMIT_PENALTY"  # not sent: the penalty after a 429 still runs


class PenaltyInForce(Exception):
    """A request would have to wait out Airtable's penalty where nothing may wait."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


class Pacer:
    """Spaces requests to one base at least `interval` seconds apart, across threads
    and, with a `path`, across the processes of the machine: the next free time is kept
    in that file (next to the sidecar), under a flock held only to read and move it, so
    concurrent CLI runs, the API and the dashboard share the base's 5 requests per
    second instead of each taking 4.5. Times are wall-clock seconds, which every process
    reads alike."""

    def __init__(self, interval: float, path: str | None = None) -> None:
        self.interval = interval
        self.path = path
        self._next = 0.0  # without a file
        self._lock = threading.Lock()

    @contextmanager
    def _slot(self) -> Iterator[list[float]]:
        """The next free time, to read and move, for this thread and process alone."""
        with self._lock:
            if not self.path:
                box = [self._next]
                yield box
                self._next = box[0]
                return
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                raw = os.pread(fd, _SLOT.size, 0)
                box = [_SLOT.unpack(raw)[0] if len(raw) == _SLOT.size else 0.0]
                yield box
                os.pwrite(fd, _SLOT.pack(box[0]), 0)
            finally:
                os.close(fd)

    def wait(self, at_most: float | None = None) -> None:
        """Takes the next free time and sleeps until it comes; PenaltyInForce instead
        (taking nothing) if that is more than `at_most` seconds away."""
        with self._slot() as nxt:
            now = time.time()
            at = max(now, nxt[0])
            if at_most is not None and at - now > at_most:
                raise PenaltyInForce(at - now)
            nxt[0] = at + self.interval
        if at > now:
            time.sleep(at - now)

    def quiet_for(self) -> float:
        """Seconds until the base may be sent anything (a penalty being waited out)."""
        with self._slot() as nxt:
            return max(0.0, nxt[0] - time.time())

    def penalise(self, seconds: float) -> None:
        with self._slot() as nxt:
            nxt[0] = max(nxt[0], time.time() + seconds)


class AirtableFailure(Exception):
    """One failed request, reduced to plain strings: no response, request or headers,
    so nothing that carries the API key travels with it."""

    def __init__(self, status: int, error_type: str, message: str, method: str) -> None:
        self.status, self.error_type, self.message, self.method = (status, error_type,
                                                                   message, method)
        super().__init__(f"{status or 'network'} {error_type}: {message}")


class PacedApi(Api):
    """pyairtable's Api with Airtable's limits respected: every request (records and
    metadata alike) goes through `request`, so pacing and retries cover them all."""

    def __init__(self, config: AirtableConfig, pacer: Pacer) -> None:
        super().__init__(config.api_key, endpoint_url=config.endpoint_url, retry_strategy=None,
                         timeout=config.timeout)  # type: ignore[arg-type]
        self._config, self._pacer = config, pacer
        self.sent = 0  # requests sent, retries included
        self._fast = threading.local()

    @contextmanager
    def failing_fast(self) -> Iterator[None]:
        """While this thread holds the writers' lock: no penalty is waited out, so a
        429, or a turn further off than TURN_WAIT (a penalty another process is waiting
        out), fails at once and the lock is let go; the caller may try again later."""
        self._fast.on = True
        try:
            yield
        finally:
            self._fast.on = False

    def wait_out_penalty(self) -> None:
        """Sleeps out a rate-limit penalty in force, holding no lock: what a writer
        does before it takes the writers' lock."""
        time.sleep(self._pacer.quiet_for())

    def request(self, method: str, url: str, fallback: tuple[str, str] | None = None,
                options: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
                json: dict[str, Any] | None = None) -> Any:
        idempotent = method.upper() in _IDEMPOTENT or str(url).endswith("/listRecords")
        fast = getattr(self._fast, "on", False)
        attempt = 0
        while True:
            try:
                self._pacer.wait(TURN_WAIT if fast else None)
            except PenaltyInForce as p:
                raise AirtableFailure(429, PENALTY, f"Airtable's penalty for too many "
                                      f"requests has {p.seconds:.0f} s to run", method) from None
            self.sent += 1
            try:
                answer = super().request(method, url, fallback=fallback, options=options,
                                         params=params, json=json)
                problem = _not_promised(answer, str(url), self._config.base_id)
                if not problem:
                    return answer
                failure = AirtableFailure(200, GARBLED, problem, method)
            except requests.HTTPError as e:
                failure = self._failure(e.response, method)
            except (requests.ConnectionError, requests.Timeout) as e:
                failure = AirtableFailure(0, "NETWORK", f"no answer from "
                                          f"{self._config.endpoint_url} ({type(e).__name__})",
                                          method)
            except (requests.RequestException, ValueError) as e:  # cut off, or not JSON
                failure = AirtableFailure(200, GARBLED, _garbled(e), method)
            except AirtableFailure:
                raise  # from a nested fallback request
            # decided outside the except blocks: no exception context to leak
            if attempt >= self._config.retries:
                raise failure
            if failure.status == 429:
                self._pacer.penalise(self._config.penalty)
                if fast:
                    raise failure
            elif idempotent and (failure.status >= 500 or failure.status == 0
                                 or failure.error_type == GARBLED):
                time.sleep(self._config.backoff * 2 ** attempt)
            else:
                raise failure
            attempt += 1

    def _failure(self, response: requests.Response | None, method: str) -> AirtableFailure:
        status = response.status_code if response is not None else 0
        error_type, message = "", ""
        try:
            err = response.json().get("error") if response is not None else None
        except ValueError:
            err = None
        if isinstance(err, dict):
            error_type, message = str(err.get("type", "")), str(err.get("message", ""))
        elif isinstance(err, str):
            error_type = err
        key = self._config.api_key
        return AirtableFailure(status, scrub(error_type, key), scrub(message, key), method)


def _garbled(e: Exception) -> str:
    """What was wrong with an answer that could not be read (never its text, which a
    proxy's page could fill with anything)."""
    if isinstance(e, ValueError):
        return "the answer was not Airtable's JSON (not JSON at all: an HTML page?)"
    return f"the answer was not Airtable's JSON (cut off mid-way: {type(e).__name__})"


def _not_promised(answer: object, url: str, base_id: str) -> str:
    """"" if `answer` has the shape Airtable promises: a JSON object, and from a records
    endpoint a record (with its id) or a list of records; else what is wrong."""
    if not isinstance(answer, dict):
        return f"the answer was not Airtable's JSON (a {type(answer).__name__}, not an object)"
    if f"/v0/{base_id}/" not in url or "id" in answer:
        return ""
    records = answer.get("records")
    if not isinstance(records, list) or not all(
            isinstance(r, dict) and isinstance(r.get("id"), str) for r in records):
        return "the answer was not Airtable's JSON (no list of records with ids)"
    return ""


def store_error(f: AirtableFailure, config: AirtableConfig, kind: str | None,
                action: str) -> StoreError:
    """What a failure means for the user, naming the table of `kind` (or the base) and
    the setting to check."""
    where = f"Airtable table {config.table(kind)!r}" if kind else \
        f"Airtable base {config.base_id}"
    if f.status == 401:
        detail = "the API key was refused (401); check AIRTABLE_API_KEY"
    elif f.status == 403:
        detail = ("no access (403 " + (f.error_type or "forbidden") + "); check that "
                  "AIRTABLE_BASE_ID is right and the token may read and write this base")
    elif f.status == 404:
        detail = (f"not found (404 {f.error_type}: {f.message}); check AIRTABLE_BASE_ID "
                  "and the table names (AIRTABLE_CLIENTS_TABLE, AIRTABLE_ATTRIBUTES_TABLE)")
    elif f.status == 422:
        detail = f"refused (422 {f.error_type}): {f.message}"
        if "field" in f.error_type.lower() or "field" in f.message.lower():
            detail += "; run `tokenbudget airtable check`"
    elif f.status == 429:  # busy, not down: the same request succeeds after the penalty
        return StoreBusy(scrub(f"{where}: {action}: rate limited (429): Airtable asks for "
                               f"{config.penalty:g} s without requests; try again after "
                               "that", config.api_key), retry_after=config.penalty)
    elif f.status == 0:
        detail = f"network failure: {f.message}"
    elif f.error_type == GARBLED:
        detail = f.message
    else:
        detail = f"Airtable answered {f.status} {f.error_type}: {f.message}".rstrip(": ")
    return StoreError(scrub(f"{where}: {action}: {detail}", config.api_key))
