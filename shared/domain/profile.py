"""A buyer's profile and how each event changes it.

The profile is kept incrementally: every event is applied once (the segmenter
dedupes by ``event_id`` in the same transaction) and reports which profile fields
it changed, so only the segments that read those fields are evaluated again.

What each event type keeps:

- ``purchase``: orders, revenue, first and last order;
- ``refund``: refunds count and total, so net revenue is revenue less refunds
  (orders count and average check stay as they were: the order happened);
- ``identify``: traits (a ``null`` trait removes it) and consents per channel;
- ``track``: how often each named event happened, and when it last did;
- ``message_*``: engagement per channel (delivered, opens, clicks, bounces,
  complaints, last open and click); a hard bounce of the buyer's current address,
  or a complaint, suppresses the channel;
- ``unsubscribed``: consent for the channel withdrawn.

Counts add up whatever the order events come in; consents follow the order they
are applied in. A delivery report names the address the message went to, so it
never changes the buyer's contacts; a new email address (or phone) lifts a bounce
suppression of its channel, never a complaint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from shared.domain.events import (
    AnyEvent,
    IdentifyEvent,
    MessageBouncedEvent,
    MessageClickedEvent,
    MessageDeliveredEvent,
    MessageEvent,
    MessageOpenedEvent,
    PurchaseEvent,
    RefundEvent,
    Scalar,
    TrackEvent,
    UnsubscribedEvent,
)

__all__ = ["Engagement", "Profile", "ProfileMerged", "Tally", "absorb", "apply_event"]

CENT = Decimal("0.01")

Suppression = Literal["bounced", "complained"]
"""Why nudge no longer sends on a channel: a hard bounce, or a spam complaint."""


@dataclass
class Tally:
    """How often something happened, and when it last did."""

    count: int = 0
    last_at: datetime | None = None

    def add(self, at: datetime) -> None:
        self.count += 1
        self.last_at = _latest(self.last_at, at)

    def absorb(self, other: Tally) -> None:
        self.count += other.count
        self.last_at = _latest(self.last_at, other.last_at)


@dataclass
class Engagement:
    """What became of the messages sent to one buyer on one channel."""

    delivered: int = 0
    opens: int = 0
    clicks: int = 0
    bounces: int = 0
    complaints: int = 0
    last_open_at: datetime | None = None
    last_click_at: datetime | None = None

    def absorb(self, other: Engagement) -> None:
        self.delivered += other.delivered
        self.opens += other.opens
        self.clicks += other.clicks
        self.bounces += other.bounces
        self.complaints += other.complaints
        self.last_open_at = _latest(self.last_open_at, other.last_open_at)
        self.last_click_at = _latest(self.last_click_at, other.last_click_at)


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
    refunds_count: int = 0
    refunds_total: Decimal = Decimal("0.00")
    traits: dict[str, Scalar] = field(default_factory=dict)
    consents: dict[str, bool] = field(default_factory=dict)
    """Channel to consent given (``True``) or withdrawn (``False``); a missing channel: not said."""
    tracked: dict[str, Tally] = field(default_factory=dict)
    """Custom (``track``) event name to how often and when last."""
    engagement: dict[str, Engagement] = field(default_factory=dict)
    """Channel to what became of the messages sent on it."""
    suppressions: dict[str, Suppression] = field(default_factory=dict)
    """Channels nudge must not send on, whatever the consent, and why."""
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

    @property
    def net_revenue(self) -> Decimal:
        """Revenue less refunds."""
        return self.revenue_total - self.refunds_total

    def barred_from(self, channel: str) -> str | None:
        """Why nudge may not send on ``channel`` now, or ``None`` when it may.

        ``suppressed``: a hard bounce of the current address, or a complaint;
        ``unsubscribed``: consent withdrawn. A channel the buyer said nothing about
        is open: consent counts as given until withdrawn (opt-out).
        """
        if channel in self.suppressions:
            return "suppressed"
        if self.consents.get(channel) is False:
            return "unsubscribed"
        return None


@dataclass(frozen=True)
class ProfileMerged:
    """Two profiles turned out to be one buyer: ``absorbed`` lives on as ``survivor``."""

    absorbed: str
    survivor: str
    at: datetime


def apply_event(profile: Profile, event: AnyEvent) -> frozenset[str]:
    """Apply one event to ``profile`` in place; return the names of the fields it changed."""
    if isinstance(event, MessageEvent):
        return frozenset(_apply_message(profile, event))
    changed = _take_contacts(profile, event)
    if isinstance(event, PurchaseEvent):
        changed |= _apply_purchase(profile, event)
    elif isinstance(event, RefundEvent):
        changed |= _apply_refund(profile, event)
    elif isinstance(event, IdentifyEvent):
        changed |= _apply_identify(profile, event)
    elif isinstance(event, TrackEvent):
        profile.tracked.setdefault(event.data.name, Tally()).add(event.occurred_at)
        changed.add("tracked")
    elif (
        isinstance(event, UnsubscribedEvent)
        and profile.consents.get(event.data.channel) is not False
    ):
        profile.consents[event.data.channel] = False
        changed.add("consents")
    return frozenset(changed)


def _take_contacts(profile: Profile, event: AnyEvent) -> set[str]:
    changed: set[str] = set()
    customer = event.customer
    if customer.email is not None and customer.email != profile.email:
        profile.email = customer.email
        changed.add("email")
        changed |= _lift_bounce(profile, "email")
    if customer.phone is not None and customer.phone != profile.phone:
        profile.phone = customer.phone
        changed.add("phone")
        changed |= _lift_bounce(profile, "sms")
    return changed


def _lift_bounce(profile: Profile, channel: str) -> set[str]:
    """A new address for ``channel``: its bounce suppression was about the old one."""
    if profile.suppressions.get(channel) == "bounced":
        del profile.suppressions[channel]
        return {"suppressions"}
    return set()


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


def _apply_refund(profile: Profile, event: RefundEvent) -> set[str]:
    profile.refunds_count += 1
    profile.refunds_total += event.data.amount
    return {"refunds_count", "refunds_total", "net_revenue"}


def _apply_identify(profile: Profile, event: IdentifyEvent) -> set[str]:
    changed: set[str] = set()
    for name, value in event.data.traits.items():
        if value is None:
            if profile.traits.pop(name, None) is not None:
                changed.add("traits")
        elif not _same(profile.traits.get(name), value):
            profile.traits[name] = value
            changed.add("traits")
    for channel, given in event.data.consents.items():
        if profile.consents.get(channel) is not given:
            profile.consents[channel] = given
            changed.add("consents")
    return changed


def _same(kept: Scalar, value: Scalar) -> bool:
    """Equal and of one type: ``True`` is not the trait ``1``."""
    return type(kept) is type(value) and kept == value


def _apply_message(profile: Profile, event: MessageEvent) -> set[str]:
    channel, at = event.data.channel, event.occurred_at
    stats = profile.engagement.setdefault(channel, Engagement())
    changed = {"engagement"}
    if isinstance(event, MessageDeliveredEvent):
        stats.delivered += 1
    elif isinstance(event, MessageOpenedEvent):
        stats.opens += 1
        stats.last_open_at = _latest(stats.last_open_at, at)
    elif isinstance(event, MessageClickedEvent):
        stats.clicks += 1
        stats.last_click_at = _latest(stats.last_click_at, at)
    elif isinstance(event, MessageBouncedEvent):
        stats.bounces += 1
        if event.data.bounce == "hard" and _to_current_address(profile, event):
            changed |= _suppress(profile, channel, "bounced")
    else:  # message_complained
        stats.complaints += 1
        changed |= _suppress(profile, channel, "complained")
    return changed


def _to_current_address(profile: Profile, event: MessageBouncedEvent) -> bool:
    """Whether the bounce is about the address nudge sends to now (not one the buyer left)."""
    sent_to = {"email": event.customer.email, "sms": event.customer.phone}.get(event.data.channel)
    current = _address(profile, event.data.channel)
    return sent_to is None or current is None or sent_to == current


def _address(profile: Profile, channel: str) -> str | None:
    return {"email": profile.email, "sms": profile.phone}.get(channel)


def _suppress(profile: Profile, channel: str, why: Suppression) -> set[str]:
    """Suppress ``channel``; a complaint outranks a bounce (an address change lifts only this)."""
    if profile.suppressions.get(channel) in (why, "complained"):
        return set()
    profile.suppressions[channel] = why
    return {"suppressions"}


def absorb(survivor: Profile, other: Profile) -> None:
    """Fold ``other`` into ``survivor``: the same buyer, known twice until now.

    Orders, revenue, refunds, custom event and engagement counts add up, first and
    last moments widen, contacts the survivor lacks are taken from ``other``;
    traits and consents are the survivor's where it has them and ``other``'s
    elsewhere; a suppression carries over (a bounce only when the survivor keeps
    the address that bounced). The survivor's segments are evaluated afresh.
    ``other`` is left as a tombstone pointing at the survivor.
    """
    survivor.orders_count += other.orders_count
    survivor.revenue_total += other.revenue_total
    survivor.first_order_at = _earliest(survivor.first_order_at, other.first_order_at)
    survivor.last_order_at = _latest(survivor.last_order_at, other.last_order_at)
    survivor.refunds_count += other.refunds_count
    survivor.refunds_total += other.refunds_total
    survivor.email = survivor.email or other.email
    survivor.phone = survivor.phone or other.phone
    survivor.traits = {**other.traits, **survivor.traits}
    survivor.consents = {**other.consents, **survivor.consents}
    for name, tally in other.tracked.items():
        survivor.tracked.setdefault(name, Tally()).absorb(tally)
    for channel, stats in other.engagement.items():
        survivor.engagement.setdefault(channel, Engagement()).absorb(stats)
    for channel, why in other.suppressions.items():
        if why == "complained" or _address(survivor, channel) == _address(other, channel):
            _suppress(survivor, channel, why)
    survivor.evaluated_at = None  # evaluate every segment again
    other.merged_into = survivor.id
    other.next_timer_at = None


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(x for x in (a, b) if x is not None) if a or b else None


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(x for x in (a, b) if x is not None) if a or b else None
