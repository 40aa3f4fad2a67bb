"""The typed settings layer: environment, then secrets.toml, then defaults; every setting
parsed once, every bad value refused as `settings: NAME: problem`."""

from __future__ import annotations

import os

import pytest

from budget.model import BadInput
from budget.settings import Settings
from budget.tokens import DEFAULT_ENCODING

SECRET = "pat5ecretVALUE.0123456789abcdef"


@pytest.fixture
def load(tmp_path, monkeypatch):
    """Settings.load with a clean environment and a secrets file of the test's own."""
    for name in [k for k in os.environ if k.startswith(("TOKENBUDGET_", "AIRTABLE_", "SMTP_"))]:
        monkeypatch.delenv(name)
    secrets = tmp_path / "secrets.toml"
    given: set[str] = set()

    def make(toml: str = "", **env: str) -> Settings:
        """Each call sees only its own environment."""
        secrets.write_text(toml)
        for k in given - env.keys():
            monkeypatch.delenv(k)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        given.clear()
        given.update(env)
        return Settings.load(secrets)
    return make


def refused(load, name: str, toml: str = "", **env: str) -> str:
    with pytest.raises(BadInput) as e:
        load(toml, **env)
    assert e.value.record == "settings" and e.value.field == name, str(e.value)
    return e.value.problem


def test_defaults_when_nothing_is_set(load):
    s = load()
    assert (s.store, s.encoding, s.warning, s.max_text_chars) == (
        "sqlite:///data/tokenbudget.db", DEFAULT_ENCODING, 0.8, 100_000)
    assert s.roles == {} and s.api_tokens == {}
    assert not s.smtp.enabled and not s.llm.enabled
    assert s.alerts.thresholds == (80, 90, 100) and s.alerts.recipients == "both"
    assert (s.deactivation.enabled, s.deactivation.order) == (False, "newest")
    assert (s.costs.leads_per_month, s.costs.price_per_mtok, s.costs.currency) == (1000, 2.5, "USD")
    assert s.airtable.clients_table == "Clients" and s.airtable.min_interval == 0.22
    assert Settings() == s  # building one in code reads no source at all


def test_environment_wins_over_secrets_which_win_over_defaults(load):
    toml = 'TOKENBUDGET_WARNING = 0.7\nTOKENBUDGET_MAX_TEXT_CHARS = 5000\n'
    s = load(toml, TOKENBUDGET_WARNING="0.9")
    assert (s.warning, s.max_text_chars) == (0.9, 5000)


def test_an_override_wins_over_everything_and_none_means_not_given(load, tmp_path):
    s = load("TOKENBUDGET_STORE = 'sqlite:///a.db'", TOKENBUDGET_STORE="sqlite:///b.db")
    assert s.store == "sqlite:///b.db"
    assert Settings.load(tmp_path / "secrets.toml", store="sqlite:///c.db").store == "sqlite:///c.db"
    assert Settings.load(tmp_path / "secrets.toml", store=None).store == "sqlite:///b.db"


def test_a_section_may_be_a_toml_table_and_merges_with_the_environment(load):
    s = load(f'[airtable]\napi_key = "{SECRET}"\nbase_id = "appAAAAAAAAAAAAAA"\n',
             AIRTABLE_CLIENTS_TABLE="Kunden", AIRTABLE_MIN_INTERVAL="0")
    assert s.airtable.api_key.get_secret_value() == SECRET
    assert (s.airtable.base_id, s.airtable.clients_table, s.airtable.min_interval) == (
        "appAAAAAAAAAAAAAA", "Kunden", 0.0)


def test_every_airtable_field_name_is_a_setting(load):
    s = load(AIRTABLE_CLIENT_ID_FIELD="Client ID", AIRTABLE_SIGNALS_FIELD="Signale",
             AIRTABLE_ALLOW_REPLACE="1", AIRTABLE_READ_TIMEOUT="5", AIRTABLE_RETRIES="2")
    assert (s.airtable.client_id_field, s.airtable.signals_field) == ("Client ID", "Signale")
    assert s.airtable.allow_replace and s.airtable.read_timeout == 5 and s.airtable.retries == 2
    assert load(AIRTABLE_CLIENT_NAME_FIELD="").airtable.client_name_field == ""  # role unused


def test_login_role_mapping_from_the_environment_and_from_a_table(load):
    assert load(TOKENBUDGET_ROLES=" Ann@X.com:admin , bob@x.com:analyst ").roles == {
        "ann@x.com": "admin", "bob@x.com": "analyst"}
    assert load('[TOKENBUDGET_ROLES]\n"cy@x.com" = "viewer"\n').roles == {"cy@x.com": "viewer"}
    assert "unknown role 'boss'" in refused(load, "TOKENBUDGET_ROLES",
                                            TOKENBUDGET_ROLES="ann@x.com:boss")
    assert "EMAIL:ROLE" in refused(load, "TOKENBUDGET_ROLES", TOKENBUDGET_ROLES="ann@x.com")


def test_api_tokens_never_echo_the_token(load):
    assert load(TOKENBUDGET_API_TOKENS=f"{SECRET}:admin,a:b:viewer").api_tokens == {
        SECRET: "admin", "a:b": "viewer"}  # the role follows the last ':'
    problem = refused(load, "TOKENBUDGET_API_TOKENS", TOKENBUDGET_API_TOKENS=f"admin:{SECRET}")
    assert "entry 1" in problem and SECRET not in problem
    assert SECRET not in repr(load(TOKENBUDGET_API_TOKENS=f"{SECRET}:admin"))


def test_secrets_are_hidden_in_repr_and_listed_for_scrubbing(load):
    s = load(AIRTABLE_API_KEY=SECRET, SMTP_HOST="mail", SMTP_USER="u@x.example",
             SMTP_PASSWORD="pw-123456", TOKENBUDGET_LLM_URL="http://h/v1",
             TOKENBUDGET_LLM_MODEL="m", TOKENBUDGET_LLM_API_KEY="sk-abcdef")
    text = repr(s) + str(s)
    assert not any(v in text for v in (SECRET, "pw-123456", "sk-abcdef"))
    assert set(s.secret_values()) == {SECRET, "pw-123456", "sk-abcdef"}


def test_smtp_section(load):
    s = load(SMTP_HOST="mail", SMTP_USER="u@x.example", SMTP_SECURITY="TLS")
    assert (s.smtp.security, s.smtp.port_in_use, s.smtp.from_address) == ("tls", 465, "u@x.example")
    custom = load(SMTP_HOST="mail", SMTP_SENDER="s@x.example", SMTP_PORT="2525")
    assert custom.smtp.port_in_use == 2525
    assert "email address" in refused(load, "SMTP_SENDER", SMTP_HOST="mail", SMTP_USER="nobody")
    assert "got 'x'" in refused(load, "SMTP_PORT", SMTP_PORT="x")
    assert refused(load, "SMTP_PORT", SMTP_PORT="70000")
    assert refused(load, "SMTP_SECURITY", SMTP_SECURITY="ssl3")


def test_llm_section(load):
    s = load(TOKENBUDGET_LLM_URL="http://h/v1/", TOKENBUDGET_LLM_MODEL="m")
    assert (s.llm.url, s.llm.model, s.llm.enabled) == ("http://h/v1", "m", True)
    assert refused(load, "TOKENBUDGET_LLM_MODEL", TOKENBUDGET_LLM_URL="http://h/v1")
    assert "http://" in refused(load, "TOKENBUDGET_LLM_URL", TOKENBUDGET_LLM_URL="ftp://h",
                                TOKENBUDGET_LLM_MODEL="m")
    assert refused(load, "TOKENBUDGET_LLM_TIMEOUT", TOKENBUDGET_LLM_TIMEOUT="soon")


def test_alert_and_deactivation_sections(load):
    s = load(TOKENBUDGET_ALERT_THRESHOLDS="100, 80%,80", TOKENBUDGET_ALERT_RECIPIENTS="Manager",
             TOKENBUDGET_MANAGER_EMAILS="Dana Lee=dana@x.example",
             TOKENBUDGET_AUTO_DEACTIVATE="on", TOKENBUDGET_AUTO_DEACTIVATE_ORDER="largest")
    assert s.alerts.thresholds == (80, 100) and s.alerts.recipients == "manager"
    assert s.alerts.managers == {"dana lee": "dana@x.example"}
    assert (s.deactivation.enabled, s.deactivation.order) == (True, "largest")
    assert load("TOKENBUDGET_ALERT_THRESHOLDS = [90, 95]").alerts.thresholds == (90, 95)
    assert "ninety" in refused(load, "TOKENBUDGET_ALERT_THRESHOLDS",
                               TOKENBUDGET_ALERT_THRESHOLDS="80,ninety")
    assert refused(load, "TOKENBUDGET_ALERT_THRESHOLDS", TOKENBUDGET_ALERT_THRESHOLDS="0")
    assert refused(load, "TOKENBUDGET_MANAGER_EMAILS", TOKENBUDGET_MANAGER_EMAILS="Dana")
    assert refused(load, "TOKENBUDGET_AUTO_DEACTIVATE", TOKENBUDGET_AUTO_DEACTIVATE="maybe")
    assert refused(load, "TOKENBUDGET_AUTO_DEACTIVATE_ORDER",
                   TOKENBUDGET_AUTO_DEACTIVATE_ORDER="oldest")
    assert refused(load, "TOKENBUDGET_ALERT_RECIPIENTS", TOKENBUDGET_ALERT_RECIPIENTS="all")


def test_alert_claim_lease(load):
    assert load().alerts.claim_lease == 900
    assert load(TOKENBUDGET_ALERT_CLAIM_LEASE="120").alerts.claim_lease == 120
    assert load("[alerts]\nTOKENBUDGET_ALERT_CLAIM_LEASE = 60.5\n").alerts.claim_lease == 60.5
    for bad in ("soon", "0", "-5"):
        assert refused(load, "TOKENBUDGET_ALERT_CLAIM_LEASE", TOKENBUDGET_ALERT_CLAIM_LEASE=bad)


def test_cost_section(load):
    s = load("[TOKENBUDGET_TIER_REVENUE]\n1 = 99\n2 = 299.5\n", TOKENBUDGET_LEADS_PER_MONTH="5000",
             TOKENBUDGET_PRICE_PER_MTOK="0.15", TOKENBUDGET_CURRENCY="EUR")
    costs = s.costs
    assert (costs.leads_per_month, costs.price_per_mtok, costs.currency) == (5000, 0.15, "EUR")
    assert s.costs.revenue_by_level == {1: 99.0, 2: 299.5}
    assert load(TOKENBUDGET_TIER_REVENUE="1:10,3:30").costs.revenue_by_level == {1: 10, 3: 30}
    assert load(TOKENBUDGET_LEADS_PER_MONTH="0").costs.leads_per_month == 0  # 0 is allowed
    assert refused(load, "TOKENBUDGET_LEADS_PER_MONTH", TOKENBUDGET_LEADS_PER_MONTH="-1")
    assert refused(load, "TOKENBUDGET_PRICE_PER_MTOK", TOKENBUDGET_PRICE_PER_MTOK="cheap")
    assert refused(load, "TOKENBUDGET_TIER_REVENUE", TOKENBUDGET_TIER_REVENUE="1:lots")


@pytest.mark.parametrize("name, value", [
    ("TOKENBUDGET_WARNING", "0"), ("TOKENBUDGET_WARNING", "1.5"), ("TOKENBUDGET_WARNING", "x"),
    ("TOKENBUDGET_MAX_TEXT_CHARS", "0"), ("TOKENBUDGET_MAX_TEXT_CHARS", "many"),
    ("TOKENBUDGET_ENCODING", "gpt2"), ("AIRTABLE_MIN_INTERVAL", "-1"),
    ("AIRTABLE_RETRIES", "-1"), ("AIRTABLE_ENDPOINT_URL", "ftp://x"),
])
def test_each_bad_top_level_or_airtable_value_is_named(load, name, value):
    assert refused(load, name, **{name: value})


def test_warning_of_one_is_allowed(load):
    assert load(TOKENBUDGET_WARNING="1").warning == 1.0


def test_an_unreadable_secrets_file_is_named(load, tmp_path):
    with pytest.raises(BadInput, match="secrets.toml: file: cannot read secrets"):
        load("this is = = not toml")
