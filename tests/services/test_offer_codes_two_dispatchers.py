"""Two dispatcher replicas on one PostgreSQL database and one bus, sending a campaign whose
offer has fewer codes than buyers: no code goes to two messages, every code sent is one of
the pool's, and the buyers left over are recorded ``no_code``."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from services.bootstrap import bootstrap
from services.tools.embedded import Pipeline
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.clock import SimulatedClock
from shared.adapters.providers.email import EmlFolderProvider
from shared.adapters.store import schema as t
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.offers import SqlOffers
from shared.domain.offers import parse_offer
from shared.ports.offers import PoolCounts
from shared.settings import Settings
from tests.conftest import T0
from tests.e2e.stacks import purchase
from tests.services.test_offer_codes import POOL_OFFER, TEMPLATE, THANKS

pytestmark = pytest.mark.postgres

BUYERS = 40
CODES = 30


@pytest.fixture
async def replicas(
    embedded_settings: Settings, postgres_url: str, clock: SimulatedClock, tmp_path: Path
) -> AsyncIterator[tuple[Pipeline, Pipeline]]:
    """Two pipelines (ingest, segmenter, dispatcher) on one database and one bus: their
    consumers share each group's partitions, as two replicas on Kafka do."""
    settings = embedded_settings.model_copy(update={"database_url": postgres_url})
    bus = MemoryBus(partitions=6)
    runtimes = [
        await bootstrap(
            settings,
            clock=clock,
            bus=bus,
            email=EmlFolderProvider(tmp_path / "mail", "shop@nudge.local"),
        )
        for _ in range(2)
    ]
    async with Pipeline(runtimes[0]) as first, Pipeline(runtimes[1]) as second:
        yield first, second
    for runtime in runtimes:
        await runtime.close()


async def test_two_dispatchers_never_give_one_code_to_two_messages(
    replicas: tuple[Pipeline, Pipeline], tmp_path: Path
) -> None:
    first, second = replicas
    engine = first.runtime.store.engine
    definitions = SqlDefinitions(engine)
    offers = SqlOffers(engine, validate=lambda k, d: parse_offer(d, key=k))
    await definitions.templates.put(
        "first-order-code", channel="email", content=TEMPLATE, expected_version=None
    )
    await definitions.campaigns.put(
        "first-order-code", definition=THANKS, status="active", expected_version=None
    )
    await offers.put("second-order-10", definition=POOL_OFFER, expected_version=None)
    pool = [f"CODE-{n:03}" for n in range(CODES)]
    await offers.add_codes("second-order-10", pool, T0)
    buyers = [{"id": f"buyer-{n}", "email": f"buyer{n}@shop.ru"} for n in range(BUYERS)]

    await second.post_events(  # the second replica's key is the one in force
        [
            purchase(f"p{n}", T0 - timedelta(minutes=BUYERS - n), customer=buyer)
            for n, buyer in enumerate(buyers)
        ]
    )
    await asyncio.gather(first.settle(), second.settle())
    await asyncio.gather(first.settle(), second.settle())

    mailed = [
        re.search(r"^Subject: Your code (\S+)$", eml.read_text(), re.MULTILINE)
        for eml in (tmp_path / "mail").glob("*.eml")
    ]
    codes = [m.group(1) for m in mailed if m is not None]
    assert len(codes) == CODES
    assert sorted(codes) == pool  # each of the pool's codes, none twice
    m, c = t.messages, t.offer_codes
    async with engine.connect() as conn:
        statuses = [r.status for r in await conn.execute(select(m.c.status))]
        carried = list(
            await conn.execute(select(c.c.code, m.c.status).join(m, m.c.key == c.c.message_key))
        )
    assert sorted(statuses) == ["no_code"] * (BUYERS - CODES) + ["sent"] * CODES
    assert len(carried) == CODES
    assert {status for _, status in carried} == {"sent"}
    assert await offers.pool("second-order-10") == PoolCounts(free=0, issued=CODES)
    assert first.dispatcher is not second.dispatcher
