"""The whole pipeline, embedded (on SQLite and PostgreSQL): a send interrupted by the
dispatcher's death, and a channel that refuses the buyer's address.

The dispatcher "dies" inside the provider call: the provider has taken the
message, and the outcome is never recorded. After the in-flight timeout the
message's guard row wakes: an SMS goes again with the same idempotency key (the
provider delivers one per key), an email is not sent twice (SMTP has no key) and
the row says the outcome is unknown. A permanent refusal on the first channel
falls back to the next.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest

from services.tools.embedded import Pipeline
from shared.adapters.clock import SimulatedClock
from shared.adapters.providers.email import EmlFolderProvider
from shared.adapters.providers.folder import SmsFolderProvider
from shared.domain.campaigns import parse_campaign
from shared.errors import ProviderRejected
from shared.ports.providers import Provider, SendReceipt
from shared.ports.store import MessageRecord
from shared.settings import Settings
from tests.e2e.stacks import purchase
from tests.support.campaign_pipeline import STORES, on_store, pipeline_with

ANNA = {"id": "shop-anna", "email": "anna@example.com", "phone": "+79161234567"}
M = TypeVar("M")


class Killed(BaseException):
    """The dispatcher process dies: nothing after this line runs."""


class Recording(Generic[M]):
    """A provider that keeps every idempotency key it is handed, and can fail on cue."""

    def __init__(self, inner: Provider[M], *, fail: BaseException | None = None) -> None:
        self.inner = inner
        self.keys: list[str] = []
        self.fail = fail

    async def send(self, message: M) -> SendReceipt:
        self.keys.append(message.idempotency_key)  # type: ignore[attr-defined]
        if isinstance(self.fail, ProviderRejected):
            raise self.fail
        receipt = await self.inner.send(message)
        if self.fail is not None:
            fail, self.fail = self.fail, None
            raise fail  # the provider took it; its answer is lost with the process
        return receipt


@pytest.fixture
def campaign(request: pytest.FixtureRequest) -> dict[str, Any]:
    channels = request.param
    templates = {"sms": "pre-churn-sms", "email": "win-back-email"}
    return {
        "key": "rescue",
        "name": "rescue",
        "status": "active",
        "trigger": {"segment": "no-order-30d", "on": "entered"},
        "channels": channels,
        "templates": {c: templates[c] for c in channels},
    }


@pytest.fixture
async def pipeline(
    embedded_settings: Settings,
    clock: SimulatedClock,
    tmp_path: Path,
    campaign: dict[str, Any],
    sms: Recording[Any],
    email: Recording[Any],
) -> AsyncIterator[Pipeline]:
    campaigns = [parse_campaign(campaign)]
    async for pipeline in pipeline_with(embedded_settings, clock, tmp_path / "mail", campaigns):
        pipeline.dispatcher.providers.sms = sms
        pipeline.dispatcher.providers.email = email
        yield pipeline


@pytest.fixture
def sms(tmp_path: Path) -> Recording[Any]:
    return Recording(SmsFolderProvider(tmp_path / "sms", "SHOP"))


@pytest.fixture
def email(tmp_path: Path) -> Recording[Any]:
    return Recording(EmlFolderProvider(tmp_path / "mail", "shop@nudge.local"))


async def _enter_segment(pipeline: Pipeline, clock: SimulatedClock) -> None:
    """An order, then 30 days without one: Anna enters ``no-order-30d``."""
    await pipeline.post_events([purchase("order-1", clock.now(), customer=ANNA)])
    await pipeline.settle()
    clock.advance(timedelta(days=30))
    await pipeline.settle()


async def _only_message(pipeline: Pipeline) -> MessageRecord:
    async with pipeline.runtime.store.unit_of_work() as uow:
        (message,) = await uow.messages.all()
    return message


@pytest.mark.parametrize("campaign", [["sms"]], indirect=True)
async def test_an_sms_lost_in_a_crash_goes_again_with_the_same_key_and_arrives_once(
    pipeline: Pipeline, clock: SimulatedClock, tmp_path: Path, sms: Recording[Any]
) -> None:
    sms.fail = Killed()
    with pytest.raises(Killed):
        await _enter_segment(pipeline, clock)
    in_flight = await _only_message(pipeline)
    assert (in_flight.status, in_flight.channel) == ("sending", "sms")

    await pipeline.settle()  # the change comes again: the row is there, nothing is sent
    assert len(sms.keys) == 1
    clock.advance(timedelta(minutes=10))  # the in-flight timeout
    await pipeline.settle()

    sent = await _only_message(pipeline)
    assert sms.keys == [in_flight.key, in_flight.key]
    assert sent.status == "sent"
    assert [p.stem for p in (tmp_path / "sms").glob("*.json")] == [in_flight.key]
    async with pipeline.runtime.store.unit_of_work() as uow:
        assert await uow.schedule.count_pending() == 0


@pytest.mark.parametrize("campaign", [["email"]], indirect=True)
async def test_an_email_lost_in_a_crash_is_not_sent_twice(
    pipeline: Pipeline, clock: SimulatedClock, email: Recording[Any]
) -> None:
    email.fail = Killed()
    with pytest.raises(Killed):
        await _enter_segment(pipeline, clock)
    clock.advance(timedelta(minutes=10))
    await pipeline.settle()

    message = await _only_message(pipeline)
    assert len(email.keys) == 1
    assert (message.status, message.reason) == ("sending", "outcome_unknown")
    async with pipeline.runtime.store.unit_of_work() as uow:
        assert await uow.schedule.count_pending() == 0


@pytest.mark.parametrize("campaign", [["sms", "email"]], indirect=True)
async def test_an_sms_refused_for_good_falls_back_to_email(
    pipeline: Pipeline, clock: SimulatedClock, sms: Recording[Any], email: Recording[Any]
) -> None:
    sms.fail = ProviderRejected("21211: invalid 'To' phone number")
    await _enter_segment(pipeline, clock)

    message = await _only_message(pipeline)
    assert (message.status, message.channel) == ("sent", "email")
    assert message.error is not None
    assert "sms rejected" in message.error
    assert sms.keys == email.keys == [message.key]


@pytest.fixture(params=STORES)
def embedded_settings(request: pytest.FixtureRequest, embedded_settings: Settings) -> Settings:
    return on_store(request, embedded_settings)
