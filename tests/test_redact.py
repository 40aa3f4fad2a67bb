"""budget.redact.scrub: a secret is hidden as given, in every encoding, and in part
(cut off, masked with a head or tail left, split across lines)."""

from __future__ import annotations

from urllib.parse import quote, quote_plus

import pytest

from budget.redact import scrub
from tests.support.leaks import (AIRTABLE_KEY, LLM_KEY, PG_PASSWORD, SMTP_PASSWORD,
                                 leaky_texts, longest_run, shown)

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


# every form of every secret, whole or in part ---------------------------------------------
SECRETS = {"LLM key": LLM_KEY, "Airtable key": AIRTABLE_KEY, "SMTP password": SMTP_PASSWORD,
           "PostgreSQL password": PG_PASSWORD}
CASES = [(who, form) for who in SECRETS for form in leaky_texts(LLM_KEY)]


@pytest.mark.parametrize(("who", "form"), CASES, ids=[f"{w}: {f}" for w, f in CASES])
def test_no_run_of_a_secret_survives_in_any_form(who, form):
    secret = SECRETS[who]
    text = leaky_texts(secret)[form]
    out = scrub(text, *SECRETS.values())
    print(f"\n{who}, {form}: {shown(out, secret)} of {len(secret)} characters shown "
          f"(longest run {longest_run(out, secret)})")
    assert longest_run(out, secret) < 8, out
    assert shown(out, secret) == 0, out


def test_ordinary_text_next_to_a_secret_is_kept():
    out = scrub(f"HTTP 401: invalid key {LLM_KEY} for model tiny; see https://x.test/docs",
                LLM_KEY)
    assert out == "HTTP 401: invalid key *** for model tiny; see https://x.test/docs"
    assert scrub("loading... done **** ok", LLM_KEY) == "loading... done **** ok"
    assert scrub("no secret here, lines\nand more", LLM_KEY, SMTP_PASSWORD) == (
        "no secret here, lines\nand more")


def test_a_mask_hides_only_a_secret_s_own_ends():
    assert scrub(f"key {LLM_KEY[:2]}...{LLM_KEY[-2:]}", LLM_KEY) == "key ***"
    head = LLM_KEY[:2]
    assert scrub(f"wait{head}... then ...{LLM_KEY[-3:]}x", LLM_KEY) == (
        f"wait{head}... then ...{LLM_KEY[-3:]}x")  # inside other words: not a secret's ends
