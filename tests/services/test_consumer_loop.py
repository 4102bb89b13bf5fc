"""The consume loop on the in-process bus: dead letters, retries, commits."""

from __future__ import annotations

from collections.abc import Sequence

from shared.adapters.bus.memory import MemoryBus
from shared.consuming import ConsumerLoop
from shared.errors import StoreUnavailable
from shared.ports.bus import Record

TOPIC = "nudge.events"


async def _loop(bus: MemoryBus, handle: object) -> ConsumerLoop:
    consumer = await bus.consumer("g", [TOPIC])
    return ConsumerLoop("test", consumer, handle, bus.publisher(), max_records=10)  # type: ignore[arg-type]


async def test_a_poison_record_goes_to_the_dead_letter_topic_and_the_rest_are_applied() -> None:
    bus = MemoryBus(partitions=1)
    applied: list[bytes] = []

    async def handle(records: Sequence[Record]) -> None:
        if any(r.value == b"poison" for r in records):
            raise ValueError("cannot apply this")
        applied.extend(r.value for r in records)

    await bus.publisher().publish(TOPIC, [(b"k", b"a"), (b"k", b"poison"), (b"k", b"b")])
    loop = await _loop(bus, handle)
    assert await loop.step() == 3
    assert applied == [b"a", b"b"]
    (dead,) = bus.records(f"{TOPIC}.dlq")
    assert dead.value == b"poison"
    headers = dict(dead.headers)
    assert headers["error"] == b"ValueError: cannot apply this"
    assert headers["source.offset"] == b"1"
    assert bus.lag("g", [TOPIC]) == 0


async def test_a_transient_failure_is_retried_and_nothing_is_dead_lettered() -> None:
    bus = MemoryBus(partitions=1)
    attempts: list[int] = []

    async def handle(records: Sequence[Record]) -> None:
        attempts.append(len(records))
        if len(attempts) < 3:
            raise StoreUnavailable("database restarting")

    await bus.publisher().publish(TOPIC, [(b"k", b"a"), (b"k", b"b")])
    loop = await _loop(bus, handle)
    assert await loop.step() == 2
    assert attempts == [2, 2, 2]
    assert bus.records(f"{TOPIC}.dlq") == []
    assert bus.lag("g", [TOPIC]) == 0


async def test_records_are_committed_only_after_they_were_handled() -> None:
    bus = MemoryBus(partitions=1)
    seen_lag: list[int] = []

    async def handle(records: Sequence[Record]) -> None:
        seen_lag.append(bus.lag("g", [TOPIC]))

    await bus.publisher().publish(TOPIC, [(b"k", b"a")])
    loop = await _loop(bus, handle)
    await loop.step()
    assert seen_lag == [1]
    assert bus.lag("g", [TOPIC]) == 0
