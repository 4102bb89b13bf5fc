"""One contract for the email provider port: a real SMTP server, and the .eml folder."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.message
import email.policy
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.adapters.providers.email import EmlFolderProvider, SmtpProvider
from shared.domain.rendering import RenderedEmail
from shared.errors import ProviderRejected, ProviderUnavailable
from shared.ports.providers import EmailMessage, EmailProvider
from tests.support.ports import free_port
from tests.support.smtp import SmtpServer
from tests.support.waiting import eventually

MESSAGE = EmailMessage(
    to="anna@shop.ru",
    content=RenderedEmail(subject="We miss you", html="<p>Come <b>back</b></p>", text="Come back"),
    idempotency_key="win-back-30d-abc",
)


class EmailProviderContract:
    @pytest.fixture
    def provider(self) -> EmailProvider:
        raise NotImplementedError

    def delivered(self) -> list[email.message.EmailMessage]:
        raise NotImplementedError

    async def test_a_message_arrives_with_both_parts_and_a_stable_id(
        self, provider: EmailProvider
    ) -> None:
        receipt = await provider.send(MESSAGE)
        (mime,) = self.delivered()
        assert mime["To"] == "anna@shop.ru"
        assert mime["Subject"] == "We miss you"
        assert mime["Message-ID"] == receipt.provider_message_id
        assert "win-back-30d-abc" in mime["Message-ID"]
        text = mime.get_body(("plain",))
        html = mime.get_body(("html",))
        assert text is not None
        assert html is not None
        assert text.get_content().strip() == "Come back"
        assert "<b>back</b>" in html.get_content()
        assert mime["List-Unsubscribe"] is None  # no link given, no header

    async def test_an_unsubscribe_link_becomes_the_rfc_8058_one_click_headers(
        self, provider: EmailProvider
    ) -> None:
        link = "https://nudge.shop.example/v1/unsubscribe/" + "a" * 72 + "." + "b" * 43
        await provider.send(dataclasses.replace(MESSAGE, unsubscribe_url=link))
        (mime,) = self.delivered()
        assert mime["List-Unsubscribe"] == f"<{link}>"
        assert mime["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        # On the wire as written: a long URL folded or RFC 2047-encoded is no URL to a client.
        raw = dict(mime.raw_items())
        assert raw["List-Unsubscribe"] == f"<{link}>"


def numbered(count: int) -> list[EmailMessage]:
    return [dataclasses.replace(MESSAGE, idempotency_key=f"win-back-{n}") for n in range(count)]


async def no_connection_open(server: SmtpServer) -> None:
    async def closed() -> bool:
        return server.connections_open == 0

    await eventually(closed, what="every connection closed at the server")


def keys(server: SmtpServer) -> list[str]:
    return sorted(str(mime["Message-ID"]) for mime in server.mailbox.messages)


class TestSmtpProvider(EmailProviderContract):
    @pytest.fixture
    async def provider(self, smtp: SmtpServer) -> AsyncIterator[SmtpProvider]:
        self.server = smtp
        provider = SmtpProvider(smtp.host, smtp.port, "shop@nudge.local", timeout=5)
        yield provider
        await provider.aclose()

    @pytest.fixture
    async def pool_of_three(self, smtp: SmtpServer) -> AsyncIterator[SmtpProvider]:
        provider = SmtpProvider(smtp.host, smtp.port, "shop@nudge.local", connections=3)
        yield provider
        await provider.aclose()

    async def test_messages_sent_at_once_share_a_few_reused_connections(
        self, pool_of_three: SmtpProvider, smtp: SmtpServer
    ) -> None:
        before = smtp.connections_opened
        await asyncio.gather(*(pool_of_three.send(m) for m in numbered(12)))
        await asyncio.gather(*(pool_of_three.send(m) for m in numbered(24)[12:]))
        assert smtp.mailbox.count() == 24
        assert len(set(keys(smtp))) == 24
        assert smtp.connections_opened - before <= 3

    async def test_messages_sent_one_after_another_use_one_connection(
        self, pool_of_three: SmtpProvider, smtp: SmtpServer
    ) -> None:
        before = smtp.connections_opened
        for message in numbered(5):
            await pool_of_three.send(message)
        assert smtp.mailbox.count() == 5
        assert smtp.connections_opened - before == 1

    async def test_a_connection_the_server_dropped_is_replaced_and_no_message_lost_or_doubled(
        self, pool_of_three: SmtpProvider, smtp: SmtpServer
    ) -> None:
        first, second, third = numbered(3)
        await pool_of_three.send(first)
        smtp.drop_connections()  # the pooled connection, idle, closed by the server
        await pool_of_three.send(second)
        smtp.drop_connections()
        await no_connection_open(smtp)
        await pool_of_three.send(third)
        assert keys(smtp) == sorted(f"<win-back-{n}@nudge.local>" for n in range(3))

    async def test_a_refusal_keeps_the_connection_for_the_next_message(
        self, pool_of_three: SmtpProvider, smtp: SmtpServer
    ) -> None:
        before = smtp.connections_opened
        smtp.mailbox.refuse.add("anna@shop.ru")
        with pytest.raises(ProviderRejected):
            await pool_of_three.send(MESSAGE)
        smtp.mailbox.refuse.clear()
        await pool_of_three.send(MESSAGE)
        assert smtp.mailbox.count() == 1
        assert smtp.connections_opened - before == 1

    async def test_an_idle_connection_is_closed_after_its_timeout(self, smtp: SmtpServer) -> None:
        provider = SmtpProvider(smtp.host, smtp.port, "shop@nudge.local", idle_timeout=0.05)
        await provider.send(MESSAGE)
        await no_connection_open(smtp)
        await provider.send(MESSAGE)  # and a new one opened for the next message
        assert smtp.mailbox.count() == 2
        await provider.aclose()

    async def test_closing_the_provider_closes_its_connections(
        self, pool_of_three: SmtpProvider, smtp: SmtpServer
    ) -> None:
        await asyncio.gather(*(pool_of_three.send(m) for m in numbered(3)))
        assert smtp.connections_open > 0
        await pool_of_three.aclose()
        await no_connection_open(smtp)

    def delivered(self) -> list[email.message.EmailMessage]:
        return self.server.mailbox.messages

    async def test_a_refused_recipient_is_a_permanent_failure(
        self, provider: EmailProvider, smtp: SmtpServer
    ) -> None:
        smtp.mailbox.refuse.add("anna@shop.ru")
        with pytest.raises(ProviderRejected):
            await provider.send(MESSAGE)

    async def test_a_deferred_recipient_is_worth_retrying_and_its_address_is_not_told(
        self, provider: EmailProvider, smtp: SmtpServer
    ) -> None:
        # Seen: a 421 at RCPT (a busy or greylisting server) was a permanent rejection,
        # and the error, kept on the message row, held the buyer's address.
        smtp.mailbox.busy = 1
        with pytest.raises(ProviderUnavailable) as deferred:
            await provider.send(MESSAGE)
        assert "421" in str(deferred.value)
        assert "anna@shop.ru" not in str(deferred.value)
        smtp.mailbox.refuse.add("anna@shop.ru")
        with pytest.raises(ProviderRejected) as refused:
            await provider.send(MESSAGE)
        assert "550" in str(refused.value)
        assert "anna@shop.ru" not in str(refused.value)

    async def test_a_server_that_is_not_there_is_worth_retrying(self) -> None:
        provider = SmtpProvider("127.0.0.1", free_port(), "shop@nudge.local", timeout=2)
        with pytest.raises(ProviderUnavailable):
            await provider.send(MESSAGE)


class TestEmlFolderProvider(EmailProviderContract):
    @pytest.fixture
    def provider(self, tmp_path: Path) -> EmailProvider:
        self.folder = tmp_path / "mail"
        return EmlFolderProvider(self.folder, "shop@nudge.local")

    def delivered(self) -> list[email.message.EmailMessage]:
        found = []
        for path in sorted(self.folder.glob("*.eml")):
            mime = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(mime, email.message.EmailMessage)
            found.append(mime)
        return found
