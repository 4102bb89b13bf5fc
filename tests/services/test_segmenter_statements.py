"""A batch of events is applied in a fixed, small number of statements, on the embedded
SQLite and on PostgreSQL: the segmenter reads and writes the batch set-wise (the dedupe
rows, the buyers, their memberships netted per buyer and segment, the outbox rows, the
profiles that changed) whatever the batch's size (statements counted, never timed)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import event

from services.segmenter.handlers import Segmenter
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.engine import open_store
from shared.adapters.store.sql import SqlStore
from shared.domain.segments import BUILTIN_SEGMENTS
from shared.ports.bus import Record
from shared.synthetic import synthetic_events

START = datetime(2026, 1, 5, tzinfo=UTC)
NOW = START + timedelta(days=91)
MERGES = 2
"""Identity merges in a batch: two buyers each known twice (an id, an email) linked."""
MOST_STATEMENTS = 21
"""Per batch: the dedupe rows claimed, the identifiers read, the new profiles and their
identifiers written, the owners read again (a concurrent writer may have won), the
buyers read and locked, the balances of their orders read and locked; the merges'
memberships read, their identifiers, messages, scheduled sends and memberships moved,
their memberships written and their outbox rows; the buyers' memberships, the
memberships removed and added, the outbox rows, the changed profiles, the orders'
balances (refund checks) and the placed orders (the history model validation fits on).
Whatever the batch's size, and however many merges it holds."""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return sqlite_url


@pytest.fixture
async def store(url: str) -> AsyncIterator[SqlStore]:
    found = open_store(url)
    yield found
    await found.close()


def _batch(prefix: str, size: int, merges: int = MERGES) -> list[Record]:
    """``size`` events of one shop's buyers: purchases (some buyers several), one identify
    with traits for each buyer, and ``merges`` buyers known twice (an id at one order, an
    email at another) whom an identify links."""
    events: list[dict[str, Any]] = []
    for n in range(merges):
        at = (START + timedelta(days=n)).isoformat()
        customer = {"id": f"{prefix}-twice-{n}", "email": f"{prefix}-twice-{n}@example.com"}
        for half, name in enumerate(("id", "email")):
            events.append(_purchase(f"{prefix}-t{n}-{half}", at, {name: customer[name]}))
        events.append({**_identify(f"{prefix}-link-{n}", at, customer), "data": {}})
    buyers: set[str] = set()
    for purchase in synthetic_events(size, 90, 3, START):
        if len(events) >= size:
            break
        customer_id = f"{prefix}-{purchase['customer']['id']}"
        events.append(
            {
                **purchase,
                "event_id": f"{prefix}-{purchase['event_id']}",
                "customer": {"id": customer_id},
            }
        )
        if customer_id not in buyers and len(events) < size:
            buyers.add(customer_id)
            events.append(
                _identify(f"{prefix}-i-{customer_id}", purchase["occurred_at"], {"id": customer_id})
            )
    assert len(events) == size
    return [Record("events", 0, n, None, orjson.dumps(e)) for n, e in enumerate(events)]


def _purchase(event_id: str, at: str, customer: dict[str, str]) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "purchase",
        "occurred_at": at,
        "customer": customer,
        "data": {
            "order_id": event_id,
            "total": "1200.00",
            "currency": "RUB",
            "items": [{"sku": "s-1", "category": "pet-food", "quantity": 1, "price": "1200.00"}],
        },
    }


def _identify(event_id: str, at: str, customer: dict[str, str]) -> dict[str, Any]:
    traits = {"gender": "female", "region": "CFD"}
    return {
        "event_id": event_id,
        "type": "identify",
        "occurred_at": at,
        "customer": customer,
        "data": {"traits": traits},
    }


@contextmanager
def _counted(store: SqlStore) -> Iterator[list[str]]:
    """The statements sent on ``store``'s engine meanwhile (an executemany counts once)."""
    sent: list[str] = []

    def statement(*args: Any) -> None:
        sent.append(args[2])

    engine = store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", statement)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", statement)


def _orders_again(first: list[Record]) -> list[Record]:
    """A purchase yesterday by every buyer of ``first``: the lapsed come back (they leave
    ``no-order-30d`` and move lifecycle stage), the others buy once more."""
    events = [orjson.loads(r.value) for r in first]
    customers = {tuple(sorted(e["customer"].items())): e["customer"] for e in events}
    at = (NOW - timedelta(days=1)).isoformat()
    again = [
        _purchase(f"again-{n}-{events[0]['event_id']}", at, customer)
        for n, customer in enumerate(customers.values())
    ]
    return [Record("events", 0, n, None, orjson.dumps(e)) for n, e in enumerate(again)]


async def test_a_batch_of_events_is_applied_in_a_fixed_number_of_statements(
    store: SqlStore,
) -> None:
    segmenter = Segmenter(store, SimulatedClock(NOW), BUILTIN_SEGMENTS, "segment-changes")
    await segmenter.apply_events(_batch("warm", 20))
    counts: dict[str, int] = {}
    for size, merges in ((50, MERGES), (500, MERGES), (500, 5 * MERGES)):
        first = _batch(f"b{size}-{merges}", size, merges)
        with _counted(store) as sent:
            await segmenter.apply_events(first)
        counts[f"new {size} ({merges} merges)"] = len(sent)
        again = _orders_again(first)
        with _counted(store) as sent:
            await segmenter.apply_events(again)
        counts[f"again {size} ({merges} merges)"] = len(sent)
    async with store.unit_of_work() as uow:
        twice = await uow.profiles.find("email", "b500-10-twice-9@example.com")
        members = await uow.memberships.of([twice.id] if twice else [])
    assert twice is not None
    assert twice.orders_count == 5, "two orders before the link, one again by each name"
    assert "no-order-30d" not in members[twice.id], "bought yesterday"

    for kind in ("new", "again"):
        assert len({n for name, n in counts.items() if name.startswith(kind)}) == 1, counts
    assert max(counts.values()) <= MOST_STATEMENTS, counts


async def test_a_batch_of_timers_is_fired_in_a_fixed_number_of_statements(
    store: SqlStore,
) -> None:
    clock = SimulatedClock(NOW)
    segmenter = Segmenter(store, clock, BUILTIN_SEGMENTS, "segment-changes")
    await segmenter.apply_events(_batch("b", 500))
    clock.advance(timedelta(days=400))  # every buyer's timer due: they drift to churned
    counts = []
    for limit in (20, 200):
        with _counted(store) as sent:
            assert await segmenter.fire_timers(limit) == limit
        counts.append(len(sent))
    assert counts[0] == counts[1], counts
    # the due buyers locked, read, their memberships read, removed and added, the
    # outbox rows, the profiles
    assert counts[1] <= 7, counts
