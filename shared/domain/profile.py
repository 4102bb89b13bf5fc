"""A buyer's profile and how each event changes it.

The profile is kept incrementally: every event is applied once (the segmenter
dedupes by ``event_id`` in the same transaction) and reports which profile fields
it changed, so only the segments that read those fields are evaluated again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from shared.domain.events import IdentifyEvent, PurchaseEvent

__all__ = ["Profile", "ProfileMerged", "absorb", "apply_event"]

CENT = Decimal("0.01")


@dataclass
class Profile:
    """What nudge knows of one buyer."""

    id: str
    email: str | None = None
    phone: str | None = None
    orders_count: int = 0
    revenue_total: Decimal = Decimal("0.00")
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None
    next_timer_at: datetime | None = None
    """The next moment any of the buyer's memberships can flip with no event."""
    evaluated_at: datetime | None = None
    """When the buyer's segments were last evaluated; ``None`` for a buyer never evaluated."""
    merged_into: str | None = None
    """Set once this profile turned out to be another buyer's: the survivor's id."""

    @property
    def avg_check(self) -> Decimal | None:
        """Average order value, or ``None`` before the first order."""
        if self.orders_count == 0:
            return None
        return (self.revenue_total / self.orders_count).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class ProfileMerged:
    """Two profiles turned out to be one buyer: ``absorbed`` lives on as ``survivor``."""

    absorbed: str
    survivor: str
    at: datetime


def apply_event(profile: Profile, event: PurchaseEvent | IdentifyEvent) -> frozenset[str]:
    """Apply one event to ``profile`` in place; return the names of the fields it changed."""
    changed = _take_contacts(profile, event)
    if isinstance(event, PurchaseEvent):
        changed |= _apply_purchase(profile, event)
    return frozenset(changed)


def _take_contacts(profile: Profile, event: PurchaseEvent | IdentifyEvent) -> set[str]:
    changed: set[str] = set()
    customer = event.customer
    if customer.email is not None and customer.email != profile.email:
        profile.email = customer.email
        changed.add("email")
    if customer.phone is not None and customer.phone != profile.phone:
        profile.phone = customer.phone
        changed.add("phone")
    return changed


def _apply_purchase(profile: Profile, event: PurchaseEvent) -> set[str]:
    at = event.occurred_at
    profile.orders_count += 1
    profile.revenue_total += event.data.total
    changed = {"orders_count", "revenue_total", "avg_check"}
    if profile.first_order_at is None or at < profile.first_order_at:
        profile.first_order_at = at
        changed.add("first_order_at")
    if profile.last_order_at is None or at > profile.last_order_at:
        profile.last_order_at = at
        changed.add("last_order_at")
    return changed


def absorb(survivor: Profile, other: Profile) -> None:
    """Fold ``other`` into ``survivor``: the same buyer, known twice until now.

    Orders and revenue add up, first and last order widen, contacts the survivor
    lacks are taken from ``other``; the survivor's segments are evaluated afresh.
    ``other`` is left as a tombstone pointing at the survivor.
    """
    survivor.orders_count += other.orders_count
    survivor.revenue_total += other.revenue_total
    survivor.first_order_at = _earliest(survivor.first_order_at, other.first_order_at)
    survivor.last_order_at = _latest(survivor.last_order_at, other.last_order_at)
    survivor.email = survivor.email or other.email
    survivor.phone = survivor.phone or other.phone
    survivor.evaluated_at = None  # evaluate every segment again
    other.merged_into = survivor.id
    other.next_timer_at = None


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(x for x in (a, b) if x is not None) if a or b else None


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(x for x in (a, b) if x is not None) if a or b else None
