"""The definitions port: what marketers define (segments, templates, campaigns,
programmes), versioned.

Every definition carries a version, 1 when created and one more at each change. A
change names the version it was made against (``expected_version``; ``None`` to
create): if another change came first, nothing is written and :class:`StaleVersion`
says which version is current. That is optimistic concurrency, the HTTP API's
``ETag`` / ``If-Match``: two marketers editing one segment never overwrite each
other unknowingly.

Nothing is deleted: :meth:`archive` retires a definition (it stays readable, and a
later ``put`` brings it back). ``stamp()`` grows with every change of a kind (the
sum of its versions), so a reader polls it cheaply to notice edits.

The adapter also answers the segmenter's and the console's few reads of the base:
segment sizes, the buyers in id order a page at a time (:attr:`Definitions.buyers`),
one profile; and keeps, per
segment, how far the base has been evaluated against its current rule
(:class:`Recompute`), so a recompute resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, Protocol, TypeVar, get_args

from shared.domain.profile import Profile
from shared.ports.buyers import BuyerPages

__all__ = [
    "CHANNELS",
    "CampaignDefinition",
    "CampaignDefinitions",
    "Channel",
    "Definitions",
    "ProgrammeDefinition",
    "ProgrammeDefinitions",
    "Recompute",
    "SegmentDefinition",
    "SegmentDefinitions",
    "Shelf",
    "StaleVersion",
    "Stamps",
    "TemplateDefinition",
    "TemplateDefinitions",
    "Versioned",
]

Channel = Literal["email", "sms", "push"]
CHANNELS: Final[tuple[Channel, ...]] = get_args(Channel)


class StaleVersion(Exception):
    """A change made against ``expected`` while ``current`` is the definition's version
    (``None``: there is no such definition; ``expected`` ``None``: it was to be created)."""

    def __init__(self, key: str, expected: int | None, current: int | None) -> None:
        super().__init__(f"{key}: expected version {expected}, current {current}")
        self.key = key
        self.expected = expected
        self.current = current


@dataclass(frozen=True, kw_only=True)
class Versioned:
    """What every kind of definition carries after its own fields (keyword-only)."""

    version: int
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None


@dataclass(frozen=True)
class SegmentDefinition(Versioned):
    key: str
    name: str
    description: str
    rule: Mapping[str, Any]
    """The rule as JSON-shaped data (``parse_rule`` reads it)."""


@dataclass(frozen=True)
class TemplateDefinition(Versioned):
    key: str
    channel: Channel
    content: Mapping[str, str]
    """email: ``subject``, ``html``, ``text``; sms: ``text``; push: ``title``, ``body``,
    optional ``deep_link``."""


@dataclass(frozen=True)
class CampaignDefinition(Versioned):
    key: str
    definition: Mapping[str, Any]
    status: str


@dataclass(frozen=True)
class ProgrammeDefinition(Versioned):
    key: str
    definition: Mapping[str, Any]
    status: str


@dataclass(frozen=True)
class Stamps:
    """Every kind's :meth:`Shelf.stamp`, read together."""

    segments: int
    templates: int
    campaigns: int
    programmes: int


@dataclass(frozen=True)
class Recompute:
    """How far the base has been evaluated against one segment's rule."""

    segment: str
    fingerprint: str
    """The rule this recompute is for (``rule_fingerprint``)."""
    cursor: str | None
    """The last profile id done, in id order; ``None`` before the first batch."""
    evaluated: int
    started_at: datetime
    finished_at: datetime | None = None


D_co = TypeVar("D_co", covariant=True)


class Shelf(Protocol[D_co]):
    """The reads and the archive every kind of definition shares."""

    async def get(self, key: str) -> D_co | None: ...

    async def list(self, *, archived: bool = False) -> Sequence[D_co]:
        """Every definition in key order; archived ones too with ``archived=True``."""
        ...

    async def archive(self, key: str, expected_version: int) -> D_co:
        """Retire the definition (a new version); :class:`StaleVersion` if not current."""
        ...

    async def stamp(self) -> int:
        """A number that grows with every change of this kind of definition."""
        ...


class SegmentDefinitions(Shelf[SegmentDefinition], Protocol):
    async def put(
        self,
        key: str,
        *,
        name: str,
        description: str,
        rule: Mapping[str, Any],
        expected_version: int | None,
    ) -> SegmentDefinition:
        """Create (``expected_version`` ``None``) or change the segment; an archived one
        is brought back. :class:`StaleVersion` when ``expected_version`` is not current."""
        ...


class TemplateDefinitions(Shelf[TemplateDefinition], Protocol):
    async def put(
        self,
        key: str,
        *,
        channel: Channel,
        content: Mapping[str, str],
        expected_version: int | None,
    ) -> TemplateDefinition: ...


class CampaignDefinitions(Shelf[CampaignDefinition], Protocol):
    async def put(
        self,
        key: str,
        *,
        definition: Mapping[str, Any],
        status: str,
        expected_version: int | None,
    ) -> CampaignDefinition:
        """As for segments; the definition is first checked by the adapter's campaign
        validator, whose error (a :class:`ValueError`) is raised with nothing written."""
        ...


class ProgrammeDefinitions(Shelf[ProgrammeDefinition], Protocol):
    async def put(
        self,
        key: str,
        *,
        definition: Mapping[str, Any],
        status: str,
        expected_version: int | None,
    ) -> ProgrammeDefinition:
        """As for campaigns (checked by the adapter's programme validator first). Every
        version written, archived ones too, stays readable by :meth:`version`."""
        ...

    async def version(self, key: str, version: int) -> ProgrammeDefinition | None:
        """The programme as it was at ``version`` (buyers inside stay on theirs)."""
        ...


class Definitions(Protocol):
    @property
    def segments(self) -> SegmentDefinitions: ...
    @property
    def templates(self) -> TemplateDefinitions: ...
    @property
    def campaigns(self) -> CampaignDefinitions: ...
    @property
    def programmes(self) -> ProgrammeDefinitions: ...

    async def stamps(self) -> Stamps:
        """Every kind's stamp, in one read: what a reader polls to notice any edit."""
        ...

    async def segment_sizes(self) -> dict[str, int]:
        """Segment key to how many buyers are in it now (segments with none left out)."""
        ...

    @property
    def buyers(self) -> BuyerPages[Profile]:
        """The base's live profiles, whole, in id order a page at a time."""
        ...

    async def count_profiles(self) -> int:
        """How many live profiles there are."""
        ...

    async def find_profile(self, profile_id: str) -> Profile | None:
        """The profile ``profile_id`` names, following merges to the buyer as they are now."""
        ...

    async def recomputes(self) -> dict[str, Recompute]:
        """Segment key to its recompute, for every segment that has one."""
        ...

    async def start_recompute(self, segment: str, fingerprint: str, at: datetime) -> Recompute:
        """Begin (again) evaluating the base against ``segment``'s rule, from the start."""
        ...

    async def advance_recompute(
        self,
        segment: str,
        fingerprint: str,
        *,
        cursor: str,
        evaluated: int,
        finished_at: datetime | None,
    ) -> Recompute | None:
        """Record a batch done; ``None`` (nothing written) if the recompute was started
        again meanwhile for another rule."""
        ...

    async def close(self) -> None: ...
