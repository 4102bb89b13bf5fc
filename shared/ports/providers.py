"""The provider port: what delivers a rendered message to a buyer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shared.domain.rendering import RenderedEmail

__all__ = ["EmailMessage", "EmailProvider", "SendReceipt"]


@dataclass(frozen=True)
class EmailMessage:
    to: str
    content: RenderedEmail
    idempotency_key: str
    """The message's unique key; becomes the Message-ID so a mail client can dedupe."""
    unsubscribe_url: str | None = None
    """The buyer's one-click unsubscribe link: the ``List-Unsubscribe`` header (RFC 8058)."""


@dataclass(frozen=True)
class SendReceipt:
    provider_message_id: str


class EmailProvider(Protocol):
    async def send(self, message: EmailMessage) -> SendReceipt:
        """Deliver ``message``.

        Raises :class:`~shared.errors.ProviderUnavailable` for a failure worth retrying and
        :class:`~shared.errors.ProviderRejected` for one that is not.
        """
        ...
