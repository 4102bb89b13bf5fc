"""Email providers: a real SMTP server (aiosmtplib), and a folder of ``.eml`` files.

Both build the same MIME message: a text and an HTML part, a ``Message-ID``
made from the message's idempotency key, so the same message always carries the
same id, and with an unsubscribe link the RFC 8058 one-click headers
(``List-Unsubscribe: <url>``, ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``).
"""

from __future__ import annotations

import asyncio
import email.message
import email.policy
import email.utils
from pathlib import Path

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
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.username = username
        self.password = password
        self.start_tls = start_tls
        self.timeout = timeout

    async def send(self, message: EmailMessage) -> SendReceipt:
        mime = build_mime(message, self.sender)
        try:
            await aiosmtplib.send(
                mime,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                start_tls=self.start_tls,
                timeout=self.timeout,
            )
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
