"""Email alerts through a real SMTP server (aiosmtpd) on loopback: recipients, subject,
the numbers in the body, one email per threshold per period, retries after failures,
STARTTLS with login, and the password never showing anywhere."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date, datetime, UTC

import pytest
from aiosmtpd.smtp import AuthResult

from budget import alerts, smtp
from budget.model import Attribute, BadInput, Change, Client, Tier, Usage
from budget.service import BudgetService
from budget.settings import Settings
from tests.support.factories import ADMIN, STORES_AND_SIDECARS, Clock, settings_from, words
from tests.support.smtp_server import SmtpServer

both_stores = pytest.mark.parametrize("store_factory", STORES_AND_SIDECARS, indirect=True)


def alert_service(store_factory, server: SmtpServer, clock=None, **extra):
    """The small data set (client A: 80 / 100, B: 150 / 200) with email on."""
    svc = store_factory.service(clock, names=server.settings(**extra))
    svc.load_data_set(ADMIN, [Tier(1, "Basic", 100), Tier(2, "Professional", 200)],
                      [Client("A", "Alpha", 1, budget_reset_date=date(2026, 12, 1),
                              email="ops@alpha.example", account_manager="Ana Souza"),
                       Client("B", "Beta", 2, budget_reset_date=date(2026, 12, 10),
                              email="ops@beta.example", account_manager="ben@agency.example")],
                      [Attribute("a1", "A", "Size", True, words(40), "", ""),
                       Attribute("a2", "A", "Industry", True, words(30), words(10), ""),
                       Attribute("a3", "A", "Intent", False, words(25), "", ""),
                       Attribute("b1", "B", "Size", True, words(150), "", "")])
    return svc


# pure parts ---------------------------------------------------------------------------
def test_compose_uses_dashboard_wording_and_costliest_attributes():
    from budget.model import AttributeCost, FieldTokens
    client = Client("A", "Alpha", 1)
    costs = [AttributeCost("a1", "A", "Size", True, FieldTokens(2_000, 500, 0)),
             AttributeCost("a2", "A", "Industry", True, FieldTokens(1_200, 0, 0)),
             AttributeCost("a3", "A", "Off", False, FieldTokens(9_000, 0, 0))]
    mail = alerts.compose(Usage(client, 3_000, 3_700, "exceeded"), 100, date(2026, 11, 1),
                          date(2026, 12, 1), costs, ["ops@alpha.example"])
    assert mail.subject == "[tokenbudget] Alpha reached 100% of its token budget"
    assert "Usage: 3,700 / 3,000 tokens (123% used)" in mail.body
    assert "700 tokens over budget" in mail.body
    assert "2026-11-01 to 2026-12-01" in mail.body
    lines = mail.body.splitlines()
    top = lines.index("The attributes that cost the most:")
    assert lines[top + 1:] == ["     2,500 tokens  Size", "     1,200 tokens  Industry"]


def test_recipients_policy():
    c = Client("A", "Alpha", 1, email="ops@alpha.example", account_manager="Ana Souza")
    managers = settings_from({"TOKENBUDGET_MANAGER_EMAILS": "Ana Souza=ana@agency.example"}
                             ).alerts.managers
    assert alerts.recipients(c, "contact", managers) == ("ops@alpha.example",)
    assert alerts.recipients(c, "manager", managers) == ("ana@agency.example",)
    assert alerts.recipients(c, "both", managers) == ("ops@alpha.example", "ana@agency.example")
    assert alerts.recipients(c, "manager", {}) == ()  # a name with no address: nobody


def test_bad_smtp_settings_name_the_field():
    for raw, name in [({"SMTP_HOST": "h", "SMTP_SECURITY": "ssl3"}, "SMTP_SECURITY"),
                      ({"SMTP_HOST": "h", "SMTP_PORT": "eighty"}, "SMTP_PORT"),
                      ({"SMTP_HOST": "h", "SMTP_SENDER": "nobody"}, "SMTP_SENDER")]:
        with pytest.raises(BadInput, match=f"settings: {name}"):
            settings_from(raw)
    with pytest.raises(BadInput, match="settings: TOKENBUDGET_MANAGER_EMAILS: .*Ana"):
        settings_from({"TOKENBUDGET_MANAGER_EMAILS": "Ana"})
    assert smtp.SmtpConfig.from_settings(settings_from({}).smtp) is None  # no host: email off
    secret = smtp.SmtpConfig.from_settings(settings_from(
        {"SMTP_HOST": "h", "SMTP_USER": "u@x.example", "SMTP_PASSWORD": "hunter2-secret"}).smtp)
    assert secret is not None
    assert "hunter2-secret" not in repr(secret) and secret.port == 587


# through the real server ---------------------------------------------------------------
@both_stores
def test_one_email_per_threshold_per_period_then_new_after_reset(store_factory, smtp_server):
    clock = Clock(datetime(2026, 11, 20, 6, 0, tzinfo=UTC))
    svc = alert_service(store_factory, smtp_server, clock,
                        TOKENBUDGET_MANAGER_EMAILS="Ana Souza=ana@agency.example")
    report = svc.run_due(ADMIN)
    assert report.failed == 0
    (rcpts, msg), = smtp_server.inbox.messages  # A is at 80%; B at 75% is not
    assert rcpts == ["ops@alpha.example", "ana@agency.example"]
    assert msg["Subject"] == "[tokenbudget] Alpha reached 80% of its token budget"
    assert msg["From"] == "budgets@tokenbudget.example"
    assert "Usage: 80 / 100 tokens (80% used)" in smtp_server.inbox.bodies()[0]
    assert "40 tokens  Industry" in smtp_server.inbox.bodies()[0]
    sent = {(n.client_id, n.threshold, n.period, n.status) for n in svc.notifications()}
    assert sent == {("A", 80, date(2026, 11, 1), "sent")}

    svc.run_due(ADMIN)  # same period, nothing new: no duplicate
    assert len(smtp_server.inbox.messages) == 1
    fresh = BudgetService(store_factory.open(), svc.settings, clock)  # the state is in the store
    assert fresh.run_due(ADMIN).failed == 0 and len(smtp_server.inbox.messages) == 1

    # usage rises to 100 (a3 trimmed to 20 tokens, then on): 90 and 100 are new, one email
    svc.apply(ADMIN, Change("A", fields={"a3": {"Instructions": words(20)}}))
    svc.apply(ADMIN, Change("A", active={"a3": True}))
    svc.run_due(ADMIN)
    assert len(smtp_server.inbox.messages) == 2
    assert smtp_server.inbox.messages[1][1]["Subject"].endswith("reached 100% of its token budget")
    assert "Usage: 100 / 100 tokens (100% used)" in smtp_server.inbox.bodies()[1]
    assert {n.threshold for n in svc.notifications() if n.status == "sent"} == {80, 90, 100}

    clock.now = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)  # A's period ends
    report = svc.run_due(ADMIN)
    assert any(line.startswith("Alpha reset") for line in report.lines)
    assert len(smtp_server.inbox.messages) == 3  # the new period's alert
    assert smtp_server.inbox.messages[2][1]["Subject"].endswith("reached 100% of its token budget")
    assert {(n.threshold, n.period) for n in svc.notifications() if n.client_id == "A"} == {
        (t, p) for t in (80, 90, 100) for p in (date(2026, 11, 1), date(2026, 12, 1))}
    svc.run_due(ADMIN)
    assert len(smtp_server.inbox.messages) == 3


@both_stores
def test_rejected_send_is_recorded_failed_and_retried(store_factory, smtp_server):
    svc = alert_service(store_factory, smtp_server)
    smtp_server.inbox.reject = 1
    report = svc.run_due(ADMIN)
    assert report.failed == 1 and smtp_server.inbox.messages == []
    (n,) = svc.notifications()
    assert (n.status, n.threshold, n.attempts) == ("failed", 80, 1)
    assert "554" in n.error and "rejected for the test" in n.error
    assert svc.store.sent_alerts() == set()  # never recorded as sent
    report = svc.run_due(ADMIN)
    assert report.failed == 0 and len(smtp_server.inbox.messages) == 1
    (n,) = svc.notifications()
    assert (n.status, n.attempts, n.error) == ("sent", 2, "")
    svc.run_due(ADMIN)
    assert len(smtp_server.inbox.messages) == 1


def test_partly_refused_recipients_count_as_sent_and_no_address_as_failed(store_factory,
                                                                          smtp_server):
    svc = alert_service(store_factory, smtp_server,
                        TOKENBUDGET_MANAGER_EMAILS="Ana Souza=ana@agency.example")
    smtp_server.inbox.unknown = {"ana@agency.example"}
    svc.run_due(ADMIN)
    assert [r for r, _ in smtp_server.inbox.messages] == [["ops@alpha.example"]]
    (n,) = svc.notifications()
    assert n.status == "sent" and n.error == "refused by the server: ana@agency.example"
    c = svc.client("B")  # B at 90% after a tighter budget, and no address at all
    svc.store.save_client(c.__class__(**{**c.__dict__, "email": "", "account_manager": ""}))
    svc.set_budget_override(ADMIN, "B", 160)
    report = svc.run_due(ADMIN)
    assert report.failed == 1 and len(smtp_server.inbox.messages) == 1
    b = [n for n in svc.notifications() if n.client_id == "B"]  # 80 and 90, one attempt
    assert sorted((n.status, n.threshold) for n in b) == [("failed", 80), ("failed", 90)]
    assert all("no recipient address" in n.error for n in b)


def test_server_down_then_up(store_factory, tmp_path):
    server = SmtpServer()  # not started: the port refuses connections
    svc = alert_service(store_factory, server)
    report = svc.run_due(ADMIN)
    assert report.failed == 1
    assert "FAILED, retried next pass" in "\n".join(report.lines)
    assert svc.notifications()[0].status == "failed"
    server.controller.start()
    try:
        assert svc.run_due(ADMIN).failed == 0
        assert [r for r, _ in server.inbox.messages] == [["ops@alpha.example"]]
    finally:
        server.controller.stop()


def test_email_off_sends_nothing_and_records_nothing(store_factory):
    svc = store_factory.service()
    svc.load_data_set(ADMIN, [Tier(1, "Basic", 100)],
                      [Client("A", "Alpha", 1, budget_reset_date=date(2026, 12, 1),
                              email="ops@alpha.example")],
                      [Attribute("a1", "A", "Size", True, words(90), "", "")])
    report = svc.run_due(ADMIN)
    assert any("email is off" in line for line in report.lines)
    assert svc.notifications() == []
    assert svc.plan_due().alerts  # still due, for when email is set up


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl for a test cert")
def test_starttls_with_login_and_password_never_leaks(tmp_path, monkeypatch, store_factory):
    import ssl
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts the test cert
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        login, password = (x.decode() if isinstance(x, bytes) else x
                           for x in (auth_data.login, auth_data.password))
        logins.append((login, password))
        return AuthResult(success=password == "right-password", handled=False)

    server = SmtpServer(tls_context=context, require_starttls=True, auth_required=True,
                        authenticator=authenticator)
    server.controller.start()
    try:
        creds = {"SMTP_SECURITY": "starttls", "SMTP_USER": "mailer@tokenbudget.example"}
        wrong = alert_service(store_factory, server,
                              **creds, SMTP_PASSWORD="wrong-password-Z9")
        report = wrong.run_due(ADMIN)
        (n,) = wrong.notifications()
        assert report.failed == 1 and n.status == "failed" and "535" in n.error
        assert "wrong-password-Z9" not in n.error + "\n".join(report.lines)
        assert "wrong-password-Z9" not in repr(wrong.smtp())
        right = {**server.settings(**creds), "SMTP_PASSWORD": "right-password"}
        wrong.settings = settings_from(right, store=wrong.settings.store)
        assert wrong.run_due(ADMIN).failed == 0
        assert logins[-1] == ("mailer@tokenbudget.example", "right-password")
        assert [r for r, _ in server.inbox.messages] == [["ops@alpha.example"]]
    finally:
        server.controller.stop()


def test_settings_load_reads_smtp_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SMTP_HOST", "mail.example")
    monkeypatch.setenv("SMTP_SECURITY", "tls")
    monkeypatch.setenv("SMTP_SENDER", "budgets@example.com")
    config = smtp.SmtpConfig.from_settings(Settings.load(tmp_path / "none.toml").smtp)
    assert (config.host, config.port, config.security) == ("mail.example", 465, "tls")
