"""Redemptions: a purchase that names a promo code nudge gave to a message.

:func:`redemptions` matches a purchase's ``promo_codes`` with the codes issued to
messages (a generated code as nudge writes it, :func:`~.codes.normalise_code`; a pool's
as uploaded) and says, for each, what the offer took off the order
(:meth:`~.model.Offer.discount_on`, on the items in the offer's scope when it has one).
The code names its message, so a buyer merged since (the message went to the profile
that was absorbed) redeems it all the same. A code counts once: the first purchase
that names it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from shared.domain.events import Item
from shared.domain.offers.codes import normalise_code
from shared.domain.offers.model import Offer

__all__ = ["Issued", "Redemption", "candidates", "redemptions"]


@dataclass(frozen=True)
class Issued:
    """A code given to a message, as kept."""

    offer: str
    code: str
    message_key: str


@dataclass(frozen=True)
class Redemption:
    offer: str
    code: str
    message_key: str
    order_id: str
    order_total: Decimal
    discount: Decimal
    redeemed_at: datetime


def candidates(codes: Iterable[str]) -> set[str]:
    """Each code as sent and as nudge writes a generated one: what to look the codes up by."""
    return {form for code in codes for form in (code, normalise_code(code))}


def redemptions(
    *,
    order_id: str,
    total: Decimal,
    items: Iterable[Item],
    codes: Iterable[str],
    at: datetime,
    issued: Iterable[Issued],
    offers: Mapping[str, Offer],
) -> list[Redemption]:
    """The redemptions of one purchase: one per code it names that was issued to a
    message and whose offer is known."""
    by_code: dict[str, Issued] = {}
    for found in issued:
        by_code.setdefault(found.code, found)
    bought = list(items)
    seen: set[tuple[str, str]] = set()
    found_now: list[Redemption] = []
    for code in codes:
        match = by_code.get(code) or by_code.get(normalise_code(code))
        if match is None or match.offer not in offers or (match.offer, match.code) in seen:
            continue
        seen.add((match.offer, match.code))
        offer = offers[match.offer]
        found_now.append(
            Redemption(
                match.offer,
                match.code,
                match.message_key,
                order_id,
                total,
                offer.discount_on(_in_scope(offer, total, bought)),
                at,
            )
        )
    return found_now


def _in_scope(offer: Offer, total: Decimal, items: list[Item]) -> Decimal:
    """What of the order the offer applies to: the whole total, or its items in scope."""
    if offer.scope.whole_order or not items:
        return total
    scope = offer.scope
    return sum(
        (
            item.price * item.quantity
            for item in items
            if item.sku in scope.skus
            or (item.category is not None and item.category in scope.categories)
        ),
        Decimal("0.00"),
    )
