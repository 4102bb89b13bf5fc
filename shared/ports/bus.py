"""The bus port: topics of keyed records, consumer groups, commit after processing.

Both adapters (the in-process bus and Kafka) keep the semantics the services rely
on: records with the same key land in the same partition and are delivered in
order; a consumer group shares the partitions among its members; delivery is at
least once, because a record is delivered again to the group until an offset past
it is committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
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

    async def close(self) -> None: ...
