"""Hiding secrets in text that leaves the process (error messages, logs). A secret can
show up as it was given or URL-encoded, when an exception quotes a request's URL or
form body, so every form is hidden."""

from __future__ import annotations

from urllib.parse import quote, quote_plus


def scrub(text: str, *secrets: str) -> str:
    """`text` with each non-empty secret, plain or URL-encoded, replaced by `***`."""
    forms = {form for secret in secrets if secret
             for form in (secret, quote(secret), quote(secret, safe=""), quote_plus(secret))}
    # longest first: one secret (or one form of it) may contain another
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "***")
    return text
