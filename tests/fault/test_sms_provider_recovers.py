"""The SMS provider answers 500 for a while, then recovers; email goes on meanwhile.

On the production stack (real Kafka and PostgreSQL, ingest over HTTP, a real SMTP
server) with a Twilio-shaped server on 127.0.0.1 that fails on cue. The welcome
campaign goes by email, else by SMS: buyers known by phone only get an SMS, buyers
known by email only an email. Retries and the breaker's cool-down run on the
simulated clock, which the test moves a second at a time while it waits. SMS that
failed while the provider was down go out once it is back; an SMS provider that does
not answer holds up only its own sends.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from shared.adapters.clock import SimulatedClock
from shared.adapters.providers.email import SmtpProvider
from shared.adapters.store.definitions import SqlDefinitions
from shared.domain.campaigns import BUILTIN_CAMPAIGNS
from shared.ports.store import MessageRecord
from shared.settings import Settings
from tests.e2e.stacks import RunningStack, identify, running_stack
from tests.support.providers import FakeProvider, FakeTwilio, running
from tests.support.smtp import SmtpServer
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.fault]

BREAKER_THRESHOLD = 5
COOL_DOWN = timedelta(seconds=30)


@pytest.fixture
async def twilio() -> AsyncIterator[FakeProvider]:
    async with running(FakeTwilio()) as fake:
        yield fake


@pytest.fixture
def settings(kafka_settings: Settings, twilio: FakeProvider) -> Settings:
    return kafka_settings.model_copy(
        update={
            "sms": "http",
            "sms_base_url": twilio.url,
            "sms_account_sid": FakeTwilio.account_sid,
            "sms_auth_token": SecretStr(twilio.credential),
            "breaker_threshold": BREAKER_THRESHOLD,
            "breaker_cool_down": COOL_DOWN.total_seconds(),
        }
    )


@contextlib.asynccontextmanager
async def welcoming_stack(
    settings: Settings, clock: SimulatedClock, smtp: SmtpServer, **overrides: Any
) -> AsyncIterator[RunningStack]:
    """The stack with the welcome campaign on, by email else SMS, with no holdout."""
    email = SmtpProvider(smtp.host, smtp.port, "shop@nudge.local", timeout=5)
    async with running_stack(settings.model_copy(update=overrides), clock, email) as stack:
        (welcome,) = [c for c in BUILTIN_CAMPAIGNS if c.key == "welcome-lead"]
        definitions = SqlDefinitions(stack.runtime.store.engine, clock=clock)
        await definitions.templates.put(
            "welcome-sms",
            channel="sms",
            content={"text": "Welcome! 5% off your first order: code WELCOME5."},
            expected_version=None,
        )
        definition = {
            **welcome.to_dict(),
            "holdout": 0,
            "channels": ["email", "sms"],
            "templates": {"email": "welcome-email", "sms": "welcome-sms"},
        }
        await definitions.campaigns.put(
            "welcome-lead", definition=definition, status="active", expected_version=None
        )
        yield stack


def by_phone(n: int) -> dict[str, str]:
    return {"id": f"sms-buyer-{n}", "phone": f"+7916123{n:04d}"}


def by_email(n: int) -> dict[str, str]:
    return {"id": f"email-buyer-{n}", "email": f"buyer-{n}@example.com"}


async def sign_up(stack: RunningStack, clock: SimulatedClock, *buyers: dict[str, str]) -> None:
    events = [identify(f"{b['id']}-signs-up", clock.now(), customer=b) for b in buyers]
    assert (await stack.post(*events)).status_code == 202


async def messages(stack: RunningStack, status: str) -> list[MessageRecord]:
    async with stack.runtime.store.unit_of_work() as uow:
        return [m for m in await uow.messages.all() if m.status == status]


async def until_messages(
    stack: RunningStack, count: int, status: str, *, clock: SimulatedClock | None = None
) -> list[MessageRecord]:
    """``count`` messages with ``status``; with ``clock``, a second passes at every look."""

    async def there() -> list[MessageRecord]:
        if clock is not None:
            clock.advance(timedelta(seconds=1))
        found = await messages(stack, status)
        return found if len(found) == count else []

    return await eventually(there, what=f"{count} messages {status}")


async def message_of(stack: RunningStack, buyer: dict[str, str], status: str) -> MessageRecord:
    profile = await stack.wait_for_profile("id", buyer["id"])

    async def found() -> MessageRecord | None:
        return next((m for m in await messages(stack, status) if m.profile_id == profile.id), None)

    message = await eventually(found, what=f"{buyer['id']}'s message {status}")
    assert message is not None
    return message


async def emails_to(smtp: SmtpServer, *buyers: dict[str, str]) -> None:
    wanted = sorted(b["email"] for b in buyers)

    async def arrived() -> bool:
        return sorted(m["To"] for m in list(smtp.mailbox.messages)) == wanted

    await eventually(arrived, timeout=10, what=f"emails to {wanted}")


async def test_an_sms_retried_through_a_short_outage_goes_out_once(
    settings: Settings, clock: SimulatedClock, smtp: SmtpServer, twilio: FakeProvider
) -> None:
    twilio.fail(1)  # down for the first try
    twilio.lose_answers(1)  # the second delivers, but its answer is lost
    async with welcoming_stack(settings, clock, smtp) as stack:
        await sign_up(stack, clock, by_phone(1))
        (sent,) = await until_messages(stack, 1, "sent", clock=clock)

    assert sent.channel == "sms"
    assert twilio.keys_seen() == [sent.key] * 3
    assert list(twilio.delivered) == [sent.key]


async def test_an_sms_outage_opens_the_breaker_email_goes_on_and_sms_resume_after_it(
    settings: Settings, clock: SimulatedClock, smtp: SmtpServer, twilio: FakeProvider
) -> None:
    twilio.fail(1000)
    async with welcoming_stack(settings, clock, smtp, provider_attempts=1) as stack:
        await sign_up(stack, clock, *(by_phone(n) for n in range(BREAKER_THRESHOLD)))
        await until_messages(stack, BREAKER_THRESHOLD, "failed")
        assert len(twilio.requests) == BREAKER_THRESHOLD

        await sign_up(stack, clock, by_email(1), by_phone(98), by_email(2))
        await emails_to(smtp, by_email(1), by_email(2))
        refused = await message_of(stack, by_phone(98), "failed")
        assert refused.error is not None
        assert "circuit open" in refused.error
        assert len(twilio.requests) == BREAKER_THRESHOLD, "an open breaker calls nobody"

        twilio.heal()
        clock.advance(COOL_DOWN)
        await sign_up(stack, clock, by_phone(99))
        sms = [m for m in await until_messages(stack, 3, "sent") if m.channel == "sms"]

    assert len(sms) == 1
    assert list(twilio.delivered) == [sms[0].key]


async def test_sms_failed_during_an_outage_go_out_once_after_the_breaker_closes(
    settings: Settings, clock: SimulatedClock, smtp: SmtpServer, twilio: FakeProvider
) -> None:
    buyers = [by_phone(n) for n in range(BREAKER_THRESHOLD + 2)]
    twilio.fail(1000)
    async with welcoming_stack(settings, clock, smtp, provider_attempts=1) as stack:
        await sign_up(stack, clock, *buyers)
        await until_messages(stack, len(buyers), "failed")
        twilio.heal()

        async def all_delivered() -> bool:
            clock.advance(timedelta(seconds=1))  # the cool-down passes, and more
            return len(twilio.delivered) == len(buyers)

        await eventually(all_delivered, timeout=10, what="every SMS after the outage")
        sent = await until_messages(stack, len(buyers), "sent")

    assert sorted(p["To"] for p in twilio.delivered.values()) == sorted(b["phone"] for b in buyers)
    assert sorted(twilio.delivered) == sorted(m.key for m in sent)


async def test_an_sms_provider_that_does_not_answer_does_not_hold_up_email(
    settings: Settings, clock: SimulatedClock, smtp: SmtpServer, twilio: FakeProvider
) -> None:
    twilio.hang()
    async with welcoming_stack(settings, clock, smtp, sms_timeout=30.0) as stack:
        await sign_up(stack, clock, by_phone(1))

        async def sms_in_flight() -> bool:
            return len(twilio.requests) == 1

        await eventually(sms_in_flight, what="the SMS to reach the provider")
        await sign_up(stack, clock, by_email(1))
        try:
            await emails_to(smtp, by_email(1))
        finally:
            twilio.release()
