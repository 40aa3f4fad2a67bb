"""A real SMTP server (aiosmtpd) on loopback for the tests that send email: it keeps
what it receives, can refuse messages or mailboxes, and can answer slowly, so that
passes running at once overlap while they send."""

from __future__ import annotations

import asyncio
import email
import socket
from collections import Counter
from email.message import Message

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """An aiosmtpd handler that keeps what it receives; `reject` makes it answer the
    next DATA commands with 554; `delay` seconds pass before each message is taken."""

    def __init__(self, delay: float = 0.0) -> None:
        self.messages: list[tuple[list[str], Message]] = []
        self.reject = 0
        self.reject_text = "554 5.7.1 message rejected for the test"
        self.delay = delay
        self.unknown: set[str] = set()  # addresses answered with 550

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.unknown:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.reject:
            self.reject -= 1
            return self.reject_text
        self.messages.append((list(envelope.rcpt_tos),
                              email.message_from_bytes(envelope.original_content)))
        return "250 OK"

    def bodies(self) -> list[str]:
        return [m.get_payload(decode=True).decode() for _, m in self.messages]

    def per_subject(self) -> Counter[tuple[str, str]]:
        """How many messages each (recipients, subject) got: one alert key each."""
        return Counter((", ".join(r), str(m["Subject"])) for r, m in self.messages)


class SmtpServer:
    def __init__(self, delay: float = 0.0, **kwargs) -> None:
        self.inbox = Inbox(delay)
        self.port = free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **kwargs)

    def settings(self, **extra: str) -> dict[str, str]:
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.port), "SMTP_SECURITY": "none",
                "SMTP_SENDER": "budgets@tokenbudget.example", **extra}
