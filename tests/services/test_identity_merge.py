"""A buyer known twice (a loyalty card online, a bank card token at the till) becomes one
buyer when an identify event links the two: orders counted once, one message per stay."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from services.bootstrap import token_hmac_key
from services.tools.embedded import Pipeline
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.clock import SimulatedClock
from shared.adapters.store import schema
from shared.codec import decode_change
from shared.domain.identifiers import keyed_token_hash
from shared.domain.profile import ProfileMerged
from tests.conftest import T0
from tests.e2e.stacks import identify, purchase

CARD = {"loyalty_card": "LC-0001", "email": "olga@example.com"}
TOKEN = {"bank_card_token": "tok-olga"}


def _hashed(token: str, pipeline: Pipeline) -> str:
    """A bank card token as ingest keeps it: its keyed hash."""
    return keyed_token_hash(token, token_hmac_key(pipeline.runtime.settings))


async def _messages(pipeline: Pipeline) -> list[tuple[str, str]]:
    async with pipeline.runtime.store.unit_of_work() as uow:
        return sorted((m.campaign, m.status) for m in await uow.messages.all())


async def test_a_till_purchase_by_token_joins_the_known_buyer_once_identified(
    pipeline: Pipeline, clock: SimulatedClock
) -> None:
    clock.set(T0 + timedelta(days=2))  # events are posted once they happened
    await pipeline.post_events(
        [
            purchase("web-1", T0, customer=CARD, total="1000.00"),
            purchase("pos-1", T0 + timedelta(days=2), customer=TOKEN, total="500.00"),
        ]
    )
    await pipeline.settle()
    clock.set(T0 + timedelta(days=3))
    await pipeline.post_events(
        [identify("link", T0 + timedelta(days=3), customer={**CARD, **TOKEN})]
    )
    await pipeline.settle()

    async with pipeline.runtime.store.unit_of_work() as uow:
        by_card = await uow.profiles.find("loyalty_card", "LC-0001")
        by_token = await uow.profiles.find("bank_card_token", _hashed("tok-olga", pipeline))
    assert by_card is not None
    assert by_token is not None
    assert by_token.id == by_card.id
    assert by_card.orders_count == 2
    assert str(by_card.revenue_total) == "1500.00"
    assert by_card.first_order_at == T0
    assert by_card.last_order_at == T0 + timedelta(days=2)
    merges = [
        c
        for c in map(decode_change, (r.value for r in _changes(pipeline)))
        if isinstance(c, ProfileMerged)
    ]
    assert [m.survivor for m in merges] == [by_card.id]


async def test_a_merge_never_sends_a_second_message_for_the_same_stay(
    pipeline: Pipeline, clock: SimulatedClock
) -> None:
    await pipeline.post_events(
        [
            purchase("web-1", T0, customer=CARD),
            purchase("pos-1", T0, customer=TOKEN),
        ]
    )
    await pipeline.settle()
    clock.advance(timedelta(days=30))
    await pipeline.settle()
    assert await _messages(pipeline) == [
        ("win-back-30d", "no_address"),  # the token alone has no address
        ("win-back-30d", "sent"),
    ]
    entered = [
        r for r in _changes(pipeline) if b'"entered"' in r.value and b'"no-order-30d"' in r.value
    ]
    assert len(entered) == 2

    await pipeline.post_events([identify("link", clock.now(), customer={**CARD, **TOKEN})])
    await pipeline.settle()
    # Both entries are delivered again (a replay, a restart): still one message each.
    publisher = pipeline.runtime.bus.publisher()
    topic = pipeline.runtime.settings.topic("segment-changes")
    await publisher.publish(topic, [(r.key, r.value) for r in entered])
    await pipeline.settle()

    assert await _messages(pipeline) == [
        ("win-back-30d", "no_address"),
        ("win-back-30d", "sent"),
    ]
    async with pipeline.runtime.store.engine.connect() as conn:
        owners = set((await conn.execute(select(schema.messages.c.profile_id))).scalars())
    assert len(owners) == 1  # the history moved to the survivor


def _changes(pipeline: Pipeline) -> list:  # type: ignore[type-arg]
    bus = pipeline.runtime.bus
    assert isinstance(bus, MemoryBus)
    return bus.records(pipeline.runtime.settings.topic("segment-changes"))
