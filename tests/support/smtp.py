"""A real SMTP server for tests (aiosmtpd), keeping what it receives."""

from __future__ import annotations

import email
import email.message
import email.policy
import threading
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from tests.support.ports import free_port


class Mailbox:
    """aiosmtpd handler: keeps every message; refuses recipients listed in ``refuse``, and
    answers the next ``busy`` recipients "try again later" (421)."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.refuse: set[str] = set()
        self.busy = 0
        self._lock = threading.Lock()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        with self._lock:
            busy, self.busy = self.busy > 0, max(0, self.busy - 1)
        if busy:
            return "421 4.3.2 service busy, try again later"
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        with self._lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def count(self) -> int:
        with self._lock:
            return len(self.messages)


class _CountingController(Controller):
    """Counts the connections clients open, and keeps the open ones to drop them."""

    def __init__(self, mailbox: Mailbox, *, hostname: str, port: int) -> None:
        super().__init__(mailbox, hostname=hostname, port=port)
        self.opened = 0
        self.open: set[SMTP] = set()

    def factory(self) -> SMTP:
        controller = self

        class Counted(SMTP):
            def connection_made(self, transport: Any) -> None:
                controller.opened += 1
                controller.open.add(self)
                super().connection_made(transport)

            def connection_lost(self, error: Exception | None) -> None:
                controller.open.discard(self)
                super().connection_lost(error)

        return Counted(self.handler, **self.SMTP_kwargs)


class SmtpServer:
    def __init__(self) -> None:
        self.mailbox = Mailbox()
        self.host = "127.0.0.1"
        self.port = free_port()
        self._controller = _CountingController(self.mailbox, hostname=self.host, port=self.port)

    @property
    def connections_opened(self) -> int:
        """Connections clients opened since the server started."""
        return self._controller.opened

    @property
    def connections_open(self) -> int:
        return len(self._controller.open)

    def drop_connections(self) -> None:
        """Close every client connection from the server's side, as a server whose idle
        timeout passed does."""
        controller = self._controller

        def drop() -> None:
            for session in list(controller.open):
                if session.transport is not None:
                    session.transport.close()

        done = threading.Event()
        controller.loop.call_soon_threadsafe(lambda: (drop(), done.set()))
        done.wait(5)

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
