"""Sending alert emails through SMTP (stdlib `smtplib`): the settings and the one
network call.

The SMTP password never appears in a message, a log line or an error:
`SmtpConfig.__repr__` hides it and `send` scrubs it from whatever the server said."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from .alerts import Email
from .model import BadInput
from .redact import scrub

SECURITY = ("starttls", "tls", "none")


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
        raise SendFailed(scrub(f"SMTP {config.host}:{config.port}: {type(e).__name__}: {e}",
                                config.password)) from None
    return sorted(refused)
