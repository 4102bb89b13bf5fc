"""A buyer known twice (a loyalty card online, a bank card token at the till) becomes one
buyer when an identify event links the two: orders counted once, one message per stay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from services.bootstrap import token_hmac_key
from services.segmenter.handlers import Segmenter
from services.tools.embedded import Pipeline
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.clock import SimulatedClock
from shared.adapters.store import schema
from shared.adapters.store.engine import open_store
from shared.adapters.store.sql import SqlStore
from shared.codec import decode_change
from shared.domain.identifiers import keyed_token_hash
from shared.domain.profile import ProfileMerged
from shared.domain.segments import Segment
from shared.ports.bus import Record
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


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[SqlStore]:
    found = open_store(sqlite_url)
    yield found
    await found.close()


async def test_merges_chained_in_one_batch_end_in_one_buyer_with_every_stay(
    store: SqlStore,
) -> None:
    """One batch links a token to a card, then the card to an id: the token's buyer is
    folded into the card's and that one into the id's, each stay carried with its entry
    (no second message for it), the absorbed in no segment, both merges announced."""
    segments = [
        Segment.from_definition("women", "Women", {"trait": "gender", "eq": "female"}),
        Segment.from_definition("central", "Central", {"trait": "region", "eq": "CFD"}),
    ]
    by_id = {"id": "c-1"}
    clock = SimulatedClock(T0)
    segmenter = Segmenter(store, clock, segments, "segment-changes")
    for n, (customer, traits) in enumerate(
        ((CARD, {"gender": "female"}), (TOKEN, {"region": "CFD"}), (by_id, {}))
    ):
        clock.set(T0 + timedelta(days=n))
        await segmenter.apply_events(
            _records(
                {**identify(f"who-{n}", clock.now(), customer=customer), "data": {"traits": traits}}
            )
        )
    async with store.unit_of_work() as uow:
        card, token, known = (
            await uow.profiles.resolve([CARD, TOKEN, by_id], clock.now())
        ).profiles
        before = await uow.memberships.of([card.id, token.id, known.id])
    assert before == {
        card.id: {"women": T0},
        token.id: {"central": T0 + timedelta(days=1)},
        known.id: {},
    }

    clock.advance(timedelta(days=5))
    await segmenter.apply_events(
        _records(
            identify("link-1", clock.now(), customer={**CARD, **TOKEN}),
            identify("link-2", clock.now(), customer={**by_id, **CARD}),
        )
    )
    async with store.unit_of_work() as uow:
        found = await uow.profiles.find_many([("loyalty_card", "LC-0001"), *TOKEN.items()])
        after = await uow.memberships.of([card.id, token.id, known.id])
        announced = [decode_change(r.value) for r in await uow.outbox.claim(1000)]
    assert {p.id for p in found.values()} == {known.id}
    assert after == {
        card.id: {},
        token.id: {},
        known.id: {"women": T0, "central": T0 + timedelta(days=1)},
    }
    merges = [(c.absorbed, c.survivor) for c in announced if isinstance(c, ProfileMerged)]
    assert merges == [(token.id, card.id), (card.id, known.id)]


def _records(*events: dict[str, Any]) -> list[Record]:
    return [Record("events", 0, n, None, orjson.dumps(e)) for n, e in enumerate(events)]
