"""The provider ports: what delivers a rendered message to a buyer, by email, SMS or push.

Every provider has one method, ``send()``, and one error contract: it raises
:class:`~shared.errors.ProviderUnavailable` (or its :class:`~shared.errors.ProviderTimeout`
and :class:`~shared.errors.CircuitOpen`) for a failure worth retrying, and
:class:`~shared.errors.ProviderRejected` for one that is not. Every message carries its
idempotency key; a provider that dedupes on it (the SMS and push APIs do) delivers a
message sent twice once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeAlias, TypeVar

from shared.domain.push import PushContent
from shared.domain.rendering import RenderedEmail

__all__ = [
    "EmailMessage",
    "EmailProvider",
    "Provider",
    "PushMessage",
    "PushProvider",
    "SendReceipt",
    "SmsMessage",
    "SmsProvider",
]

MessageT_contra = TypeVar("MessageT_contra", contravariant=True)


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


@dataclass(frozen=True)
class SmsMessage:
    to: str
    """The buyer's phone in E.164 (``+79161234567``)."""
    text: str
    idempotency_key: str
    """The message's unique key; the provider delivers one SMS per key."""
    sender: str | None = None
    """The sender id or number; ``None`` for the provider's configured default."""


@dataclass(frozen=True)
class PushMessage:
    token: str
    """The app install's device registration token, as the app reported it."""
    content: PushContent
    idempotency_key: str
    """The message's unique key: a header, and ``idempotency_key`` in the data, so the app
    can drop a notification it has already shown."""


class Provider(Protocol[MessageT_contra]):
    """A provider of one kind of message: :data:`EmailProvider`, :data:`SmsProvider`,
    :data:`PushProvider` (and what a wrapper around any of them, retries and breaker,
    takes)."""

    async def send(self, message: MessageT_contra) -> SendReceipt:
        """Deliver ``message``.

        Raises :class:`~shared.errors.ProviderUnavailable` for a failure worth retrying and
        :class:`~shared.errors.ProviderRejected` for one that is not.
        """
        ...


EmailProvider: TypeAlias = Provider[EmailMessage]
SmsProvider: TypeAlias = Provider[SmsMessage]
PushProvider: TypeAlias = Provider[PushMessage]
