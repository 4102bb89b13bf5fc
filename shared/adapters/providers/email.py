"""Email providers: a real SMTP server (aiosmtplib), and a folder of ``.eml`` files.

Both build the same MIME message: a text and an HTML part, a ``Message-ID``
made from the message's idempotency key, so the same message always carries the
same id, and with an unsubscribe link the RFC 8058 one-click headers
(``List-Unsubscribe: <url>``, ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``).

The SMTP provider keeps a pool of open connections, at most ``connections`` of them,
one message at a time on each, so the dispatcher's concurrent sends do not each pay
a connect, EHLO, STARTTLS and login. A connection the server closed or that failed
is dropped and a new one opened; one unused for ``idle_timeout`` seconds is closed.
A message whose envelope the server had not taken yet (no answer to ``MAIL``) when
a reused connection turned out to be closed is sent on a new one: the server cannot
have it, so it is neither lost nor sent twice. Any other failure is the provider's
error as without a pool, and that connection is not reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import email.policy
import email.utils
from pathlib import Path
from typing import Any

import aiosmtplib

from shared.errors import ProviderRejected, ProviderUnavailable
from shared.ports.providers import EmailMessage, SendReceipt

__all__ = ["EmlFolderProvider", "SmtpProvider", "build_mime"]


class _Unfolded(str):
    """A header value written on one line as it is (a header object, as ``email.policy``
    defines them).

    The email package writes a long header with no space in it as RFC 2047
    encoded-words, and a mail client reads no URL out of those: ``List-Unsubscribe``
    must reach it verbatim (well under the 998 characters a line may hold).
    """

    name: str

    def __new__(cls, name: str, value: str) -> _Unfolded:
        header = super().__new__(cls, value)
        header.name = name
        return header

    def fold(self, *, policy: email.policy.Policy) -> str:
        return f"{self.name}: {self}{policy.linesep}"


def build_mime(message: EmailMessage, sender: str) -> email.message.EmailMessage:
    mime = email.message.EmailMessage()
    domain = sender.rpartition("@")[2] or "nudge.local"
    mime["Message-ID"] = f"<{message.idempotency_key}@{domain}>"
    mime["From"] = sender
    mime["To"] = message.to
    mime["Subject"] = message.content.subject
    mime["Date"] = email.utils.formatdate(localtime=False)
    if message.unsubscribe_url is not None:
        mime["List-Unsubscribe"] = _Unfolded("List-Unsubscribe", f"<{message.unsubscribe_url}>")
        mime["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mime.set_content(message.content.text)
    mime.add_alternative(message.content.html, subtype="html")
    return mime


class _Connection(aiosmtplib.SMTP):
    """One pooled SMTP connection, knowing whether the server took the current envelope."""

    envelope_taken = False
    """The server answered ``MAIL`` for the message being sent: it may have it now."""

    async def mail(self, sender: str, /, **options: Any) -> aiosmtplib.SMTPResponse:
        response = await super().mail(sender, **options)
        self.envelope_taken = True
        return response


class SmtpProvider:
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        username: str | None = None,
        password: str | None = None,
        start_tls: bool | None = None,
        timeout: float = 10.0,
        connections: int = 16,
        idle_timeout: float = 30.0,
    ) -> None:
        if connections < 1:
            raise ValueError("an SMTP pool needs at least one connection")
        self.host = host
        self.port = port
        self.sender = sender
        self.username = username
        self.password = password
        self.start_tls = start_tls
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[tuple[_Connection, asyncio.TimerHandle]] = []

    async def send(self, message: EmailMessage) -> SendReceipt:
        mime = build_mime(message, self.sender)
        try:
            async with self._slots:
                await self._send_pooled(mime)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refused.code for refused in exc.recipients]
            if codes and all(500 <= code < 600 for code in codes):
                raise ProviderRejected(f"recipient refused: SMTP {codes[0]}") from exc
            # 4xx: the server defers the recipient (greylisting, busy): worth trying again.
            raise ProviderUnavailable(
                f"recipient deferred: SMTP {codes[0] if codes else '?'}"
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600:
                raise ProviderRejected(f"SMTP {exc.code}: {exc.message}") from exc
            raise ProviderUnavailable(f"SMTP {exc.code}: {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise ProviderUnavailable(f"SMTP server unreachable: {type(exc).__name__}") from exc
        return SendReceipt(provider_message_id=str(mime["Message-ID"]))

    async def aclose(self) -> None:
        """Say goodbye (``QUIT``) on every idle connection and close it."""
        idle, self._idle = self._idle, []
        for connection, expiry in idle:
            expiry.cancel()
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await connection.quit(timeout=self.timeout)
            connection.close()

    async def _send_pooled(self, mime: email.message.EmailMessage) -> None:
        reused = self._take_idle()
        if reused is not None:
            try:
                await self._transact(reused, mime)
                return
            except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                if reused.envelope_taken:
                    raise  # the server may have the message: never sent twice from here
                # Closed while it was idle, before this message reached it: a new one.
        await self._transact(await self._connect(), mime)

    async def _transact(self, connection: _Connection, mime: email.message.EmailMessage) -> None:
        """Send ``mime`` on ``connection``, then pool it again if the server kept it open."""
        connection.envelope_taken = False
        answered = False
        try:
            await connection.send_message(mime)
            answered = True
        except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPResponseException):
            answered = True  # a refusal, and the envelope reset: the connection goes on
            raise
        finally:
            if answered and connection.is_connected:
                expiry = asyncio.get_running_loop().call_later(
                    self.idle_timeout, self._expire, connection
                )
                self._idle.append((connection, expiry))
            else:
                connection.close()

    def _take_idle(self) -> _Connection | None:
        """The connection used last that is still open, if any; closed ones are dropped."""
        while self._idle:
            connection, expiry = self._idle.pop()
            expiry.cancel()
            if connection.is_connected:
                return connection
            connection.close()
        return None

    def _expire(self, connection: _Connection) -> None:
        self._idle = [(c, expiry) for c, expiry in self._idle if c is not connection]
        connection.close()

    async def _connect(self) -> _Connection:
        connection = _Connection(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            start_tls=self.start_tls,
            timeout=self.timeout,
        )
        try:
            await connection.connect()
        except BaseException:
            connection.close()
            raise
        return connection


class EmlFolderProvider:
    """Writes every email as ``<key>.eml`` into a folder: the demo's mailbox."""

    def __init__(self, folder: Path, sender: str) -> None:
        self.folder = folder
        self.sender = sender

    async def send(self, message: EmailMessage) -> SendReceipt:
        mime = build_mime(message, self.sender)
        path = self.folder / f"{message.idempotency_key}.eml"
        await asyncio.to_thread(self._write, path, bytes(mime))
        return SendReceipt(provider_message_id=str(mime["Message-ID"]))

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
