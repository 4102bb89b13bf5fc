"""``ResilientProvider`` is a provider like the one it wraps: the email contract holds."""

from __future__ import annotations

import email.message
from collections.abc import AsyncIterator

import pytest

from shared.adapters.clock import SimulatedClock
from shared.adapters.providers.email import SmtpProvider
from shared.adapters.providers.factories import resilient
from shared.errors import CircuitOpen, ProviderUnavailable
from shared.ports.providers import EmailProvider
from tests.contract.test_email_provider import MESSAGE, EmailProviderContract
from tests.support.ports import free_port
from tests.support.smtp import SmtpServer


class TestResilientSmtpProvider(EmailProviderContract):
    @pytest.fixture
    async def provider(
        self, smtp: SmtpServer, clock: SimulatedClock
    ) -> AsyncIterator[EmailProvider]:
        self.server = smtp
        inner = SmtpProvider(smtp.host, smtp.port, "shop@nudge.local", timeout=5)
        provider = resilient(inner, name="email", clock=clock)
        yield provider
        await provider.aclose()

    def delivered(self) -> list[email.message.EmailMessage]:
        return self.server.mailbox.messages


async def test_a_dead_smtp_server_opens_the_email_breaker(clock: SimulatedClock) -> None:
    dead = SmtpProvider("127.0.0.1", free_port(), "shop@nudge.local", timeout=2)
    provider = resilient(
        dead, name="email", clock=clock, attempts=1, breaker_threshold=2, initial_backoff=0
    )
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            await provider.send(MESSAGE)
    with pytest.raises(CircuitOpen, match=r"email: circuit open, 30\.0s left"):
        await provider.send(MESSAGE)
