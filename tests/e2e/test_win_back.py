"""A purchase, thirty quiet days, one win-back email: on both stacks, through real HTTP
and a real SMTP server, and never a second email for the same trigger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from shared.adapters.clock import SimulatedClock
from shared.adapters.providers.email import SmtpProvider
from shared.adapters.store import schema
from shared.codec import decode_change
from shared.domain.segments import MembershipChange
from shared.settings import Settings
from tests.conftest import T0
from tests.e2e.stacks import RunningStack, identify, purchase, running_stack
from tests.support.lag import consumed_everything
from tests.support.smtp import SmtpServer
from tests.support.waiting import eventually

ANNA = {"id": "shop-anna", "email": "anna@example.com"}


@pytest.fixture(
    params=["embedded", pytest.param("production", marks=[pytest.mark.kafka, pytest.mark.postgres])]
)
def settings(request: pytest.FixtureRequest) -> Settings:
    name = "embedded_settings" if request.param == "embedded" else "kafka_settings"
    settings: Settings = request.getfixturevalue(name)
    return settings


@pytest.fixture
async def stack(
    settings: Settings, clock: SimulatedClock, smtp: SmtpServer
) -> AsyncIterator[RunningStack]:
    email = SmtpProvider(smtp.host, smtp.port, "shop@nudge.local", timeout=5)
    async with running_stack(settings, clock, email) as stack:
        yield stack


async def _messages(stack: RunningStack) -> list[tuple[str, str]]:
    async with stack.runtime.store.unit_of_work() as uow:
        return [(m.campaign, m.status) for m in await uow.messages.all()]


async def test_win_back_email_arrives_once_thirty_days_after_the_last_order(
    stack: RunningStack, clock: SimulatedClock, smtp: SmtpServer
) -> None:
    order = purchase("anna-order-1", T0, customer=ANNA)
    response = await stack.post(order)
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 0}
    await stack.wait_for_profile("id", "shop-anna", orders_count=1)

    clock.advance(timedelta(days=29, hours=23))
    await stack.wait_for_profile("id", "shop-anna", orders_count=1)
    assert smtp.mailbox.count() == 0

    clock.advance(timedelta(hours=1))

    async def one_email() -> bool:
        return smtp.mailbox.count() >= 1

    await eventually(one_email, what="the win-back email")
    (mail,) = smtp.mailbox.messages
    assert mail["To"] == "anna@example.com"
    assert "We miss you" in mail["Subject"]

    assert (await stack.post(order)).status_code == 202
    await stack.restart()
    await stack.post(
        identify(
            "anna-identify", clock.now(), customer={"id": "shop-anna", "phone": "+79161234567"}
        )
    )
    await stack.wait_for_profile("id", "shop-anna", phone="+79161234567", orders_count=1)

    assert smtp.mailbox.count() == 1
    assert await _messages(stack) == [("win-back-30d", "sent")]


async def test_a_segment_change_delivered_again_after_a_restart_sends_nothing_more(
    stack: RunningStack, clock: SimulatedClock, smtp: SmtpServer
) -> None:
    await stack.post(purchase("anna-order-1", T0, customer=ANNA))
    await stack.wait_for_profile("id", "shop-anna", orders_count=1)
    clock.advance(timedelta(days=30))

    async def one_email() -> bool:
        return smtp.mailbox.count() >= 1

    await eventually(one_email, what="the win-back email")
    async with stack.runtime.store.engine.connect() as conn:
        rows = (await conn.execute(select(schema.outbox.c.key, schema.outbox.c.value))).all()
    ((key, value),) = [(k, v) for k, v in rows if _is_win_back_entry(v)]
    topic = stack.runtime.settings.topic("segment-changes")
    publisher = stack.runtime.bus.publisher()
    await publisher.publish(topic, [(key, value), (key, value)])
    await publisher.close()
    await stack.restart()

    group = stack.runtime.settings.group("dispatcher")

    async def caught_up() -> bool:
        return await consumed_everything(stack.runtime.bus, group, topic)

    await eventually(caught_up, what="the dispatcher to consume the repeated change")
    assert smtp.mailbox.count() == 1
    assert await _messages(stack) == [("win-back-30d", "sent")]


def _is_win_back_entry(value: bytes) -> bool:
    change = decode_change(value)
    return isinstance(change, MembershipChange) and change.segment == "no-order-30d"
