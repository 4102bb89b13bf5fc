"""Consumer groups inside one process: who the members are, and who holds which partition.

The in-memory bus and the embedded SQLite bus share it. Each join or leave is a
rebalance: the group's generation moves on, and a member that sees a new generation
starts every partition it now holds at the group's committed offset. Partitions are
dealt round-robin: member ``i`` of ``n`` holds the partitions ``p`` with ``p % n == i``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

__all__ = ["Groups", "Member"]


class Member(Protocol):
    group: str
    topics: tuple[str, ...]


M = TypeVar("M", bound=Member)


class Groups(Generic[M]):
    def __init__(self, on_rebalance: Callable[[], None]) -> None:
        """``on_rebalance`` runs after each join and leave (wake the waiting polls)."""
        self._members: dict[str, list[M]] = {}
        self._generation: dict[str, int] = {}
        self._on_rebalance = on_rebalance

    def join(self, member: M) -> None:
        self._members.setdefault(member.group, []).append(member)
        self._rebalance(member.group)

    def leave(self, member: M) -> None:
        members = self._members.get(member.group, [])
        if member in members:
            members.remove(member)
            self._rebalance(member.group)

    def generation(self, group: str) -> int:
        return self._generation.get(group, 0)

    def everyone(self) -> list[M]:
        return [member for members in self._members.values() for member in members]

    def assignment(self, member: M, partitions: Callable[[str], int]) -> list[tuple[str, int]]:
        """The ``(topic, partition)`` pairs ``member`` holds; ``partitions`` counts a topic's."""
        members: Sequence[M] = self._members.get(member.group, [])
        if member not in members:
            return []
        index, count = members.index(member), len(members)
        return [
            (topic, p)
            for topic in member.topics
            for p in range(partitions(topic))
            if p % count == index
        ]

    def _rebalance(self, group: str) -> None:
        self._generation[group] = self.generation(group) + 1
        self._on_rebalance()
