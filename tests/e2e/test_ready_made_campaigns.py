"""Every ready-made campaign, switched on, reaches a synthetic buyer on the production stack.

Real Kafka and PostgreSQL, events posted to ingest over HTTP, a real SMTP server,
and Twilio- and FCM-shaped HTTP servers on 127.0.0.1 for SMS and push
(``NUDGE_SMS=http``, ``NUDGE_PUSH=http``). Time moves on a simulated clock that
stays in the daytime (quiet hours are 21:00-09:00 UTC). Each campaign is switched
on as a marketer does, by storing its definition (here with no holdout); the last
test keeps a buyer in a campaign's control group and checks that nothing reaches them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from pydantic import SecretStr

from shared.adapters.clock import SimulatedClock
from shared.adapters.providers.email import SmtpProvider
from shared.adapters.store.definitions import SqlDefinitions
from shared.domain.campaigns import BUILTIN_CAMPAIGNS
from shared.domain.decisions import in_holdout
from shared.ports.store import MessageRecord
from shared.settings import Settings
from tests.conftest import T0
from tests.e2e.stacks import RunningStack, identify, purchase, running_stack
from tests.support.providers import FakeFcm, FakeProvider, FakeTwilio, running
from tests.support.smtp import SmtpServer
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture
async def twilio() -> AsyncIterator[FakeProvider]:
    async with running(FakeTwilio()) as fake:
        yield fake


@pytest.fixture
async def fcm() -> AsyncIterator[FakeProvider]:
    async with running(FakeFcm()) as fake:
        yield fake


@pytest.fixture
async def stack(
    kafka_settings: Settings,
    clock: SimulatedClock,
    smtp: SmtpServer,
    twilio: FakeProvider,
    fcm: FakeProvider,
) -> AsyncIterator[RunningStack]:
    settings = kafka_settings.model_copy(
        update={
            "sms": "http",
            "sms_base_url": twilio.url,
            "sms_account_sid": FakeTwilio.account_sid,
            "sms_auth_token": SecretStr(twilio.credential),
            "push": "http",
            "push_base_url": fcm.url,
            "push_project_id": FakeFcm.project_id,
            "push_access_token": SecretStr(fcm.credential),
        }
    )
    email = SmtpProvider(smtp.host, smtp.port, "shop@nudge.local", timeout=5)
    async with running_stack(settings, clock, email) as stack:
        yield stack


async def switch_on(stack: RunningStack, key: str, *, holdout: float = 0.0) -> None:
    """Store the ready-made campaign ``key`` as active, as the console does."""
    (campaign,) = [c for c in BUILTIN_CAMPAIGNS if c.key == key]
    definitions = SqlDefinitions(stack.runtime.store.engine, clock=stack.runtime.clock)
    await definitions.campaigns.put(
        key,
        definition={**campaign.to_dict(), "holdout": holdout},
        status="active",
        expected_version=None,
    )


def track(
    event_id: str, clock: SimulatedClock, customer: dict[str, str], name: str, **properties: Any
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "track",
        "occurred_at": clock.now().isoformat(),
        "customer": customer,
        "data": {"name": name, "properties": properties},
    }


async def email_to(smtp: SmtpServer, address: str) -> EmailMessage:
    """The one email ``address`` got, once it arrives."""

    async def arrived() -> list[EmailMessage]:
        return [m for m in list(smtp.mailbox.messages) if m["To"] == address]

    (mail,) = await eventually(arrived, what=f"an email to {address}")
    return mail


async def delivered(fake: FakeProvider, to: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The one message ``fake`` delivered that ``to`` picks, once it is there."""

    async def found() -> list[dict[str, Any]]:
        return [p for p in list(fake.delivered.values()) if to(p)]

    (payload,) = await eventually(found, what="the provider to deliver the message")
    return payload


async def message(
    stack: RunningStack, campaign: str, profile_id: str, status: str
) -> MessageRecord:
    """The buyer's message of ``campaign``, once its row has ``status``."""

    async def recorded() -> MessageRecord | None:
        async with stack.runtime.store.unit_of_work() as uow:
            rows = [
                m
                for m in await uow.messages.all()
                if (m.campaign, m.profile_id, m.status) == (campaign, profile_id, status)
            ]
        return rows[0] if len(rows) == 1 else None

    found = await eventually(recorded, what=f"the {campaign} message {status}")
    assert found is not None
    return found


async def test_a_new_lead_gets_the_welcome_email(stack: RunningStack, smtp: SmtpServer) -> None:
    await switch_on(stack, "welcome-lead")
    lena = {"id": "shop-lena", "email": "lena@example.com"}
    assert (await stack.post(identify("lena-signs-up", T0, customer=lena))).status_code == 202

    mail = await email_to(smtp, "lena@example.com")
    assert mail["Subject"] == "Welcome! 5% off your first order"
    profile = await stack.wait_for_profile("id", "shop-lena")
    sent = await message(stack, "welcome-lead", profile.id, "sent")
    assert (sent.channel, sent.holdout) == ("email", False)
    assert smtp.mailbox.count() == 1


async def test_a_first_order_brings_the_second_order_push_fourteen_days_later(
    stack: RunningStack, clock: SimulatedClock, fcm: FakeProvider
) -> None:
    await switch_on(stack, "second-order")
    pavel = {"id": "shop-pavel", "app_install_id": "install-pavel"}  # reachable by push only
    await stack.post(purchase("pavel-order-1", clock.now(), customer=pavel))
    profile = await stack.wait_for_profile("id", "shop-pavel", orders_count=1)
    waiting = await message(stack, "second-order", profile.id, "scheduled")
    assert waiting.scheduled_for == T0 + timedelta(days=14)

    clock.advance(timedelta(days=14))

    push = await delivered(fcm, lambda p: p["message"]["token"] == "install-pavel")
    assert push["message"]["notification"]["title"] == "Free delivery on your second order"
    sent = await message(stack, "second-order", profile.id, "sent")
    assert sent.channel == "push"
    assert fcm.keys_seen() == [sent.key]


async def test_thirty_days_without_an_order_bring_the_win_back_email(
    stack: RunningStack, clock: SimulatedClock, smtp: SmtpServer
) -> None:
    await switch_on(stack, "win-back-30d")
    vera = {"id": "shop-vera", "email": "vera@example.com"}
    await stack.post(purchase("vera-order-1", clock.now(), customer=vera))
    profile = await stack.wait_for_profile("id", "shop-vera", orders_count=1)

    clock.advance(timedelta(days=30))

    mail = await email_to(smtp, "vera@example.com")
    assert mail["Subject"] == "We miss you: 10% off your next order"
    sent = await message(stack, "win-back-30d", profile.id, "sent")
    assert sent.channel == "email"


async def _orders_four_weeks_apart(
    stack: RunningStack, clock: SimulatedClock, customer: dict[str, str], name: str
) -> str:
    """Two orders 28 days apart (a monthly rhythm); the buyer's profile id."""
    await stack.post(purchase(f"{name}-order-1", clock.now(), customer=customer))
    await stack.wait_for_profile("id", customer["id"], orders_count=1)
    clock.advance(timedelta(days=28))
    await stack.post(purchase(f"{name}-order-2", clock.now(), customer=customer))
    profile = await stack.wait_for_profile("id", customer["id"], orders_count=2)
    return profile.id


async def test_a_monthly_buyer_gets_the_basket_sms_three_days_before_the_next_order(
    stack: RunningStack, clock: SimulatedClock, twilio: FakeProvider
) -> None:
    await switch_on(stack, "monthly-basket")
    olga = {"id": "shop-olga", "phone": "+79161234567"}  # reachable by SMS only
    profile_id = await _orders_four_weeks_apart(stack, clock, olga, "olga")
    expected_next_order = T0 + timedelta(days=56)
    waiting = await message(stack, "monthly-basket", profile_id, "scheduled")
    assert waiting.scheduled_for == expected_next_order - timedelta(days=3)
    assert twilio.requests == []

    clock.set(expected_next_order - timedelta(days=3))

    sms = await delivered(twilio, lambda p: p["To"] == "+79161234567")
    assert sms["Body"].startswith("Your usual basket is due in a few days")
    sent = await message(stack, "monthly-basket", profile_id, "sent")
    assert sent.channel == "sms"
    assert twilio.keys_seen() == [sent.key]


async def test_a_buyer_overdue_against_their_rhythm_gets_the_pre_churn_push(
    stack: RunningStack, clock: SimulatedClock, fcm: FakeProvider
) -> None:
    await switch_on(stack, "pre-churn-rescue")
    igor = {"id": "shop-igor", "app_install_id": "install-igor"}  # reachable by push only
    profile_id = await _orders_four_weeks_apart(stack, clock, igor, "igor")
    assert fcm.requests == []

    clock.advance(timedelta(days=42))  # one and a half of the 28-day gaps since the last order

    push = await delivered(fcm, lambda p: p["message"]["token"] == "install-igor")
    assert push["message"]["notification"]["title"] == "We miss you"
    sent = await message(stack, "pre-churn-rescue", profile_id, "sent")
    assert sent.channel == "push"
    assert fcm.keys_seen() == [sent.key]


async def test_a_cart_left_for_two_hours_brings_the_abandoned_cart_email(
    stack: RunningStack, clock: SimulatedClock, smtp: SmtpServer
) -> None:
    await switch_on(stack, "abandoned-cart")
    nina = {"id": "shop-nina", "email": "nina@example.com"}
    cart = track("nina-cart", clock, nina, "cart_updated", total=3400)
    assert (await stack.post(cart)).status_code == 202
    profile = await stack.wait_for_profile("id", "shop-nina")
    waiting = await message(stack, "abandoned-cart", profile.id, "scheduled")
    assert waiting.scheduled_for == T0 + timedelta(hours=2)

    clock.advance(timedelta(hours=2))

    mail = await email_to(smtp, "nina@example.com")
    assert mail["Subject"] == "You left something in your cart"
    body = mail.get_body(("plain",))
    assert body is not None
    assert "3400 in all" in body.get_content()
    await message(stack, "abandoned-cart", profile.id, "sent")


def _buyer_in_arm(campaign: str, share: float, *, held_out: bool) -> str:
    """A profile id the campaign's deterministic holdout draw puts in the arm asked for."""
    for n in range(1000):
        candidate = str(uuid.uuid5(uuid.NAMESPACE_URL, f"e2e-buyer-{n}"))
        if in_holdout(campaign, candidate, share) == held_out:
            return candidate
    raise AssertionError("no such buyer in 1000 draws")


async def test_a_buyer_in_the_holdout_gets_nothing_and_is_recorded_as_held_out(
    stack: RunningStack, smtp: SmtpServer
) -> None:
    await switch_on(stack, "welcome-lead", holdout=0.5)
    control = _buyer_in_arm("welcome-lead", 0.5, held_out=True)
    treated = _buyer_in_arm("welcome-lead", 0.5, held_out=False)
    await stack.post(
        identify(
            "control-signs-up", T0, customer={"profile_id": control, "email": "c@example.com"}
        ),
        identify(
            "treated-signs-up", T0, customer={"profile_id": treated, "email": "t@example.com"}
        ),
    )

    await email_to(smtp, "t@example.com")
    held = await message(stack, "welcome-lead", control, "holdout")
    assert (held.reason, held.holdout, held.sent_at) == ("holdout", True, None)
    await message(stack, "welcome-lead", treated, "sent")
    assert [m["To"] for m in smtp.mailbox.messages] == ["t@example.com"]
