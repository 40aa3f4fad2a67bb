"""Secrets that servers quote back, in every form and in part, never reach a person:
error texts from the loopback model server, the SMTP server and the Airtable base, and
PostgreSQL connection strings, through the CLI, the API and the dashboard. No run of 8
characters of any secret (or of its URL-encoding or base64) survives, and no run of 4."""

from __future__ import annotations

import json
from datetime import date

import pytest

from budget import cli
from budget.api import create_app
from budget.llm import RewriteFailed
from budget.model import Attribute, Change, Client, Tier
from budget.service import BudgetService
from budget.settings import Settings
from tests.support.airtable_server import BASE_ID, FakeAirtable, standard_base
from tests.support.api_server import AS_VIEWER, TOKENS, serve_app
from tests.support.apptest import run_app, text_of
from tests.support.factories import ADMIN, make_service, settings_from, words
from tests.support.leaks import (AIRTABLE_KEY, LLM_KEY, PG_PASSWORD, SMTP_PASSWORD,
                                 leaky_texts, longest_run, shown)
from tests.support.model_server import FakeModel
from tests.support.smtp_server import SmtpServer

FORMS = list(leaky_texts(LLM_KEY))
ONE_LINE = [f for f in FORMS if "\n" not in leaky_texts(LLM_KEY)[f]]  # what SMTP can say


def assert_hidden(text: str, secret: str) -> None:
    assert longest_run(text, secret) < 8, text
    assert shown(text, secret) == 0, text


# the model server ------------------------------------------------------------------------
def model_settings(svc: BudgetService, url: str) -> Settings:
    return settings_from({"TOKENBUDGET_LLM_URL": url, "TOKENBUDGET_LLM_MODEL": "tiny",
                          "TOKENBUDGET_LLM_API_KEY": LLM_KEY}, store=svc.settings.store)


def cut_by_the_read_limit(keep: int) -> bytes:
    """An answer whose first 300 bytes (what the app reads of an error) end `keep`
    characters into the key."""
    head = '{"error": {"message": "Incorrect API key provided: '
    return (head + " " * (300 - len(head) - keep) + LLM_KEY + '"}}').encode()


MODEL_ANSWERS = {**{f: json.dumps({"error": {"message": t}}).encode()
                    for f, t in leaky_texts(LLM_KEY).items()},
                 **{f"cut at byte 300 after {k}": cut_by_the_read_limit(k) for k in (5, 11, 30)}}


@pytest.mark.parametrize("form", list(MODEL_ANSWERS))
def test_model_server_errors_never_show_the_key(small, model_server, form):
    small.settings = model_settings(small, model_server)
    FakeModel.status, FakeModel.error_body = 401, MODEL_ANSWERS[form]
    with pytest.raises(RewriteFailed) as e:
        small.rewrite_suggestion("A", "a1", "Instructions")
    assert "HTTP 401" in str(e.value)
    assert_hidden(str(e.value), LLM_KEY)


def test_model_server_errors_on_the_savings_page(app, small, model_server, monkeypatch):
    for name, value in {"TOKENBUDGET_LLM_URL": model_server, "TOKENBUDGET_LLM_MODEL": "tiny",
                        "TOKENBUDGET_LLM_API_KEY": LLM_KEY}.items():
        monkeypatch.setenv(name, value)
    # a text with something to save, so the page offers its tools
    small.apply(ADMIN, Change("A", fields={"a1": {"Instructions": words(40) + "  "}}))
    for form in ("masked, head and tail", "cut at byte 300 after 11", "base64 inside Basic auth"):
        FakeModel.status, FakeModel.error_body = 401, MODEL_ANSWERS[form]
        at = app(small.store.path, "app_pages/savings.py")
        at.button(key="sv_llm_go").click().run()
        assert not at.exception
        errors = [e.value for e in at.error]
        assert errors and all("No rewrite" in e for e in errors), text_of(at)
        assert_hidden(text_of(at), LLM_KEY)


# the Airtable base ---------------------------------------------------------------------------
@pytest.fixture
def airtable(tmp_path, monkeypatch):
    """The loopback base with its own key, read through the settings a person sets."""
    server = FakeAirtable(api_key=AIRTABLE_KEY)
    base = standard_base(server)
    base.put("Clients", {"Client Name": "Alpha", "Service Level": 1})
    server.start()
    for name, value in {"TOKENBUDGET_STORE": "airtable", "AIRTABLE_API_KEY": AIRTABLE_KEY,
                        "AIRTABLE_BASE_ID": BASE_ID, "AIRTABLE_ENDPOINT_URL": server.url,
                        "AIRTABLE_MIN_INTERVAL": "0", "AIRTABLE_RETRIES": "0",
                        "AIRTABLE_SIDECAR": str(tmp_path / "sidecar.db")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml here
    yield server
    server.stop()


def quoting_the_key(server: FakeAirtable, form: str) -> None:
    server.fail(422, error_type="INVALID_REQUEST_UNKNOWN", times=1000,
                message=leaky_texts(AIRTABLE_KEY)[form])


@pytest.mark.parametrize("form", FORMS)
def test_airtable_errors_in_the_cli_and_the_api(airtable, capsys, form):
    service = BudgetService.from_settings(Settings.load())
    quoting_the_key(airtable, form)
    capsys.readouterr()
    assert cli.main(["usage"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tokenbudget: ")
    assert_hidden(err, AIRTABLE_KEY)
    with serve_app(create_app(service, TOKENS)) as api:
        r = api.get("/api/token-usage", headers=AS_VIEWER)
    assert r.status_code in (422, 503), r.text
    assert_hidden(r.text, AIRTABLE_KEY)


def test_airtable_errors_on_the_dashboard(airtable):
    import streamlit as st
    for form in ("masked, head and tail", "cut off after 7", "split across lines"):
        quoting_the_key(airtable, form)
        st.cache_data.clear()
        st.cache_resource.clear()
        at = run_app()
        assert not at.exception, at.exception
        assert at.error, text_of(at)
        assert_hidden(text_of(at), AIRTABLE_KEY)
        airtable.faults.clear()


# the SMTP server -------------------------------------------------------------------------------
@pytest.mark.parametrize("form", ONE_LINE)
def test_smtp_errors_in_the_cli(tmp_path, monkeypatch, capsys, form):
    svc = make_service(tmp_path / "mail.db")
    svc.load_data_set(ADMIN, [Tier(1, "Basic", 100)],
                      [Client("A", "Alpha", 1, budget_reset_date=date(2026, 12, 1),
                              email="ops@alpha.example")],
                      [Attribute("a1", "A", "Size", True, words(90), "", "")])
    server = SmtpServer()
    server.controller.start()
    try:
        for name, value in server.settings(SMTP_PASSWORD=SMTP_PASSWORD).items():
            monkeypatch.setenv(name, value)
        server.inbox.reject = 1
        server.inbox.reject_text = f"554 5.7.1 {leaky_texts(SMTP_PASSWORD)[form]}"
        store = ["--store", f"sqlite:///{svc.store.path}"]
        capsys.readouterr()
        assert cli.main([*store, "run-due"]) == 1  # client A is at 90 %: its alert refused
        assert cli.main([*store, "notifications"]) == 0
        assert cli.main([*store, "notifications", "--json"]) == 0
    finally:
        server.controller.stop()
    out = capsys.readouterr().out
    assert "554" in out and "failed" in out
    assert_hidden(out, SMTP_PASSWORD)


# PostgreSQL connection strings ------------------------------------------------------------------
PG_URLS = {
    "as typed, nothing encoded": f"postgresql://bob:{PG_PASSWORD}@127.0.0.1:1/db",
    "percent-encoded": "postgresql://bob:pg%23Secr3t%2FPa55%3Aw0rd@127.0.0.1:1/db",
    "a password parameter": "postgresql://bob@127.0.0.1:1/db?password=pg%23Secr3t%2FPa55%3Aw0rd",
}


@pytest.mark.parametrize("form", list(PG_URLS))
def test_postgresql_connection_strings_in_the_cli(capsys, form):
    capsys.readouterr()
    assert cli.main(["--store", PG_URLS[form], "usage"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tokenbudget: ") and "cannot connect" in err
    assert_hidden(err, PG_PASSWORD)


def test_postgresql_connection_strings_on_the_dashboard(monkeypatch):
    import streamlit as st
    for url in PG_URLS.values():
        monkeypatch.setenv("TOKENBUDGET_STORE", url)
        st.cache_resource.clear()
        at = run_app()
        assert not at.exception, at.exception  # one message, no traceback
        (error,) = at.error
        assert "The app cannot start" in error.value and "cannot connect" in error.value
        assert_hidden(text_of(at), PG_PASSWORD)


def test_the_store_password_is_a_secret_of_the_settings():
    for url in PG_URLS.values():
        assert PG_PASSWORD in settings_from(store=url).secret_values()
    assert settings_from(store="sqlite:///data/x.db").secret_values() == []

