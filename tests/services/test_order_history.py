"""The segmenter keeps every purchase it applies in the order history, with the batch
that applies it: the full history model validation reads, beyond the profile's latest
moments. A buyer known twice and then linked has one history; a purchase delivered
again is kept once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from services.segmenter.handlers import Segmenter
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.engine import open_store
from shared.adapters.store.orders import SqlOrderHistory
from shared.adapters.store.sql import SqlStore
from shared.domain.segments import BUILTIN_SEGMENTS
from shared.ports.bus import Record
from tests.conftest import T0
from tests.e2e.stacks import identify, purchase

CARD = {"loyalty_card": "LC-0001"}
TOKEN = {"bank_card_token": "tok-olga"}


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[SqlStore]:
    found = open_store(sqlite_url)
    yield found
    await found.close()


def _records(*events: dict[str, Any]) -> list[Record]:
    return [Record("events", 0, n, None, orjson.dumps(e)) for n, e in enumerate(events)]


async def test_every_applied_purchase_is_in_the_buyers_order_history_once(
    store: SqlStore,
) -> None:
    clock = SimulatedClock(T0 + timedelta(days=10))
    segmenter = Segmenter(store, clock, BUILTIN_SEGMENTS, "segment-changes")
    web = purchase("web-1", T0, customer=CARD, total="1000.00")
    till = purchase("pos-1", T0 + timedelta(days=2), customer=TOKEN, total="500.00")
    await segmenter.apply_events(_records(web, till))
    await segmenter.apply_events(_records(web))  # delivered again
    await segmenter.apply_events(
        _records(identify("link", T0 + timedelta(days=3), customer={**CARD, **TOKEN}))
    )
    history = await SqlOrderHistory(store.engine).page(after=None, limit=10)
    assert len(history) == 1
    assert history[0].placed_at == (T0, T0 + timedelta(days=2))
    assert history[0].totals == (Decimal("1000.00"), Decimal("500.00"))
