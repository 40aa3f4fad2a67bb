"""Nothing slow happens while a write lock is held: every write loads the tokenizer and
counts before it takes the store's transaction, and inside only re-checks and writes.

A probe wraps the store's `transaction` and the tokenizer's two slow steps (loading an
encoding, encoding a text). Each write starts with a cold tokenizer, as in a fresh CLI
process; the hold times are printed, never asserted (no timed assertions)."""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager

import pytest
import tiktoken.registry

from budget import tokens
from budget.model import Change
from tests.support.factories import ADMIN, make_service


class LockProbe:
    """Counts tokenizer loads and encodes that happen while a transaction is held, and
    how long the outermost transaction was held."""

    def __init__(self, store, monkeypatch) -> None:
        self.depth, self.held_ms, self.inside = 0, [], []
        inner_transaction = store.transaction

        @contextmanager
        def transaction(*args, **kwargs):
            start = time.perf_counter()
            self.depth += 1
            try:
                with inner_transaction(*args, **kwargs):
                    yield
            finally:
                self.depth -= 1
                if not self.depth:
                    self.held_ms.append((time.perf_counter() - start) * 1000)
        monkeypatch.setattr(store, "transaction", transaction)

        real_load, real_encode = tokens.get_encoding, tokens.TiktokenCounter._encode_len

        def get_encoding(name):
            if self.depth:
                self.inside.append(f"load {name}")
            return real_load(name)

        def encode_len(counter, text):
            if self.depth:
                self.inside.append("encode")
            return real_encode(counter, text)
        monkeypatch.setattr(tokens, "get_encoding", get_encoding)
        monkeypatch.setattr(tokens.TiktokenCounter, "_encode_len", encode_len)

    def cold(self, monkeypatch) -> None:
        """As a fresh process: no encoding loaded, no text counted in memory."""
        monkeypatch.setattr(tokens, "_encodings", {})
        monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})  # tiktoken's own cache
        monkeypatch.setattr(tokens, "_counters", {})
        self.held_ms.clear()
        self.inside.clear()


def _writes(svc):
    attrs = svc.store.attributes()
    client = next(c for c in svc.store.clients()
                  if any(not a.active for a in attrs if a.client_id == c.id))
    off = next(a for a in attrs if a.client_id == client.id and not a.active)
    on = next(a for a in attrs if a.client_id == client.id and a.active)
    other = next(a for a in attrs if a.client_id != client.id and not a.active)
    return {
        "activation": lambda: svc.apply(ADMIN, Change(client.id, active={off.id: True})),
        "deactivation": lambda: svc.apply(ADMIN, Change(client.id, active={on.id: False})),
        "text edit": lambda: svc.apply(ADMIN, Change(
            client.id, {on.id: {"Signals": on.signals + " Prefer a fresh signal."}})),
        "bulk activation": lambda: svc.apply_together(ADMIN, [
            Change(client.id, active={off.id: True}),
            Change(other.client_id, active={other.id: True})]),
        "service level": lambda: svc.set_service_level(ADMIN, client.id, 4),
        "reset": lambda: svc.reset(ADMIN, client.id),
        "reset all": lambda: svc.reset_all(ADMIN),
        "tier limit": lambda: svc.set_tier_limit(ADMIN, 4, 30_000),
    }


@pytest.mark.parametrize("write", ["activation", "deactivation", "text edit",
                                   "bulk activation", "service level", "reset", "reset all",
                                   "tier limit"])
def test_no_tokenizer_work_while_the_write_lock_is_held(demo_copy, monkeypatch, write):
    svc = make_service(demo_copy)
    probe = LockProbe(svc.store, monkeypatch)
    probe.cold(monkeypatch)
    _writes(svc)[write]()
    print(f"\n{write}: write lock held {max(probe.held_ms):.1f} ms with a cold tokenizer")
    assert probe.held_ms, "the write took no transaction"
    assert probe.inside == [], f"{write}: {sorted(set(probe.inside))} inside the write lock"


def test_texts_not_yet_counted_are_counted_before_the_lock(demo_copy, monkeypatch):
    """A text changed behind the app's back (in Airtable, say) has no count yet: the
    write counts it first, not while others wait for the lock."""
    with sqlite3.connect(demo_copy) as conn:
        target = conn.execute("SELECT id, client_id FROM attributes WHERE active = 1 "
                              "LIMIT 1").fetchone()
        conn.execute("DELETE FROM token_counts WHERE attribute_id = ?", (target[0],))
    svc = make_service(demo_copy)
    assert svc.store.costs(svc.encoding, target[1])[1], "the text has no count now"
    probe = LockProbe(svc.store, monkeypatch)
    probe.cold(monkeypatch)
    svc.reset(ADMIN, target[1])
    assert probe.inside == []
