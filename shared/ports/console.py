"""The console's read model: what the marketer's pages show, read straight from the store.

Separate from the store's unit of work: these are read-only queries over many
buyers, never part of an event's transaction. The one write is the daily snapshot
of segment sizes (:class:`SegmentSizeHistory`), which only the console reads.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from shared.domain.profile import Profile

__all__ = ["BuyerMessage", "ConsoleQueries", "SegmentSizeHistory", "StagedBuyer"]


@dataclass(frozen=True)
class StagedBuyer:
    """A buyer of the base with the lifecycle stage the segmenter recorded (``None``:
    in no lifecycle segment yet)."""

    profile: Profile
    stage: str | None


@dataclass(frozen=True)
class BuyerMessage:
    """One message nudge decided about for a buyer, and the decision behind it."""

    key: str
    campaign: str
    channel: str
    status: str
    """``sent``, ``delivered``, ``failed``, ``skipped``... as the dispatcher left it."""
    reason: str | None
    """The deciding step's code: ``holdout``, ``capped``, ``quiet_hours``, ``converted``..."""
    holdout: bool
    created_at: datetime
    scheduled_for: datetime | None
    sent_at: datetime | None
    finished_at: datetime | None
    error: str | None
    decision: Sequence[Mapping[str, Any]]
    """Every step's say: ``{step, code, detail}``, in order."""


class ConsoleQueries(Protocol):
    async def buyer_count(self) -> int:
        """How many buyers nudge knows (a profile merged into another counts once)."""
        ...

    async def segment_sizes(self, segments: Collection[str]) -> Mapping[str, int]:
        """How many buyers are in each of ``segments`` now (0 for an empty or unknown one)."""
        ...

    async def scan_buyers(
        self, *, after: str | None, limit: int, stage_segments: Mapping[str, str]
    ) -> Sequence[StagedBuyer]:
        """A page of the base as :meth:`~shared.ports.buyers.BuyerPages.page` reads it (up
        to ``limit`` live buyers with an id above ``after``, in id order), each buyer with
        the stage of the first of ``stage_segments`` (segment key to stage) they are in."""
        ...

    async def find_buyer(self, profile_id: str) -> Profile | None:
        """The buyer ``profile_id`` names, following merges to the buyer as they are now."""
        ...

    async def find_buyer_by(self, kind: str, value: str) -> Profile | None:
        """The buyer known by the identifier ``kind`` (``phone``, ``email``, ``id``,
        ``loyalty_card``, ``app_install_id``, ``profile_id``) = ``value``, spelled as
        ingest normalises it; following merges."""
        ...

    async def buyer_segments(self, profile_id: str) -> Sequence[tuple[str, datetime]]:
        """The segments the buyer is in now, each with when they entered, by segment key."""
        ...

    async def buyer_messages(self, profile_id: str, *, limit: int) -> Sequence[BuyerMessage]:
        """The buyer's latest ``limit`` messages, newest first, held-out and skipped ones too."""
        ...

    async def ping(self) -> None:
        """Return once the store answers; raise :class:`~shared.errors.StoreUnavailable`."""
        ...

    async def close(self) -> None: ...


class SegmentSizeHistory(Protocol):
    """Segment sizes day by day, for the console's "size over time"."""

    async def snapshot_segment_sizes(self, day: date, at: datetime) -> int:
        """Record every segment's size now as ``day``'s (replacing an earlier snapshot of
        that day); how many segments were recorded. Set-wise: one statement."""
        ...

    async def segment_size_history(
        self, segments: Collection[str], *, since: date
    ) -> Mapping[str, Sequence[tuple[date, int]]]:
        """Each of ``segments``' recorded sizes from ``since`` on, oldest first (an
        empty list for a segment never recorded)."""
        ...
