"""Refunds the segmenter refuses: for an order nudge never saw (above the configured cap)
or above what is left of its order. Such a refund goes to the dead-letter topic with its
reason and changes nothing; refunds within their order, also one of a buyer merged since,
are applied."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.tools.embedded import Pipeline
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.clock import SimulatedClock
from shared.domain.profile import Profile
from shared.settings import Settings
from tests.conftest import T0
from tests.e2e.stacks import identify, purchase

ANNA = {"id": "c-anna"}


def refund(event_id: str, order_id: str, amount: str, customer: dict[str, str]) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "refund",
        "occurred_at": T0.isoformat(),
        "customer": customer,
        "data": {"order_id": order_id, "amount": amount, "currency": "RUB"},
    }


async def _find(pipeline: Pipeline, kind: str, value: str) -> Profile | None:
    async with pipeline.runtime.store.unit_of_work() as uow:
        return await uow.profiles.find(kind, value)


async def _buyer(pipeline: Pipeline, kind: str = "id", value: str = "c-anna") -> Profile:
    found = await _find(pipeline, kind, value)
    assert found is not None
    return found


def _dead_letters(pipeline: Pipeline) -> list[str]:
    bus = pipeline.runtime.bus
    assert isinstance(bus, MemoryBus)
    topic = pipeline.runtime.settings.topic("events") + ".dlq"
    return [dict(r.headers)["error"].decode() for r in bus.records(topic)]


@pytest.fixture(autouse=True)
def _after_the_orders(clock: SimulatedClock) -> None:
    clock.set(T0 + timedelta(hours=1))


async def test_a_large_refund_for_an_unknown_order_never_makes_net_revenue_negative(
    pipeline: Pipeline,
) -> None:
    await pipeline.post_events([purchase("p-1", T0, customer=ANNA, total="1000.00")])
    await pipeline.settle()

    await pipeline.post_events([refund("r-1", "order-never-seen", "100000.00", ANNA)])
    await pipeline.settle()

    anna = await _buyer(pipeline)
    assert anna.net_revenue == Decimal("1000.00")
    assert anna.refunds_count == 0
    (reason,) = _dead_letters(pipeline)
    assert "never saw" in reason


async def test_refunds_add_up_to_at_most_their_order_and_the_rest_of_the_batch_applies(
    pipeline: Pipeline,
) -> None:
    await pipeline.post_events([purchase("p-1", T0, customer=ANNA, total="1000.00")])
    await pipeline.settle()

    await pipeline.post_events(
        [
            refund("r-1", "order-p-1", "600.00", ANNA),
            refund("r-2", "order-p-1", "600.00", ANNA),
            refund("r-3", "order-p-1", "400.00", ANNA),
        ]
    )
    await pipeline.settle()

    anna = await _buyer(pipeline)
    assert (anna.refunds_count, anna.net_revenue) == (2, Decimal("0.00"))
    (reason,) = _dead_letters(pipeline)
    assert "more than the 400.00 left of its 1000.00" in reason


async def test_a_refund_of_another_buyers_order_is_refused(pipeline: Pipeline) -> None:
    await pipeline.post_events([purchase("p-1", T0, customer=ANNA, total="1000.00")])
    await pipeline.settle()

    await pipeline.post_events([refund("r-1", "order-p-1", "10.00", {"id": "c-boris"})])
    await pipeline.settle()

    assert "another buyer's" in _dead_letters(pipeline)[0]
    assert await _find(pipeline, "id", "c-boris") is None, "never half applied"
    assert (await _buyer(pipeline)).net_revenue == Decimal("1000.00")


async def test_a_refund_for_an_order_of_a_buyer_merged_since_is_applied(
    pipeline: Pipeline,
) -> None:
    """Anna bought at the till by her card token, then an identify linked the token to her
    loyalty card: the refund names her by the card, the order was placed by the token."""
    card, token = {"loyalty_card": "LC-7"}, {"bank_card_token": "tok-7"}
    await pipeline.post_events(
        [
            purchase("web-1", T0, customer=card, total="300.00"),
            purchase("pos-1", T0, customer=token, total="700.00"),
        ]
    )
    await pipeline.settle()
    await pipeline.post_events([identify("link", T0, customer={**card, **token})])
    await pipeline.settle()

    await pipeline.post_events([refund("r-1", "order-pos-1", "700.00", card)])
    await pipeline.settle()

    assert _dead_letters(pipeline) == []
    anna = await _buyer(pipeline, "loyalty_card", "LC-7")
    assert (anna.revenue_total, anna.net_revenue) == (Decimal("1000.00"), Decimal("300.00"))


async def test_a_refund_in_the_batch_that_links_the_buyer_is_applied(pipeline: Pipeline) -> None:
    """The identify linking the till's token to the card comes in one batch with the refund
    of the till's order: the merge of that batch makes the two one buyer already."""
    card, token = {"loyalty_card": "LC-8"}, {"bank_card_token": "tok-8"}
    await pipeline.post_events([purchase("pos-1", T0, customer=token, total="700.00")])
    await pipeline.settle()

    await pipeline.post_events(
        [
            identify("link", T0, customer={**card, **token}),
            refund("r-1", "order-pos-1", "200.00", card),
        ]
    )
    await pipeline.settle()

    assert _dead_letters(pipeline) == []
    assert (await _buyer(pipeline, "loyalty_card", "LC-8")).net_revenue == Decimal("500.00")


class TestUnseenOrderCap:
    @pytest.fixture
    def pipeline_settings(self, embedded_settings: Settings) -> Settings:
        return embedded_settings.model_copy(update={"unseen_order_refund_cap": Decimal("50")})

    async def test_an_unseen_order_may_be_refunded_up_to_the_cap(self, pipeline: Pipeline) -> None:
        await pipeline.post_events(
            [
                refund("r-1", "order-before-nudge", "30.00", ANNA),
                refund("r-2", "order-before-nudge", "20.00", ANNA),
                refund("r-3", "order-before-nudge", "0.01", ANNA),
            ]
        )
        await pipeline.settle()

        assert (await _buyer(pipeline)).refunds_total == Decimal("50.00")
        (reason,) = _dead_letters(pipeline)
        assert "NUDGE_UNSEEN_ORDER_REFUND_CAP" in reason
