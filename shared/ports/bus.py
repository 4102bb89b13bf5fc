"""The bus port: topics of keyed records, consumer groups, commit after processing.

Both adapters (the in-process bus and Kafka) keep the semantics the services rely
on: records with the same key land in the same partition and are delivered in
order; a consumer group shares the partitions among its members; delivery is at
least once, because a record is delivered again to the group until an offset past
it is committed.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

__all__ = ["Bus", "Consumer", "Publisher", "Record"]


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = field(default=())
    timestamp: datetime | None = None
    """When the bus took the record (aware UTC), where the bus says."""


class Publisher(Protocol):
    async def publish(
        self,
        topic: str,
        records: Sequence[tuple[bytes | None, bytes]],
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        """Publish ``(key, value)`` records; return once the bus has acknowledged all of them.

        Raises :class:`~shared.errors.BusUnavailable` when the bus does not acknowledge
        in time; then some of the records may still arrive (at least once).
        """
        ...

    async def publish_many(
        self,
        batches: Sequence[tuple[str, Sequence[tuple[bytes | None, bytes]]]],
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        """Publish ``(topic, records)`` batches as :meth:`publish` does each, in order, as one:
        every record is handed to the bus before any acknowledgement is awaited, and the
        call returns once all of them are acknowledged. Records with one key in one topic
        keep their order. On :class:`~shared.errors.BusUnavailable` some may still arrive.
        """
        ...

    async def ping(self) -> None:
        """Return once the bus answers; raise :class:`~shared.errors.BusUnavailable` if it
        does not within the publish timeout. Publishes nothing (``/readyz`` asks it)."""
        ...

    async def close(self) -> None: ...


class Consumer(Protocol):
    async def poll(self, max_records: int, timeout: float) -> list[Record]:
        """The next records of this member's partitions, waiting up to ``timeout`` seconds."""
        ...

    async def commit(self, records: Sequence[Record]) -> None:
        """Mark ``records`` (and everything before them in their partitions) processed."""
        ...

    async def close(self) -> None: ...


class Bus(Protocol):
    """Where publishers and consumers come from."""

    def publisher(self) -> Publisher: ...

    async def consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        """A started member of consumer group ``group``, subscribed to ``topics``."""
        ...

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create ``topics`` where they do not exist yet."""
        ...

    def read(
        self, topic: str, start: Mapping[int, int] | None = None
    ) -> AsyncGenerator[Record, None]:
        """The records of ``topic`` up to its end as it is when reading starts, partition by
        partition in offset order, from ``start`` (partition to offset; the partition's
        first record where not named). No consumer group, nothing committed: for operators'
        tools that look at a topic (the dead-letter commands). Close it when leaving early
        (``contextlib.aclosing``)."""
        ...

    async def close(self) -> None: ...
