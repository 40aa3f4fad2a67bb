"""Budget alerts by email: SMTP settings, the message, and sending through smtplib.

`compose` is pure (the dashboard's wording via `core.format_usage`); `send` is the only
network call. The SMTP password never appears in a message, a log line or an error:
`SmtpConfig.__repr__` hides it and `send` scrubs it from whatever the server said."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from . import core
from .model import AttributeCost, BadInput, Client, Usage

SECURITY = ("starttls", "tls", "none")
RECIPIENT_POLICIES = ("contact", "manager", "both")
TOP_ATTRIBUTES = 5  # how many of the costliest attributes an alert lists


class SendFailed(RuntimeError):
    """The SMTP server could not be reached or refused the message; the text is safe
    to store and show (no password)."""


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    security: str = "starttls"
    user: str = ""
    password: str = field(default="", repr=False)
    sender: str = ""
    timeout: float = 30.0

    @classmethod
    def from_settings(cls, raw: Mapping[str, object]) -> SmtpConfig | None:
        """SMTP_HOST, SMTP_PORT, SMTP_SECURITY (starttls | tls | none), SMTP_USER,
        SMTP_PASSWORD, SMTP_SENDER; None when SMTP_HOST is not set (email is off)."""
        def get(key: str, default: str = "") -> str:
            value = raw.get(key)
            return default if value is None else str(value).strip()

        host = get("SMTP_HOST")
        if not host:
            return None
        security = get("SMTP_SECURITY", "starttls").lower()
        if security not in SECURITY:
            raise BadInput("settings", "SMTP_SECURITY",
                           f"{security!r} is not one of {', '.join(SECURITY)}")
        port_text = get("SMTP_PORT", "465" if security == "tls" else "587")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise BadInput("settings", "SMTP_PORT", f"must be a port number, got {port_text!r}")
        user = get("SMTP_USER")
        sender = get("SMTP_SENDER", user)
        if "@" not in sender:
            raise BadInput("settings", "SMTP_SENDER",
                           f"must be an email address, got {sender!r}")
        return cls(host, int(port_text), security, user, get("SMTP_PASSWORD"), sender)


@dataclass(frozen=True)
class Email:
    to: tuple[str, ...]
    subject: str
    body: str


def manager_emails(raw: Mapping[str, object]) -> dict[str, str]:
    """TOKENBUDGET_MANAGER_EMAILS: `Name=email,...` (env) or a TOML table, for account
    managers that the client record names rather than addresses."""
    value = raw.get("TOKENBUDGET_MANAGER_EMAILS") or {}
    pairs = (value.items() if isinstance(value, Mapping) else
             (item.split("=", 1) for item in str(value).split(",") if item.strip()))
    out = {}
    for pair in pairs:
        if len(pair) != 2 or "@" not in str(pair[1]):
            raise BadInput("settings", "TOKENBUDGET_MANAGER_EMAILS",
                           f"expected NAME=EMAIL, got {'='.join(map(str, pair))!r}")
        out[str(pair[0]).strip().lower()] = str(pair[1]).strip()
    return out


def recipients(client: Client, policy: str, managers: Mapping[str, str]) -> tuple[str, ...]:
    """The addresses an alert goes to under `policy` (contact, manager or both); an
    account manager given by name is looked up in `managers`."""
    out: list[str] = []
    if policy in ("contact", "both") and "@" in client.email:
        out.append(client.email.strip())
    if policy in ("manager", "both"):
        manager = client.account_manager.strip()
        address = manager if "@" in manager else managers.get(manager.lower(), "")
        if address and address not in out:
            out.append(address)
    return tuple(out)


def compose(usage: Usage, threshold: int, period: date, period_end: date,
            costs: Sequence[AttributeCost], to: Sequence[str]) -> Email:
    """The alert for the highest threshold reached: usage in the dashboard's words and
    the attributes that cost the most (active ones: they are what counts)."""
    name = usage.client.name
    top = sorted((c for c in costs if c.active and c.client_id == usage.client.id),
                 key=lambda c: (-c.total, c.name))[:TOP_ATTRIBUTES]
    lines = [f"{name} has reached {threshold}% of its token budget.", "",
             f"Usage: {core.format_usage(usage.usage, usage.budget)}",
             f"Budget period: {period:%Y-%m-%d} to {period_end:%Y-%m-%d} "
             f"(the budget resets on {period_end:%Y-%m-%d})", ""]
    if usage.usage > usage.budget:
        lines += [f"It is {usage.usage - usage.budget:,} tokens over budget: changes that add "
                  "tokens are refused until attributes are trimmed or the budget is raised.", ""]
    if top:
        lines.append("The attributes that cost the most:")
        lines += [f"  {c.total:>8,} tokens  {c.name}" for c in top]
    return Email(tuple(to), f"[tokenbudget] {name} reached {threshold}% of its token budget",
                 "\n".join(lines) + "\n")


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def send(config: SmtpConfig, email: Email) -> list[str]:
    """Delivers one message or raises SendFailed (never with the password in it).
    Returns the recipients the server refused while accepting the others: the message
    was delivered, so it counts as sent (sending again would duplicate it)."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = config.sender, ", ".join(email.to), email.subject
    msg["Date"], msg["Message-ID"] = formatdate(localtime=False), make_msgid("tokenbudget")
    msg.set_content(email.body)
    context = ssl.create_default_context()
    try:
        if config.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(config.host, config.port,
                                                  timeout=config.timeout, context=context)
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        with smtp:
            if config.security == "starttls":
                smtp.starttls(context=context)
            if config.user:
                smtp.login(config.user, config.password)
            refused = smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as e:
        raise SendFailed(_scrub(f"SMTP {config.host}:{config.port}: {type(e).__name__}: {e}",
                                config.password)) from None
    return sorted(refused)
