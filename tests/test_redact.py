"""budget.redact.scrub: a secret is hidden as given and in each URL-encoded form."""

from __future__ import annotations

from urllib.parse import quote, quote_plus

from budget.redact import scrub

KEY = "pat/abc+def ghi=="


def test_plain_secret_is_hidden_everywhere():
    assert scrub("key secret1 and again secret1.", "secret1") == "key *** and again ***."


def test_url_encoded_forms_are_hidden():
    assert quote(KEY) != KEY and quote_plus(KEY) != quote(KEY)
    text = (f"GET /v0?api_key={quote(KEY)} body={quote_plus(KEY)} "
            f"path={quote(KEY, safe='')} raw={KEY}")
    out = scrub(text, KEY)
    assert out == "GET /v0?api_key=*** body=*** path=*** raw=***"


def test_every_secret_given_is_hidden_and_empty_ones_are_ignored():
    assert scrub("user bob password hunter2", "hunter2", "", "bob") == "user *** password ***"
    assert scrub("nothing to hide") == "nothing to hide"
    assert scrub("abc", "") == "abc"


def test_a_secret_containing_another_is_hidden_whole():
    assert scrub("token abc-123-xyz", "123", "abc-123-xyz") == "token ***"
