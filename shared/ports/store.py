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
from decimal import Decimal
from typing import Any, Protocol

from shared.domain.decisions import Reason, ScheduledSend, SentMessage
from shared.domain.money import OrderBalance
from shared.domain.profile import Profile
from shared.domain.programmes import Position
from shared.domain.segments import MembershipChange
from shared.ports.offers import OfferCodes

__all__ = [
    "NOT_SENT",
    "Activation",
    "Inbox",
    "Memberships",
    "MessageOutcome",
    "MessageRecord",
    "Messages",
    "Orders",
    "Outbox",
    "OutboxRecord",
    "OutgoingRecord",
    "PlacedOrder",
    "PlacedOrders",
    "PositionRecord",
    "Positions",
    "Profiles",
    "Resolution",
    "Schedule",
    "ScheduledRecord",
    "Store",
    "Timers",
    "UnitOfWork",
]


NOT_SENT = ("failed", "rejected")
"""Statuses of messages handed to a provider that never reached the buyer: not counted by
the caps and sunset (:meth:`Messages.recent`)."""


@dataclass(frozen=True)
class MessageOutcome:
    """What happened to a message: its new ``status`` as of ``at``. The provider's id and
    the error are always written (``None`` clears them); each other field changes only
    when given (not ``None``)."""

    status: str
    at: datetime
    provider_message_id: str | None = None
    error: str | None = None
    reason: str | None = None
    holdout: bool | None = None
    channel: str | None = None
    scheduled_for: datetime | None = None
    sent_at: datetime | None = None
    decision: Sequence[Reason] | None = None

    def changes(self) -> dict[str, Any]:
        """The message's fields this outcome sets: status, provider id and error always,
        each other one when given (the trail as a tuple; an empty one is not given)."""
        given = {
            "reason": self.reason,
            "holdout": self.holdout,
            "channel": self.channel,
            "scheduled_for": self.scheduled_for,
            "sent_at": self.sent_at,
            "decision": tuple(self.decision or ()) or None,
        }
        return {
            "status": self.status,
            "provider_message_id": self.provider_message_id,
            "error": self.error,
            **{name: value for name, value in given.items() if value is not None},
        }


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
    reason: str | None = None
    """The deciding step's code (:class:`~shared.domain.decisions.Reason`): why it went or not."""
    holdout: bool = False
    """The buyer is in the campaign's control group: recorded, never sent."""
    priority: int = 0
    scheduled_for: datetime | None = None
    sent_at: datetime | None = None
    """When the message was handed to a provider: what frequency caps and sunset count."""
    decision: tuple[Reason, ...] = ()
    """Every step's say, in order (the decision's trail)."""


@dataclass(frozen=True)
class ScheduledRecord:
    """A message waiting in the scheduled-sends table, with its trigger's context (JSON)."""

    send: ScheduledSend
    context: Mapping[str, Any]


@dataclass(frozen=True)
class PositionRecord:
    """One buyer's entry into one programme, where it is, and how it ended (if it did)."""

    position: Position
    holdout: bool
    """Drawn at entry: a held-out buyer is counted, and sent nothing."""
    exited_at: datetime | None = None
    exit_reason: str | None = None


@dataclass(frozen=True)
class Activation:
    """An "everyone in segment S" programme's entering at activation: when it began, the
    last buyer entered so far (they enter in id order, batch by batch), how many, and when
    every member had entered."""

    programme: str
    activated_at: datetime
    after: str | None = None
    entered: int = 0
    finished_at: datetime | None = None


class Positions(Protocol):
    """Where each buyer is in each programme: one row per programme, buyer and entry."""

    async def enter(self, records: Sequence[PositionRecord], at: datetime) -> set[Position]:
        """Write the entries that are new (by programme, buyer and entry); return the
        positions written: an entry delivered again writes nothing."""
        ...

    async def save(self, records: Sequence[PositionRecord], at: datetime) -> None:
        """Write where each of ``records`` is now (step, version, due time, exit)."""
        ...

    async def due(self, now: datetime, limit: int) -> list[PositionRecord]:
        """Up to ``limit`` positions whose wait ended by ``now``, earliest first, locked
        for this unit of work (replicas never take the same row)."""
        ...

    async def waiting(self, profile_ids: Collection[str]) -> list[PositionRecord]:
        """The positions of ``profile_ids`` still inside a programme, locked (an event of
        theirs may end a wait, or exit them at the goal)."""
        ...

    async def activation(self, programme: str, at: datetime) -> Activation | None:
        """``programme``'s activation (begun at ``at`` when it had none), locked for this
        unit of work; ``None`` while another replica holds it."""
        ...

    async def advance(self, activation: Activation) -> None:
        """Write how far ``activation`` went (``after``, ``entered``, ``finished_at``)."""
        ...

    async def count(self, programme: str) -> dict[str, int]:
        """For ``programme``: buyers at each step (still inside), and per exit reason
        (``exited:<reason>``), and ``holdout``."""
        ...


@dataclass(frozen=True)
class PlacedOrder:
    """A purchase as placed, kept whole in the order history (``PlacedOrders.record``)."""

    order_id: str
    profile_id: str
    placed_at: datetime
    total: Decimal
    currency: str


class Inbox(Protocol):
    async def claim(self, event_ids: Sequence[str], at: datetime) -> set[str]:
        """Record ``event_ids`` as processed; return those that were not already."""
        ...

    async def seen(self, event_ids: Collection[str]) -> set[str]:
        """Those of ``event_ids`` already processed (applied by the segmenter)."""
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

    async def merge_many(self, merges: Sequence[tuple[str, str]]) -> None:
        """:meth:`merge` each ``(absorbed, survivor)`` of ``merges`` in order, at once: a
        survivor absorbed by a later merge passes on what it absorbed."""
        ...

    async def current(self, profile_id: str) -> Profile | None:
        """The profile as it is now: following merges to the survivor."""
        ...

    async def current_many(
        self, profile_ids: Collection[str], *, lock: bool = False
    ) -> dict[str, Profile]:
        """For each of ``profile_ids`` known, the profile as it is now (following merges to
        the survivor), locked for update with ``lock`` (the survivors, in one order); ids
        merged into one survivor get the same profile."""
        ...

    async def get(self, profile_id: str) -> Profile | None: ...

    async def get_many(
        self, profile_ids: Collection[str], *, lock: bool = False
    ) -> dict[str, Profile]: ...

    async def find(self, kind: str, value: str) -> Profile | None:
        """The profile one identifier names, if any; never creates one."""
        ...

    async def find_many(
        self, identifiers: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], Profile]:
        """For each ``(kind, value)`` identifier that names a profile, that profile; never
        creates one."""
        ...

    async def open_hours_sample(self, channel: str, *, start: str, limit: int) -> list[int]:
        """Opens on ``channel`` by local hour (24 counts), summed over up to ``limit``
        buyers from the profile id ``start`` on, going on from the first id past the last
        (ids are random: from a random ``start``, a random sample)."""
        ...

    async def identifiers(self, profile_ids: Collection[str], kind: str) -> dict[str, list[str]]:
        """For each buyer, their identifiers of ``kind``, sorted (``app_install_id``: where a
        push notification goes)."""
        ...

    async def save(self, profiles: Collection[Profile], at: datetime) -> None: ...


class Memberships(Protocol):
    async def of(self, profile_ids: Collection[str]) -> dict[str, dict[str, datetime]]:
        """For each buyer, segment key to the moment the buyer entered it."""
        ...

    async def apply(self, changes: Sequence[MembershipChange]) -> None: ...

    async def members(
        self, segment: str, *, entered_by: datetime, after: str | None, limit: int
    ) -> list[str]:
        """Up to ``limit`` buyers in ``segment`` who entered it by ``entered_by``, in id
        order, after ``after``: one statement, whatever the batch."""
        ...


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

    async def finish(self, key: str, outcome: MessageOutcome) -> None:
        """Give the message ``outcome``: its new status as of ``outcome.at``, its provider
        id and error; the other fields change only when given."""
        ...

    async def finish_many(self, outcomes: Sequence[tuple[str, MessageOutcome]]) -> None:
        """:meth:`finish` each message of ``outcomes`` (key, outcome) at once."""
        ...

    async def responses(self, keys: Collection[str]) -> dict[str, set[str]]:
        """For each of ``keys`` with any, the buyer's responses its delivery reports gave
        (``delivered``, ``opened``, ``clicked``, ...): what a programme's branch reads."""
        ...

    async def write(self, messages: Sequence[tuple[MessageRecord, MessageOutcome | None]]) -> None:
        """Insert new message rows at once, each as :meth:`begin` writes it and then, given
        an outcome, as :meth:`finish` leaves it; a key that exists already is left as it is."""
        ...

    async def get(self, key: str) -> MessageRecord | None: ...

    async def get_many(self, keys: Collection[str]) -> dict[str, MessageRecord]:
        """The message rows of those of ``keys`` that exist, by key."""
        ...

    async def all(self) -> list[MessageRecord]: ...

    async def recent(
        self, profile_ids: Collection[str], since: datetime, *, at_least: int = 0
    ) -> dict[str, list[SentMessage]]:
        """For each buyer, the messages handed to a provider (``sent_at`` set, and not
        ``failed`` or ``rejected``: :data:`NOT_SENT`) since ``since``, and at least the last
        ``at_least`` whatever their age, oldest first: what frequency caps and sunset count."""
        ...


class Schedule(Protocol):
    """Messages waiting for their moment, one per message key, by due time."""

    async def add(self, records: Sequence[ScheduledRecord], at: datetime) -> None:
        """Schedule ``records``; a key scheduled already moves to its new due time
        (channel, priority and context too)."""
        ...

    async def due(self, now: datetime, limit: int) -> list[ScheduledRecord]:
        """Up to ``limit`` sends due at ``now``, earliest first, locked for this unit of
        work (replicas never take the same row)."""
        ...

    async def remove(self, keys: Collection[str]) -> None: ...

    async def pending(self, profile_ids: Collection[str]) -> dict[str, list[ScheduledSend]]:
        """For each buyer, the sends waiting for them, earliest first (the caps reserve
        their place)."""
        ...

    async def count_pending(self, due_by: datetime | None = None) -> int:
        """How many sends wait (the queue depth); with ``due_by``, how many are due by then."""
        ...


class Orders(Protocol):
    """What each order was paid and refunded (:class:`~shared.domain.money.OrderBalance`)."""

    async def of(self, order_ids: Collection[str]) -> dict[str, OrderBalance]:
        """The balances of those of ``order_ids`` kept, locked for update."""
        ...

    async def save(self, balances: Collection[OrderBalance], at: datetime) -> None:
        """Write ``balances``, new ones and changed ones alike."""
        ...


class PlacedOrders(Protocol):
    async def record(self, orders: Sequence[PlacedOrder]) -> None:
        """Keep each order once: an order id kept already is left as it was. A merge
        (``Profiles.merge_many``) moves the absorbed buyer's orders to the survivor."""
        ...


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
    @property
    def schedule(self) -> Schedule: ...
    @property
    def positions(self) -> Positions: ...
    @property
    def orders(self) -> Orders: ...
    @property
    def placed_orders(self) -> PlacedOrders: ...
    @property
    def offer_codes(self) -> OfferCodes:
        """Promo codes taken by the messages this unit of work writes."""
        ...

    async def commit(self) -> None:
        """Commit everything done in this unit of work; without it, all is rolled back."""
        ...


class Store(Protocol):
    def unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork, bool | None]: ...

    async def close(self) -> None: ...
