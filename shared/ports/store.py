"""The store port: a unit of work over the buyer's state, committed as one transaction.

Everything one event (or one timer) changes happens in one unit of work: the
event's dedupe row, the profile (with its next timer), the memberships and the
outbox rows that announce the changes. Either all of it commits, or none.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.domain.profile import Profile
from shared.domain.segments import MembershipChange

__all__ = [
    "Inbox",
    "Memberships",
    "MessageRecord",
    "Messages",
    "Outbox",
    "OutboxRecord",
    "OutgoingRecord",
    "Profiles",
    "Resolution",
    "Store",
    "Timers",
    "UnitOfWork",
]


@dataclass(frozen=True)
class OutboxRecord:
    id: int
    topic: str
    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class OutgoingRecord:
    """A record to publish once the unit of work commits."""

    topic: str
    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class Resolution:
    """Who a batch of identifier sets names.

    ``profiles[i]`` is the profile that identifier set ``i`` named when its event came
    (locked for update); ``merges`` lists ``(absorbed, survivor)`` ids, in the order
    they were found, where one identifier set named two profiles: the survivor is the
    profile of the set's strongest identifier. ``loaded`` holds every profile involved.
    """

    profiles: list[Profile]
    merges: list[tuple[str, str]]
    loaded: dict[str, Profile]


@dataclass(frozen=True)
class MessageRecord:
    key: str
    campaign: str
    profile_id: str
    channel: str
    occurrence_id: str
    status: str
    created_at: datetime
    provider_message_id: str | None = None
    error: str | None = None


class Inbox(Protocol):
    async def claim(self, event_ids: Sequence[str], at: datetime) -> set[str]:
        """Record ``event_ids`` as processed; return those that were not already."""
        ...


class Profiles(Protocol):
    async def resolve(
        self, identifier_sets: Sequence[Mapping[str, str]], at: datetime
    ) -> Resolution:
        """The profile each set of identifiers names (strongest identifier first), created
        where none does, locked for update. Sets naming one buyer get the same object."""
        ...

    async def merge(self, absorbed: str, survivor: str) -> None:
        """Move ``absorbed``'s identifiers and message history to ``survivor`` and drop its
        memberships; the caller folds the profiles (``absorb``) and saves both."""
        ...

    async def current(self, profile_id: str) -> Profile | None:
        """The profile as it is now: following merges to the survivor."""
        ...

    async def get(self, profile_id: str) -> Profile | None: ...

    async def get_many(
        self, profile_ids: Collection[str], *, lock: bool = False
    ) -> dict[str, Profile]: ...

    async def find(self, kind: str, value: str) -> Profile | None:
        """The profile one identifier names, if any; never creates one."""
        ...

    async def save(self, profiles: Collection[Profile], at: datetime) -> None: ...


class Memberships(Protocol):
    async def of(self, profile_ids: Collection[str]) -> dict[str, dict[str, datetime]]:
        """For each buyer, segment key to the moment the buyer entered it."""
        ...

    async def apply(self, changes: Sequence[MembershipChange]) -> None: ...


class Timers(Protocol):
    """Buyers by their next timer (``Profile.next_timer_at``, kept with the profile)."""

    async def due(self, now: datetime, limit: int) -> list[str]:
        """Up to ``limit`` buyers whose timer is due at ``now``, locked for this unit of work."""
        ...


class Outbox(Protocol):
    async def add(self, records: Sequence[OutgoingRecord], at: datetime) -> None: ...

    async def claim(self, limit: int) -> list[OutboxRecord]:
        """The oldest unpublished records, in order, for exactly one relay at a time."""
        ...

    async def mark_published(self, ids: Sequence[int], at: datetime) -> None: ...


class Messages(Protocol):
    async def begin(self, record: MessageRecord) -> bool:
        """Insert the message row before its send; ``False`` when the key exists already."""
        ...

    async def finish(
        self,
        key: str,
        status: str,
        at: datetime,
        provider_message_id: str | None = None,
        error: str | None = None,
    ) -> None: ...

    async def get(self, key: str) -> MessageRecord | None: ...

    async def all(self) -> list[MessageRecord]: ...


class UnitOfWork(Protocol):
    @property
    def inbox(self) -> Inbox: ...
    @property
    def profiles(self) -> Profiles: ...
    @property
    def memberships(self) -> Memberships: ...
    @property
    def timers(self) -> Timers: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def messages(self) -> Messages: ...

    async def commit(self) -> None:
        """Commit everything done in this unit of work; without it, all is rolled back."""
        ...


class Store(Protocol):
    def unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork, bool | None]: ...

    async def close(self) -> None: ...
