"""The offers port: the offers marketers define (versioned, like campaigns) and their codes.

An offer is stored as the JSON the API took (``parse_offer`` reads it), with a version
(:class:`~shared.ports.definitions.Versioned`: ``ETag`` / ``If-Match``). Its codes are
rows of their own: a pool's uploaded ``free`` until a message takes one (``issued``,
naming that message); a generated offer's written ``issued`` when made.

:meth:`Offers.add_codes` takes an upload whole or not at all: a code already in the
offer's pool refuses the upload (:class:`CodesTaken`) with nothing written.

Assigning a code to a message happens in the unit of work that writes the message row
(:class:`OfferCodes`, ``uow.offer_codes``): the code is taken, and the message's row
written, in one transaction, or neither.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from shared.domain.offers import Issued, Redemption
from shared.ports.definitions import Versioned

__all__ = [
    "CodeState",
    "CodesTaken",
    "IssuedOfferCode",
    "ListedCode",
    "OfferCodes",
    "OfferDefinition",
    "OfferResults",
    "Offers",
    "PoolCounts",
]

CodeState = Literal["free", "issued"]


@dataclass(frozen=True)
class OfferDefinition(Versioned):
    key: str
    definition: Mapping[str, Any]


@dataclass(frozen=True)
class PoolCounts:
    """An offer's codes by state."""

    free: int = 0
    issued: int = 0


@dataclass(frozen=True)
class IssuedOfferCode:
    """A code given to a message."""

    offer: str
    code: str
    message_key: str
    profile_id: str
    issued_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class ListedCode:
    """One code of an offer as exported: its state, and when it was issued, until when."""

    code: str
    state: CodeState
    issued_at: datetime | None
    expires_at: datetime | None
    redeemed_at: datetime | None


@dataclass(frozen=True)
class OfferResults:
    """What a campaign's codes did: how many were issued (to messages sent or sending) and
    redeemed, and the discount the redemptions gave."""

    issued: int = 0
    redeemed: int = 0
    discount: Decimal = Decimal("0.00")
    offers: tuple[str, ...] = ()
    """The offers its messages carried codes of."""

    @property
    def redemption_rate(self) -> float | None:
        return self.redeemed / self.issued if self.issued else None


class CodesTaken(Exception):
    """An upload naming codes the offer has already (the first few in ``codes``)."""

    def __init__(self, offer: str, codes: Sequence[str], count: int) -> None:
        super().__init__(f"{offer}: {count} of the codes are in its pool already")
        self.offer = offer
        self.codes = tuple(codes)
        self.count = count


class Offers(Protocol):
    async def get(self, key: str) -> OfferDefinition | None: ...

    async def list(self) -> Sequence[OfferDefinition]:
        """Every offer, in key order."""
        ...

    async def put(
        self, key: str, *, definition: Mapping[str, Any], expected_version: int | None
    ) -> OfferDefinition:
        """Create (``expected_version`` ``None``) or change the offer, as for campaigns:
        :class:`~shared.ports.definitions.StaleVersion` when ``expected_version`` is not
        current; the adapter's validator refuses a bad definition (a :class:`ValueError`)
        with nothing written."""
        ...

    async def stamp(self) -> int:
        """A number that grows with every change of an offer."""
        ...

    async def add_codes(self, key: str, codes: Sequence[str], at: datetime) -> PoolCounts:
        """Put ``codes`` in the offer's pool, ``free``, all of them in one transaction; the
        pool's counts after. :class:`CodesTaken` (nothing written) if any is there already."""
        ...

    async def pool(self, key: str) -> PoolCounts: ...

    async def codes(self, key: str) -> Sequence[ListedCode]:
        """Every code of the offer (its pool's, and the generated ones issued), by code."""
        ...

    async def issued(self, codes: Collection[str]) -> Sequence[Issued]:
        """The codes among ``codes`` issued to a message, of any offer."""
        ...

    async def redeem(self, redemptions: Sequence[Redemption]) -> int:
        """Keep the redemptions of codes not redeemed yet (the first purchase naming a code
        counts); how many were new."""
        ...

    async def campaign_results(self, campaign: str) -> OfferResults:
        """What the codes of ``campaign``'s messages did."""
        ...

    async def close(self) -> None: ...


class OfferCodes(Protocol):
    """Codes as a unit of work takes them: in its transaction, committed with it."""

    async def take(
        self,
        offer: str,
        message_key: str,
        profile_id: str,
        at: datetime,
        expires_at: datetime | None,
    ) -> str | None:
        """A free code of ``offer``'s pool, now ``issued`` to ``message_key``; ``None`` when
        the pool is empty. Two units of work taking at once never take the same code
        (PostgreSQL: ``FOR UPDATE SKIP LOCKED``)."""
        ...

    async def record(self, issued: IssuedOfferCode) -> None:
        """Write a generated code, ``issued`` to its message."""
        ...

    async def of_messages(self, message_keys: Collection[str]) -> dict[str, IssuedOfferCode]:
        """The code each of ``message_keys`` carries, for those that carry one."""
        ...

    async def release(self, message_keys: Collection[str]) -> int:
        """Give the pool codes of messages never sent back to their pools (a generated
        code is dropped); how many were."""
        ...

    async def definition(self, offer: str) -> Mapping[str, Any] | None:
        """The offer as stored (``parse_offer`` reads it); ``None`` if there is none."""
        ...

    async def free_count(self, offer: str) -> int:
        """How many codes ``offer``'s pool has left, as this unit of work sees it."""
        ...
