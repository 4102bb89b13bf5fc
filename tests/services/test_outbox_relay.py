"""The segmenter's outbox relay: one publish per pass, in order, marked only once acknowledged."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from services.segmenter.handlers import relay_outbox
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.engine import open_store
from shared.adapters.store.sql import SqlStore
from shared.errors import BusUnavailable
from shared.ports.bus import Publisher
from shared.ports.store import OutgoingRecord
from tests.conftest import T0

CHANGES, OTHER = "nudge.segment-changes", "nudge.other"


class Counting:
    """A publisher that counts its calls, and fails the first ``failing`` of them."""

    def __init__(self, publisher: Publisher, failing: int = 0) -> None:
        self.publisher = publisher
        self.failing = failing
        self.calls = 0

    async def publish_many(
        self,
        batches: Sequence[tuple[str, Sequence[tuple[bytes | None, bytes]]]],
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        self.calls += 1
        if self.calls <= self.failing:
            raise BusUnavailable("no acknowledgement in time")
        await self.publisher.publish_many(batches, headers)


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[SqlStore]:
    found = open_store(sqlite_url)
    yield found
    await found.close()


async def outbox(store: SqlStore, records: Sequence[OutgoingRecord]) -> None:
    async with store.unit_of_work() as uow:
        await uow.outbox.add(records, T0)
        await uow.commit()


ROWS = [
    *(OutgoingRecord(CHANGES, f"buyer-{n % 3}".encode(), f"a{n}".encode()) for n in range(30)),
    OutgoingRecord(OTHER, b"buyer-1", b"elsewhere"),
    *(OutgoingRecord(CHANGES, f"buyer-{n % 3}".encode(), f"b{n}".encode()) for n in range(30)),
]


async def test_a_relay_pass_publishes_everything_it_claimed_in_one_call_in_order(
    store: SqlStore, clock: SimulatedClock
) -> None:
    await outbox(store, ROWS)
    bus = MemoryBus(partitions=1)
    publisher = Counting(bus.publisher())
    assert await relay_outbox(store, publisher, clock) == 61  # type: ignore[arg-type]
    assert publisher.calls == 1
    assert [r.value for r in bus.records(CHANGES)] == [r.value for r in ROWS if r.topic == CHANGES]
    assert [r.value for r in bus.records(OTHER)] == [b"elsewhere"]
    assert await relay_outbox(store, publisher, clock) == 0  # type: ignore[arg-type]


async def test_rows_whose_publish_failed_stay_in_the_outbox_and_go_at_the_next_pass(
    store: SqlStore, clock: SimulatedClock
) -> None:
    await outbox(store, ROWS)
    bus = MemoryBus(partitions=1)
    publisher = Counting(bus.publisher(), failing=1)
    with pytest.raises(BusUnavailable):
        await relay_outbox(store, publisher, clock)  # type: ignore[arg-type]
    assert bus.records(CHANGES) == []
    assert await relay_outbox(store, publisher, clock) == 61  # type: ignore[arg-type]
    assert len(bus.records(CHANGES)) == 60


async def test_a_pass_claims_at_most_its_limit_and_the_next_goes_on_from_there(
    store: SqlStore, clock: SimulatedClock
) -> None:
    await outbox(store, ROWS)
    bus = MemoryBus(partitions=1)
    publisher = bus.publisher()
    assert await relay_outbox(store, publisher, clock, limit=25) == 25
    assert await relay_outbox(store, publisher, clock, limit=25) == 25
    assert await relay_outbox(store, publisher, clock, limit=25) == 11
    assert [r.value for r in bus.records(CHANGES)] == [r.value for r in ROWS if r.topic == CHANGES]
