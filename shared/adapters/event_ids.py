"""Accepted event ids in memory: for one process that never restarts (tests, the schema
of the API), where an index in the database is not worth its round trip.

Every deployment wires the database's index instead
(:class:`~shared.adapters.store.event_ids.SqlEventIds`); this one passes the same
contract (``tests/contract/test_event_ids.py``).
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.domain.event_content import same_content
from shared.ports.event_ids import EventKey

__all__ = ["MemoryEventIds"]


class MemoryEventIds:
    """An :class:`~shared.ports.event_ids.EventIds` in a dict."""

    def __init__(self) -> None:
        self._digests: dict[EventKey, bytes] = {}

    async def claim(self, digests: Mapping[EventKey, bytes]) -> set[EventKey]:
        conflicts = {
            key
            for key, digest in digests.items()
            if not same_content(self._digests.get(key, digest), digest)
        }
        if not conflicts:
            self._digests.update(digests)
        return conflicts
