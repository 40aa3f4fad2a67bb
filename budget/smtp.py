"""Sending alert emails through SMTP (stdlib `smtplib`): the settings and the one
network call.

The SMTP password never appears in a message, a log line or an error:
`SmtpConfig.__repr__` hides it and `send` scrubs it from whatever the server said."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from .alerts import Email
from .redact import scrub
from .settings import SmtpSettings



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
    def from_settings(cls, section: SmtpSettings) -> SmtpConfig | None:
        """The sender's view of the `smtp` settings; None when email is off (no host)."""
        if not section.enabled:
            return None
        return cls(section.host, section.port_in_use, section.security, section.user,
                   section.password.get_secret_value(), section.from_address, section.timeout)


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
