"""The in-memory bus: Kafka's semantics that nudge relies on, with no broker and no file.

- records with the same key go to the same partition, in order;
- a consumer group shares its topics' partitions among its members, and a member
  joining or leaving moves partitions (a rebalance);
- delivery is at least once: a member starts every partition it is given at the
  group's committed offset, so whatever was not committed is delivered again.

It lives in memory and dies with the process: it is for unit tests, which may stand it
in for the embedded bus because it passes the same contract
(``tests/contract/test_bus.py``); the embedded default keeps its records in SQLite
(:mod:`shared.adapters.bus.sqlite`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import zlib
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import UTC, datetime

from shared.adapters.bus.groups import Groups
from shared.errors import CommitFailed
from shared.ports.bus import Record

__all__ = ["MemoryBus", "MemoryConsumer", "MemoryPublisher"]


class MemoryBus:
    def __init__(self, partitions: int = 3) -> None:
        self.partitions = partitions
        self._logs: dict[str, list[list[Record]]] = {}
        self._committed: dict[tuple[str, str, int], int] = {}
        self._groups: Groups[MemoryConsumer] = Groups(self._notify)
        self._round_robin = itertools.count()
        self._arrived = asyncio.Event()

    # --- Bus port ---------------------------------------------------------------------

    def publisher(self) -> MemoryPublisher:
        return MemoryPublisher(self)

    async def consumer(self, group: str, topics: Sequence[str]) -> MemoryConsumer:
        member = MemoryConsumer(self, group, tuple(topics))
        self._groups.join(member)
        return member

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        for topic in topics:
            self._log(topic)

    async def read(
        self, topic: str, start: Mapping[int, int] | None = None
    ) -> AsyncGenerator[Record, None]:
        ends = [len(records) for records in self._log(topic)]
        for partition, end in enumerate(ends):
            first = max(0, (start or {}).get(partition, 0))
            for record in self._log(topic)[partition][first:end]:
                yield record

    async def close(self) -> None:
        for member in self._groups.everyone():
            await member.close()

    # --- what the adapters share ------------------------------------------------------

    def _log(self, topic: str) -> list[list[Record]]:
        return self._logs.setdefault(topic, [[] for _ in range(self.partitions)])

    def _append(
        self, topic: str, key: bytes | None, value: bytes, headers: tuple[tuple[str, bytes], ...]
    ) -> None:
        log = self._log(topic)
        if key is None:
            partition = next(self._round_robin) % self.partitions
        else:
            partition = zlib.crc32(key) % self.partitions
        records = log[partition]
        records.append(
            Record(topic, partition, len(records), key, value, headers, datetime.now(UTC))
        )

    def _notify(self) -> None:
        self._arrived.set()
        self._arrived = asyncio.Event()

    def _assignment(self, member: MemoryConsumer) -> list[tuple[str, int]]:
        return self._groups.assignment(member, lambda topic: len(self._log(topic)))

    # --- inspection, for the demo and tests -------------------------------------------

    def committed(self, group: str, topic: str, partition: int) -> int:
        return self._committed.get((group, topic, partition), 0)

    def lag(self, group: str, topics: Sequence[str]) -> int:
        """Records in ``topics`` that ``group`` has not committed yet."""
        return sum(
            len(records) - self.committed(group, topic, p)
            for topic in topics
            for p, records in enumerate(self._log(topic))
        )

    def records(self, topic: str) -> list[Record]:
        return [r for partition in self._log(topic) for r in partition]


class MemoryPublisher:
    def __init__(self, bus: MemoryBus) -> None:
        self._bus = bus

    async def publish(
        self,
        topic: str,
        records: Sequence[tuple[bytes | None, bytes]],
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        await self.publish_many([(topic, records)], headers)

    async def publish_many(
        self,
        batches: Sequence[tuple[str, Sequence[tuple[bytes | None, bytes]]]],
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        for topic, records in batches:
            for key, value in records:
                self._bus._append(topic, key, value, tuple(headers))
        self._bus._notify()

    async def ping(self) -> None:
        return None  # the bus is this process: it answers while the process does

    async def close(self) -> None:
        return None


class MemoryConsumer:
    def __init__(self, bus: MemoryBus, group: str, topics: tuple[str, ...]) -> None:
        self._bus = bus
        self.group = group
        self.topics = topics
        self._generation = -1
        self._positions: dict[tuple[str, int], int] = {}

    def _sync(self) -> None:
        generation = self._bus._groups.generation(self.group)
        if generation != self._generation:
            self._generation = generation
            self._positions = {
                tp: self._bus.committed(self.group, *tp) for tp in self._bus._assignment(self)
            }

    def _take(self, max_records: int) -> list[Record]:
        self._sync()
        taken: list[Record] = []
        for (topic, partition), position in self._positions.items():
            log = self._bus._log(topic)[partition]
            batch = log[position : position + max_records - len(taken)]
            if batch:
                taken.extend(batch)
                self._positions[(topic, partition)] = position + len(batch)
            if len(taken) >= max_records:
                break
        return taken

    async def poll(self, max_records: int, timeout: float) -> list[Record]:
        taken = self._take(max_records)
        if taken or timeout <= 0:
            return taken
        arrived = self._bus._arrived
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await arrived.wait()
        return self._take(max_records)

    async def commit(self, records: Sequence[Record]) -> None:
        self._sync()
        ends: dict[tuple[str, int], int] = {}
        for record in records:
            tp = (record.topic, record.partition)
            ends[tp] = max(ends.get(tp, 0), record.offset + 1)
        lost = [tp for tp in ends if tp not in self._positions]
        if lost:
            raise CommitFailed(f"partitions no longer assigned to this member: {lost}")
        for (topic, partition), end in ends.items():
            key = (self.group, topic, partition)
            self._bus._committed[key] = max(self._bus._committed.get(key, 0), end)

    async def close(self) -> None:
        self._bus._groups.leave(self)
