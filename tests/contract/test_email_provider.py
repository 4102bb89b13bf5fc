"""One contract for the email provider port: a real SMTP server, and the .eml folder."""

from __future__ import annotations

import dataclasses
import email
import email.message
import email.policy
from pathlib import Path

import pytest

from shared.adapters.providers.email import EmlFolderProvider, SmtpProvider
from shared.domain.rendering import RenderedEmail
from shared.errors import ProviderRejected, ProviderUnavailable
from shared.ports.providers import EmailMessage, EmailProvider
from tests.support.ports import free_port
from tests.support.smtp import SmtpServer

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


class TestSmtpProvider(EmailProviderContract):
    @pytest.fixture
    def provider(self, smtp: SmtpServer) -> EmailProvider:
        self.server = smtp
        return SmtpProvider(smtp.host, smtp.port, "shop@nudge.local", timeout=5)

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
