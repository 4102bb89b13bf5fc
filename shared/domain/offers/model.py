"""An offer: what a message gives the buyer (a discount, free delivery, bonus points),
until when, on what, and where its promo codes come from.

An :class:`Offer` is written as JSON (docs/offers.md) and read by
:func:`~shared.domain.offers.parsing.parse_offer`; :meth:`Offer.to_dict` writes it back.
A message that carries an offer carries one promo code of it (an :class:`IssuedCode`),
and :func:`offer_context` is what its template sees as ``offer``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final, Literal, get_args

__all__ = [
    "KINDS",
    "CodeSource",
    "DaysAfterSend",
    "GeneratedCodes",
    "IssuedCode",
    "Kind",
    "Offer",
    "PoolCodes",
    "Scope",
    "Until",
    "Validity",
    "offer_context",
]

Kind = Literal["percent", "fixed", "free_delivery", "bonus_points"]
KINDS: Final[tuple[Kind, ...]] = get_args(Kind)


@dataclass(frozen=True)
class DaysAfterSend:
    """Valid for ``days`` days from the moment the message is sent."""

    days: int

    def expires_at(self, sent_at: datetime) -> datetime:
        return sent_at + timedelta(days=self.days)

    def to_dict(self) -> dict[str, Any]:
        return {"days_after_send": self.days}


@dataclass(frozen=True)
class Until:
    """Valid until a fixed moment, the same for every message (exclusive)."""

    moment: datetime
    written: str
    """As the marketer wrote it: a date (valid through that day, UTC) or a moment."""

    def expires_at(self, sent_at: datetime) -> datetime:
        return self.moment

    def to_dict(self) -> dict[str, Any]:
        return {"until": self.written}

    @classmethod
    def of_date(cls, day: date) -> Until:
        """Through the whole of ``day`` in UTC: until the next midnight."""
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)
        return cls(end, day.isoformat())


Validity = DaysAfterSend | Until


@dataclass(frozen=True)
class Scope:
    """What the offer applies to: some categories and SKUs, or (both empty) the whole order."""

    categories: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()

    @property
    def whole_order(self) -> bool:
        return not self.categories and not self.skus

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {}
        if self.categories:
            document["categories"] = list(self.categories)
        if self.skus:
            document["skus"] = list(self.skus)
        return document


@dataclass(frozen=True)
class PoolCodes:
    """Codes the shop uploads (CSV); each is given to one message. Below ``low_at`` codes
    left, each assignment warns; with none left, a message gets no code (a recorded
    outcome, not a failure of the dispatcher)."""

    low_at: int = 100

    def to_dict(self) -> dict[str, Any]:
        return {"source": "pool", "low_at": self.low_at}


@dataclass(frozen=True)
class GeneratedCodes:
    """Codes nudge makes per message, signed so a checkout verifies them offline
    (:mod:`shared.domain.offers.codes`); ``prefix`` starts each, for people and for the
    checkout to know which offer a code claims to be of."""

    prefix: str

    def to_dict(self) -> dict[str, Any]:
        return {"source": "generated", "prefix": self.prefix}


CodeSource = PoolCodes | GeneratedCodes


@dataclass(frozen=True)
class Offer:
    """A named offer; build it from JSON with :func:`~.parsing.parse_offer`.

    ``value``: the percent off (``10`` is 10%), the amount off in the shop's currency,
    the bonus points; ``None`` for free delivery.
    """

    key: str
    name: str
    kind: Kind
    value: Decimal | None
    validity: Validity
    codes: CodeSource = field(default_factory=PoolCodes)
    min_order: Decimal | None = None
    scope: Scope = field(default_factory=Scope)

    def expires_at(self, sent_at: datetime) -> datetime:
        """When a code of this offer sent at ``sent_at`` stops being valid."""
        return self.validity.expires_at(sent_at)

    def discount_on(self, total: Decimal) -> Decimal:
        """What the offer takes off an order of ``total`` (scope aside: the whole order
        is taken as in scope): nothing below the minimum order, never more than the
        order; free delivery and bonus points take nothing off the price."""
        if self.min_order is not None and total < self.min_order:
            return Decimal("0.00")
        if self.kind == "percent" and self.value is not None:
            return (total * self.value / 100).quantize(Decimal("0.01"))
        if self.kind == "fixed" and self.value is not None:
            return min(self.value, total)
        return Decimal("0.00")

    def to_dict(self) -> dict[str, Any]:
        """The offer as JSON-shaped data; :func:`parse_offer` reads it back."""
        document: dict[str, Any] = {
            "key": self.key,
            "name": self.name,
            "kind": self.kind,
            "valid": self.validity.to_dict(),
            "codes": self.codes.to_dict(),
        }
        if self.value is not None:
            document["value"] = str(self.value)
        if self.min_order is not None:
            document["min_order"] = str(self.min_order)
        if not self.scope.whole_order:
            document["scope"] = self.scope.to_dict()
        return document


@dataclass(frozen=True)
class IssuedCode:
    """The promo code one message carries, and until when it is valid."""

    offer: str
    code: str
    expires_at: datetime


def offer_context(offer: Offer, issued: IssuedCode) -> Mapping[str, Any]:
    """What a template sees as ``offer`` for a message that carries ``issued``:
    ``code``, ``value`` (``"10%"``, ``"500"``, ``"300 points"``, ``"free delivery"``),
    ``amount`` (the bare number, or ``None``), ``kind``, ``expires_at``, ``min_order``."""
    return {
        "key": offer.key,
        "kind": offer.kind,
        "code": issued.code,
        "value": _value_words(offer),
        "amount": offer.value,
        "expires_at": issued.expires_at,
        "min_order": offer.min_order,
    }


def _value_words(offer: Offer) -> str:
    if offer.kind == "percent":
        return f"{offer.value}%"
    if offer.kind == "bonus_points":
        return f"{offer.value} points"
    if offer.kind == "free_delivery":
        return "free delivery"
    return str(offer.value)
