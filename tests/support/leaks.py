"""How much of a secret a text still shows, and texts that show secrets the ways
servers and libraries do: what the scrubbing tests feed in and measure.

The measure is independent of `budget.redact`: the characters of the secret, of its
URL-encoding and of its base64 (at each alignment) that the text shows in runs of at
least `RUN` characters, ignoring case, line breaks and spaces."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote

RUN = 4  # a shown run this long counts; the contract is that none of 8 survives
LLM_KEY = "sk-proj-Zq4mT8vLx2Rb7NcW1yHs5KdP0aFgJe3UoVi6BtXn"  # 48 characters
AIRTABLE_KEY = "patR4nd0mK3yAbCd.0f3a9c2b7d1e4f6a8b0c2d4e6f8a1b3c5d7e9f0a2b4c6d8e"
SMTP_PASSWORD = 'p@ss/w0rd+"quoted" & spaced'  # every character that needs escaping
PG_PASSWORD = "pg#Secr3t/Pa55:w0rd"


def _flat(text: str) -> str:
    return re.sub(r"\s+|\\[nrt]", "", text).lower()


def _encodings(secret: str) -> list[str]:
    raw = secret.encode()
    b64 = [base64.b64encode(b"\0" * pad + raw).decode()[4:-4] for pad in range(3)]
    return [secret, quote(secret, safe=""), *b64]


def shown(text: str, secret: str, run: int = RUN) -> int:
    """How many characters of `secret` (or of one of its encodings) `text` shows in
    runs of at least `run`: the most over the encodings."""
    flat = _flat(text)
    best = 0
    for form in (_flat(f) for f in _encodings(secret)):
        covered = set()
        for i in range(len(form)):
            length = 0
            while i + length < len(form) and form[i:i + length + 1] in flat:
                length += 1
            if length >= run:
                covered.update(range(i, i + length))
        best = max(best, len(covered))
    return best


def longest_run(text: str, secret: str) -> int:
    """The longest run of `secret` or of one of its encodings that `text` shows."""
    flat = _flat(text)
    best = 0
    for form in (_flat(f) for f in _encodings(secret)):
        for i in range(len(form)):
            length = best
            while i + length < len(form) and form[i:i + length + 1] in flat:
                length += 1
            best = max(best, length)
    return best


def leaky_texts(secret: str) -> dict[str, str]:
    """The forms in which error texts have shown secrets, by name."""
    n = len(secret)
    lower_hex = re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), quote(secret, safe=""))
    return {
        "as given": f"invalid key {secret}",
        "URL-encoded, lower-case hex": f"GET /v0/app?api_key={lower_hex}&x=1",
        "JSON-escaped": json.dumps({"error": {"key": secret}}),
        "JSON, slashes escaped": json.dumps({"key": secret}).replace("/", "\\/"),
        "Python repr": repr({"api_key": secret}),
        "base64": f"token={base64.b64encode(secret.encode()).decode()}",
        "base64 inside Basic auth": "Authorization: Basic "
                                    + base64.b64encode(f"user:{secret}".encode()).decode(),
        "split across lines": f"key {secret[:n // 2]}\n    {secret[n // 2:]} refused",
        "wrapped at 16 columns": "\n".join(secret[i:i + 16] for i in range(0, n, 16)),
        "escaped line break": json.dumps(f"{secret[:n // 3]}\n{secret[n // 3:]}"),
        "cut off after 5": f'{{"error": "no such key {secret[:5]}',
        "cut off after 7": f'{{"error": "no such key {secret[:7]}',
        "cut off after 20": f'{{"error": "no such key {secret[:20]}',
        "cut off before the last": f'{{"error": "no such key {secret[:-1]}',
        "masked, head and tail": f"Incorrect API key provided: {secret[:7]}"
                                 f"{'*' * (n - 11)}{secret[-4:]}. Find your key at ...",
        "masked, tail": f"the key {secret[:3]}...{secret[-4:]} was revoked",
        "masked, ellipsis": f"key {secret[:6]}…{secret[-4:]} expired",
    }
