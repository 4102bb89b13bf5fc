"""The SMS provider port: the Twilio-shaped HTTP adapter against a fake Twilio, and the folder."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.clock import SimulatedClock
from shared.adapters.providers.email import SmtpProvider
from shared.adapters.providers.factories import build_sms_provider, resilient
from shared.adapters.providers.folder import SmsFolderProvider
from shared.adapters.providers.sms import TwilioSmsProvider
from shared.domain.rendering import RenderedEmail
from shared.errors import ProviderRejected
from shared.ports.providers import EmailMessage, SmsMessage, SmsProvider
from tests.contract.provider_contract import Build, HttpProviderContract
from tests.support.providers import FakeProvider, FakeTwilio, running
from tests.support.smtp import SmtpServer
from tests.support.waiting import eventually

SENDER = "+15005550006"
TOKEN = "twilio-token"


def sms(key: str) -> SmsMessage:
    return SmsMessage(to="+79161234567", text="Anna, -10% on pet food today", idempotency_key=key)


class TestTwilioSmsProvider(HttpProviderContract[SmsMessage]):
    name = "sms"

    def new_fake(self) -> FakeProvider:
        return FakeTwilio()

    def adapter(
        self, fake: FakeProvider, *, timeout: float, url: str | None = None, connections: int = 16
    ) -> Any:
        return TwilioSmsProvider(
            url or fake.url,
            FakeTwilio.account_sid,
            TOKEN,
            SENDER,
            timeout=timeout,
            connections=connections,
        )

    def message(self, key: str) -> SmsMessage:
        return sms(key)

    async def test_the_sms_goes_as_twilio_form_with_basic_auth(
        self, fake: FakeProvider, build: Build
    ) -> None:
        receipt = await build().send(sms("win-back-1"))
        (seen,) = fake.requests
        assert seen.payload == {
            "To": "+79161234567",
            "From": SENDER,
            "Body": "Anna, -10% on pet food today",
        }
        assert seen.headers["i-twilio-idempotency-token"] == "win-back-1"
        assert seen.headers["authorization"].startswith("Basic ")
        assert receipt.provider_message_id.startswith("SM")

    async def test_a_message_may_name_its_own_sender(
        self, fake: FakeProvider, build: Build
    ) -> None:
        await build().send(dataclasses.replace(sms("win-back-1"), sender="SHOP"))
        assert fake.requests[0].payload["From"] == "SHOP"

    async def test_an_invalid_number_is_rejected_with_twilio_s_code(
        self, fake: FakeProvider, build: Build
    ) -> None:
        fake.reject()
        with pytest.raises(ProviderRejected, match=r"HTTP 400, Twilio 21211: The 'To' number"):
            await build().send(sms("win-back-1"))


class SmsProviderContract:
    """The port itself, for every adapter: one SMS per idempotency key."""

    @pytest.fixture
    def provider(self) -> SmsProvider:
        raise NotImplementedError

    def delivered(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def test_an_sms_sent_twice_with_one_key_arrives_once(self, provider: SmsProvider) -> None:
        first = await provider.send(sms("win-back-1"))
        again = await provider.send(sms("win-back-1"))
        await provider.send(sms("win-back-2"))
        assert first == again
        assert len(self.delivered()) == 2


class TestTwilioSmsPort(SmsProviderContract):
    @pytest.fixture
    async def provider(self, clock: SimulatedClock) -> Any:
        async with running(FakeTwilio()) as fake:
            self.fake = fake
            provider = build_sms_provider(
                kind="http",
                clock=clock,
                sender=SENDER,
                base_url=fake.url,
                account_sid=FakeTwilio.account_sid,
                auth_token=TOKEN,
            )
            yield provider
            await provider.aclose()

    def delivered(self) -> list[dict[str, Any]]:
        return list(self.fake.delivered.values())


class TestSmsFolderPort(SmsProviderContract):
    @pytest.fixture
    def provider(self, tmp_path: Path) -> SmsProvider:
        self.folder = tmp_path / "sms"
        return SmsFolderProvider(self.folder, SENDER)

    def delivered(self) -> list[dict[str, Any]]:
        return [json.loads(path.read_text()) for path in sorted(self.folder.glob("*.json"))]

    async def test_the_file_holds_what_the_buyer_would_read(self, provider: SmsProvider) -> None:
        await provider.send(sms("win-back-1"))
        assert self.delivered() == [
            {
                "to": "+79161234567",
                "from": SENDER,
                "text": "Anna, -10% on pet food today",
                "idempotency_key": "win-back-1",
            }
        ]


async def test_a_hung_sms_provider_does_not_delay_an_email_sent_alongside(
    smtp: SmtpServer, clock: SimulatedClock
) -> None:
    async with running(FakeTwilio()) as twilio:
        twilio.hang()
        sms_provider = build_sms_provider(
            kind="http",
            clock=clock,
            sender=SENDER,
            base_url=twilio.url,
            account_sid=FakeTwilio.account_sid,
            auth_token=TOKEN,
            timeout=60,
            attempts=1,
        )
        email_provider = resilient(
            SmtpProvider(smtp.host, smtp.port, "shop@nudge.local", timeout=5),
            name="email",
            clock=clock,
        )
        email = EmailMessage(
            to="anna@shop.ru",
            content=RenderedEmail(subject="We miss you", html="<p>Back?</p>", text="Back?"),
            idempotency_key="win-back-email",
        )
        sms_finished = asyncio.Event()

        async def send_sms() -> str:
            receipt = await sms_provider.send(sms("win-back-sms"))
            sms_finished.set()
            return receipt.provider_message_id

        async def sms_is_held() -> bool:
            return twilio.keys_seen() == ["win-back-sms"]

        async def send_email_while_the_sms_hangs() -> bool:
            await eventually(sms_is_held, what="the SMS to reach the provider")
            await email_provider.send(email)
            arrived_first = smtp.mailbox.count() == 1 and not sms_finished.is_set()
            twilio.release()
            return arrived_first

        sms_id, email_arrived_first = await asyncio.gather(
            send_sms(), send_email_while_the_sms_hangs()
        )
        assert email_arrived_first  # the email arrived while the SMS still waited on its provider
        assert sms_id.startswith("SM")
        assert twilio.deliveries("win-back-sms") == 1
        await sms_provider.aclose()
        await email_provider.aclose()
