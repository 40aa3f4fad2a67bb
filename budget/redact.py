"""Hiding secrets in text that leaves the process (error messages, logs, pages).

A secret rarely comes back only as it was given. A provider's error message, an
exception quoting a request or a shortened server answer show it
- encoded: URL-encoded (hex digits in either case), JSON- or Python-escaped, in base64
  (alone, or inside a longer base64 text such as a Basic auth header), in hex;
- broken up: wrapped across lines, or with escaped line breaks (`\\n`) in it;
- in part: cut off where a message was shortened, or masked with a head or a tail left
  visible (`sk-abc1****wxyz`, `sk-...wxyz`).
So every run of `MIN_RUN` characters of any form of a secret is hidden, wherever it
is; a quoted value that is a secret's first `MIN_CUT` characters or more (the rest cut
off) is hidden; and so is a mask with the head or tail of a secret beside it."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote

HIDDEN = "***"
MIN_RUN = 8  # characters of a secret that are a leak anywhere in a text
MIN_CUT = 4  # ... as a whole value: the head of a secret that a shortened message cut off
MIN_SHOWN = 2  # ... next to a mask (`sk-...wxyz`): the mask says a secret is there
# what may sit inside a secret's text without being part of it: line breaks and
# spaces (wrapping), escaped line breaks, and backslashes (escaping at any depth:
# JSON inside a Python repr doubles them)
_BREAKS = re.compile(r"\s+|\\[nrt]|\\+")
# a value as messages quote one: between spaces, quotes, brackets, `=`, `,` or `;`
_VALUE = re.compile(r"[^\s\"'`<>()\[\]{}=,;]+")
# what may stand on either side of a masked value's visible ends: more than what splits
# a value above (a secret may hold `.`, `:` or `/`, but a head or tail shown beside a
# mask is taken whole only up to one)
_EDGES = frozenset(" \t\r\n\"'`<>()[]{}=,;:.!?/\\")
# what masks or shortens a value: asterisks, dots, bullets or an ellipsis, also
# escaped as JSON (\u2026) or as the bytes of a Python repr (\xe2\x80\xa6)
_MASK = re.compile(r"\*{3,}|•{2,}|\.{3,}|…|(?:\\u2022){2,}|\\u2026"
                   r"|(?:\\xe2\\x80\\xa2){2,}|\\xe2\\x80\\xa6")


def _base64_forms(raw: bytes) -> Iterable[str]:
    """The characters of `raw`'s base64 that depend on `raw` alone, at each of the
    three offsets it can have inside a longer base64 text."""
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * pad + raw).decode().rstrip("=")
            end = len(text) - (1 if (pad + len(raw)) % 3 else 0)  # mixed with what follows
            yield text[(0, 2, 3)[pad]:end]  # the first chars carry the padding's bits


def forms(secret: str) -> set[str]:
    """Every way `secret` is written out in text. An encoding shorter than MIN_RUN
    (base64 or hex of a short secret) is left out: hiding it would hide ordinary text."""
    escaped = json.dumps(secret)[1:-1]
    spelled = {secret, quote(secret), quote(secret, safe=""), quote_plus(secret), escaped,
               escaped.replace("/", "\\/"), json.dumps(secret, ensure_ascii=False)[1:-1],
               repr(secret)[1:-1]}
    encoded = {secret.encode().hex(), *_base64_forms(secret.encode())}
    return {f for f in spelled if f} | {f for f in encoded if len(f) >= MIN_RUN}


def _squeeze(text: str) -> tuple[str, list[int]]:
    """`text` lower-cased without the breaks that may split a secret, and for each
    character left its position in `text`."""
    kept: list[str] = []
    where: list[int] = []
    start = 0
    for cut in [*_BREAKS.finditer(text), None]:
        stop = cut.start() if cut else len(text)
        for i in range(start, stop):
            low = text[i].lower()
            kept.append(low if len(low) == 1 else text[i])
            where.append(i)
        start = cut.end() if cut else start
    return "".join(kept), where


def _leaks(text: str, all_forms: set[str], secrets: Iterable[str]) -> list[tuple[int, int]]:
    """Spans of `text` holding a run of MIN_RUN characters of a form, or a value that
    is a secret's first MIN_CUT or more characters (the rest cut off)."""
    squeezed, where = _squeeze(text)
    runs: set[str] = set()
    for form in all_forms:
        flat = _squeeze(form)[0]
        runs.update(flat[i:i + MIN_RUN] for i in range(len(flat) - MIN_RUN + 1))
    spans = [(where[i], where[i + MIN_RUN - 1] + 1)
             for i in range(len(squeezed) - MIN_RUN + 1) if squeezed[i:i + MIN_RUN] in runs]
    heads = {form[:k].lower() for s in secrets if len(s) >= MIN_RUN  # shorter: whole or not
             for form in (s, quote(s, safe="")) for k in range(MIN_CUT, MIN_RUN)}
    spans += [value.span() for value in _VALUE.finditer(text)
              if MIN_CUT <= len(value[0]) < MIN_RUN and value[0].lower() in heads]
    return spans


def _hide(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """`text` with each span (overlapping ones merged) replaced by HIDDEN."""
    out: list[tuple[int, int]] = []
    at = 0
    for start, stop in sorted(spans):
        if out and start <= at:  # overlaps or touches the span before: extend it
            out[-1] = (out[-1][0], max(out[-1][1], stop))
            at = max(at, stop)
            continue
        out.append((start, stop))
        at = stop
    pieces, last = [], 0
    for start, stop in out:
        pieces += [text[last:start], HIDDEN]
        last = stop
    return "".join([*pieces, text[last:]])


def _masked(text: str, secrets: Iterable[str]) -> list[tuple[int, int]]:
    """Spans of masks whose visible ends are a secret's own: the characters before the
    mask that begin a secret (and begin a value: "wait..." is no secret's head), the
    mask, and the characters after it that end one (and end a value)."""
    low = text.lower()
    starts = {s.lower()[:k] for s in secrets for k in range(MIN_SHOWN, len(s) + 1)}
    ends = {s.lower()[-k:] for s in secrets for k in range(MIN_SHOWN, len(s) + 1)}
    longest = max(map(len, starts), default=0)
    spans = []
    for mask in _MASK.finditer(text):
        start, stop = mask.span()
        before = next((k for k in range(min(longest, start), MIN_SHOWN - 1, -1)
                       if low[start - k:start] in starts
                       and (start - k == 0 or text[start - k - 1] in _EDGES)), 0)
        after = next((k for k in range(min(longest, len(text) - stop), MIN_SHOWN - 1, -1)
                      if low[stop:stop + k] in ends
                      and (stop + k == len(text) or text[stop + k] in _EDGES)), 0)
        if before or after:
            spans.append((start - before, stop + after))
    return spans


def scrub(text: str, *secrets: str) -> str:
    """`text` with every form of each non-empty secret, whole or in part, replaced by
    `***` (see the module's docstring for the forms)."""
    given = [secret for secret in secrets if secret]
    if not given:
        return text
    all_forms = {f for secret in given for f in forms(secret)}
    for form in sorted(all_forms, key=len, reverse=True):  # one may contain another
        text = text.replace(form, HIDDEN)
    text = _hide(text, _leaks(text, all_forms, given))
    return _hide(text, _masked(text, given))


def url_passwords(url: str) -> list[str]:
    """The password a URL holds (`scheme://user:PASSWORD@host`, or `password=` among its
    parameters), as written and decoded. A password with `#`, `/`, `?` or `@` that was
    not percent-encoded makes URL parsers (libpq's too) read it as another part, so
    the user part is taken up to the last `@`, as a person meant it."""
    rest = url.partition("://")[2]
    user_part = rest.rpartition("@")[0]
    found = [user_part.partition(":")[2]] if ":" in user_part else []
    found += re.findall(r"[?&]password=([^&#\s]*)", url)
    return [p for raw in found if raw for p in dict.fromkeys((raw, unquote(raw)))]
