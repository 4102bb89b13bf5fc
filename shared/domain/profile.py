"""A buyer's profile and how each event changes it.

The profile is kept incrementally: every event is applied once (the segmenter
dedupes by ``event_id`` in the same transaction) and reports which profile fields
it changed, so only the segments that read those fields are evaluated again.

What each event type keeps:

- ``purchase``: orders, revenue, first and last order; the moments of the last
  :data:`ORDER_HISTORY` orders (the buyer's rhythm: days between orders and the
  expected next order); the SKUs and quantities of the last :data:`BASKET_HISTORY`
  orders (the standard basket); per category, SKU and store how many orders held
  it, how many units and when last;
- ``refund``: refunds count and total, so net revenue is revenue less refunds
  (orders count and average check stay as they were: the order happened);
- ``identify``: traits (a ``null`` trait removes it) and consents per channel;
- ``track``: how often each named event happened, and when it last did; per name
  and UTC day, how often, for the last :data:`TRACK_HORIZON_DAYS` days;
- ``message_*``: engagement per channel (delivered, opens, clicks, bounces,
  complaints, last open and click); opens per channel by the buyer's local hour
  (the ``timezone`` trait, else the zone given to :func:`apply_event`, UTC by
  default); a hard bounce of the buyer's current address, or a complaint,
  suppresses the channel;
- ``unsubscribed``: consent for the channel withdrawn.

Counts add up whatever the order events come in; consents follow the order they
are applied in. A delivery report names the address the message went to, so it
never changes the buyer's contacts; a new email address (or phone) lifts a bounce
suppression of its channel, never a complaint.

The scores (RFM, BG/NBD and Gamma-Gamma predictions, CLV) are not kept event by
event: a base-wide scoring job computes them and sets them with
:func:`apply_scores`, which reports the score fields it changed like an event does.
"""

from __future__ import annotations

import bisect
import statistics
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from itertools import pairwise
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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

__all__ = [
    "BASKET_HISTORY",
    "DEFAULT_TIMEZONE",
    "ORDER_HISTORY",
    "SCORE_FIELDS",
    "TRACK_HORIZON_DAYS",
    "Basket",
    "Engagement",
    "Profile",
    "ProfileMerged",
    "Purchases",
    "Scores",
    "Tally",
    "absorb",
    "apply_event",
    "apply_scores",
    "local_hour",
    "local_zone",
    "time_zone",
]

CENT = Decimal("0.01")

ORDER_HISTORY = 100
"""How many of the buyer's latest order moments are kept: enough for a rhythm, bounded."""

BASKET_HISTORY = 20
"""How many of the buyer's latest orders keep their SKUs and quantities (the standard basket)."""

TRACK_HORIZON_DAYS = 400
"""How many days of per-day custom event counts are kept, counted back from the newest day."""

DEFAULT_TIMEZONE = "UTC"
"""The zone a buyer's local hour is read in when the buyer has no valid ``timezone`` trait."""

HOURS = 24
_DAY_SECONDS = 86_400.0

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
class Purchases:
    """How many orders held something (a category, a SKU, a store), how many units, when last."""

    orders: int = 0
    quantity: int = 0
    last_at: datetime | None = None

    def add(self, quantity: int, at: datetime) -> None:
        self.orders += 1
        self.quantity += quantity
        self.last_at = _latest(self.last_at, at)

    def absorb(self, other: Purchases) -> None:
        self.orders += other.orders
        self.quantity += other.quantity
        self.last_at = _latest(self.last_at, other.last_at)


@dataclass
class Basket:
    """One order's SKUs and the quantity of each."""

    at: datetime
    items: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Scores:
    """What the base-wide scoring job says of one buyer (see :func:`apply_scores`)."""

    rfm_r: int | None = None
    rfm_f: int | None = None
    rfm_m: int | None = None
    rfm_segment: str | None = None
    p_alive: float | None = None
    expected_purchases: float | None = None
    expected_spend: Decimal | None = None
    clv: Decimal | None = None
    clv_share: float | None = None
    clv_low: Decimal | None = None
    clv_high: Decimal | None = None
    scored_at: datetime | None = None


SCORE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Scores))
"""The profile fields the scoring job sets, by the names a rule reads them under."""


@dataclass(frozen=True)
class _Rhythm:
    """The gaps between a buyer's order moments, and their median and mean, in days."""

    moments: tuple[datetime, ...]
    gaps: tuple[float, ...]
    median: float | None
    mean: float | None

    @classmethod
    def of(cls, moments: tuple[datetime, ...]) -> _Rhythm:
        gaps = tuple((b - a).total_seconds() / _DAY_SECONDS for a, b in pairwise(moments))
        if not gaps:
            return cls(moments, gaps, None, None)
        return cls(moments, gaps, _median(list(gaps)), sum(gaps) / len(gaps))


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
    order_moments: list[datetime] = field(default_factory=list)
    """The moments of the latest :data:`ORDER_HISTORY` orders, earliest first."""
    baskets: list[Basket] = field(default_factory=list)
    """The SKUs of the latest :data:`BASKET_HISTORY` orders that named items, earliest first."""
    categories: dict[str, Purchases] = field(default_factory=dict)
    """Category to the orders that held it (all orders, not only the kept history)."""
    skus: dict[str, Purchases] = field(default_factory=dict)
    """SKU to the orders that held it."""
    stores: dict[str, Purchases] = field(default_factory=dict)
    """Store (the purchase event's ``store_id``) to the orders placed there."""
    tracked_days: dict[str, dict[date, int]] = field(default_factory=dict)
    """Custom event name to UTC day to how often, for the last :data:`TRACK_HORIZON_DAYS` days."""
    open_hours: dict[str, list[int]] = field(default_factory=dict)
    """Channel to 24 counters: the buyer's opens by local hour (0-23)."""
    rfm_r: int | None = None
    """Recency score 1-5 (5: the most recent fifth of the base); set by the scoring job."""
    rfm_f: int | None = None
    """Frequency score 1-5."""
    rfm_m: int | None = None
    """Monetary score 1-5."""
    rfm_segment: str | None = None
    """The named RFM segment (``champions``, ``at_risk``, ...)."""
    p_alive: float | None = None
    """BG/NBD probability that the buyer is still a customer."""
    expected_purchases: float | None = None
    """BG/NBD expected purchases over the scoring job's horizon."""
    expected_spend: Decimal | None = None
    """Gamma-Gamma expected average order value."""
    clv: Decimal | None = None
    """Customer lifetime value over the scoring job's horizon."""
    clv_share: float | None = None
    """The buyer's rank in the base by CLV as a share: 0 is the top, 0.1 the top tenth's edge."""
    clv_low: Decimal | None = None
    """The low end of the CLV's interval (``NUDGE_CLV_INTERVAL``, 90% by default), from
    the fitted parameters' uncertainty; ``None`` under a fallback model."""
    clv_high: Decimal | None = None
    """The high end of the CLV's interval."""
    scored_at: datetime | None = None
    """When the scores were computed."""
    next_timer_at: datetime | None = None
    """The next moment any of the buyer's memberships can flip with no event."""
    evaluated_at: datetime | None = None
    """When the buyer's segments were last evaluated; ``None`` for a buyer never evaluated."""
    merged_into: str | None = None
    """Set once this profile turned out to be another buyer's: the survivor's id."""
    _rhythm: _Rhythm | None = field(default=None, init=False, repr=False, compare=False)
    """The gaps of the order moments they were computed from: rules ask many times."""

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

    @property
    def days_between_orders(self) -> list[float]:
        """The gaps between consecutive kept orders, in days (fractional)."""
        return list(self._rhythm_now().gaps)

    @property
    def median_days_between_orders(self) -> float | None:
        """The buyer's usual gap between orders, in days; ``None`` before the second order."""
        return self._rhythm_now().median

    @property
    def mean_days_between_orders(self) -> float | None:
        """The mean gap between orders, in days; ``None`` before the second order."""
        return self._rhythm_now().mean

    def _rhythm_now(self) -> _Rhythm:
        moments = tuple(self.order_moments)
        if self._rhythm is None or self._rhythm.moments != moments:
            self._rhythm = _Rhythm.of(moments)
        return self._rhythm

    @property
    def expected_next_order_at(self) -> datetime | None:
        """The last order plus the median gap: when the buyer's rhythm says they order next."""
        median = self.median_days_between_orders
        last = self.last_order_at or (self.order_moments[-1] if self.order_moments else None)
        if median is None or last is None:
            return None
        return last + timedelta(days=median)

    @property
    def standard_basket(self) -> list[tuple[str, int]]:
        """The SKUs in at least half of the kept orders, with their median quantity.

        Empty before two orders with items: one order is no habit. The most frequent
        SKUs come first, then by SKU.
        """
        if len(self.baskets) < 2:
            return []
        quantities: dict[str, list[int]] = {}
        for basket in self.baskets:
            for sku, quantity in basket.items.items():
                quantities.setdefault(sku, []).append(quantity)
        usual = [
            (sku, _round_half_up(statistics.median(q)))
            for sku, q in quantities.items()
            if 2 * len(q) >= len(self.baskets)
        ]
        return sorted(usual, key=lambda pair: (-len(quantities[pair[0]]), pair[0]))

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


def apply_event(
    profile: Profile, event: AnyEvent, *, default_timezone: str = DEFAULT_TIMEZONE
) -> frozenset[str]:
    """Apply one event to ``profile`` in place; return the names of the fields it changed.

    ``default_timezone`` (an IANA name) is the zone an email open's local hour is read
    in when the buyer has no valid ``timezone`` trait.
    """
    if isinstance(event, MessageEvent):
        return frozenset(_apply_message(profile, event, default_timezone))
    changed = _take_contacts(profile, event)
    if isinstance(event, PurchaseEvent):
        changed |= _apply_purchase(profile, event)
    elif isinstance(event, RefundEvent):
        changed |= _apply_refund(profile, event)
    elif isinstance(event, IdentifyEvent):
        changed |= _apply_identify(profile, event)
    elif isinstance(event, TrackEvent):
        profile.tracked.setdefault(event.data.name, Tally()).add(event.occurred_at)
        days = profile.tracked_days.setdefault(event.data.name, {})
        day = event.occurred_at.astimezone(UTC).date()
        days[day] = days.get(day, 0) + 1
        _prune_days(days)
        changed |= {"tracked", "tracked_days"}
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
    changed = {"orders_count", "revenue_total", "avg_check", "net_revenue"}
    if profile.first_order_at is None or at < profile.first_order_at:
        profile.first_order_at = at
        changed.add("first_order_at")
    if profile.last_order_at is None or at > profile.last_order_at:
        profile.last_order_at = at
        changed.add("last_order_at")
    if _insert_bounded(profile.order_moments, at, ORDER_HISTORY):
        changed.add("order_moments")
    quantities: dict[str, int] = {}
    categories: dict[str, int] = {}
    for item in event.data.items:
        quantities[item.sku] = quantities.get(item.sku, 0) + item.quantity
        if item.category is not None:
            categories[item.category] = categories.get(item.category, 0) + item.quantity
    for sku, quantity in quantities.items():
        profile.skus.setdefault(sku, Purchases()).add(quantity, at)
    for category, quantity in categories.items():
        profile.categories.setdefault(category, Purchases()).add(quantity, at)
    if quantities:
        changed.add("skus")
        if _insert_basket(profile.baskets, Basket(at, quantities)):
            changed.add("baskets")
    if categories:
        changed.add("categories")
    if event.store_id is not None:
        profile.stores.setdefault(event.store_id, Purchases()).add(sum(quantities.values()), at)
        changed.add("stores")
    return changed


def _insert_bounded(moments: list[datetime], at: datetime, bound: int) -> bool:
    """Insert ``at`` in order, keeping the latest ``bound``; whether the list changed."""
    if len(moments) >= bound and at < moments[0]:
        return False
    bisect.insort(moments, at)
    del moments[: max(0, len(moments) - bound)]
    return True


def _insert_basket(baskets: list[Basket], basket: Basket) -> bool:
    """Insert ``basket`` in order of time, keeping the latest :data:`BASKET_HISTORY`."""
    if len(baskets) >= BASKET_HISTORY and basket.at < baskets[0].at:
        return False
    bisect.insort(baskets, basket, key=lambda b: b.at)
    del baskets[: max(0, len(baskets) - BASKET_HISTORY)]
    return True


def _prune_days(days: dict[date, int]) -> None:
    """Drop the days more than :data:`TRACK_HORIZON_DAYS` before the newest one."""
    if not days:
        return
    oldest = max(days) - timedelta(days=TRACK_HORIZON_DAYS - 1)
    for day in [d for d in days if d < oldest]:
        del days[day]


def _median(values: list[float]) -> float:
    """The median, on plain floats (``statistics.median`` is slower, for exactness not needed)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _round_half_up(value: float) -> int:
    return int(Decimal(str(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


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


def _apply_message(profile: Profile, event: MessageEvent, default_timezone: str) -> set[str]:
    channel, at = event.data.channel, event.occurred_at
    stats = profile.engagement.setdefault(channel, Engagement())
    changed = {"engagement"}
    if isinstance(event, MessageDeliveredEvent):
        stats.delivered += 1
    elif isinstance(event, MessageOpenedEvent):
        stats.opens += 1
        stats.last_open_at = _latest(stats.last_open_at, at)
        hours = profile.open_hours.setdefault(channel, [0] * HOURS)
        hours[local_hour(profile, at, default_timezone)] += 1
        changed.add("open_hours")
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


def local_hour(profile: Profile, at: datetime, default_timezone: str = DEFAULT_TIMEZONE) -> int:
    """The hour (0-23) of ``at`` on the buyer's clock: the ``timezone`` trait, else the default."""
    return at.astimezone(local_zone(profile, default_timezone)).hour


def local_zone(profile: Profile, default_timezone: str = DEFAULT_TIMEZONE) -> ZoneInfo:
    """The buyer's time zone: the ``timezone`` trait if it names one, else
    ``default_timezone`` if it names one, else UTC."""
    name = profile.traits.get("timezone")
    zone = time_zone(name) if isinstance(name, str) else None
    return zone or time_zone(default_timezone) or ZoneInfo("UTC")


@lru_cache(maxsize=512)
def time_zone(name: str) -> ZoneInfo | None:
    """The IANA time zone ``name`` names, or ``None`` if it names none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def apply_scores(profile: Profile, scores: Scores) -> frozenset[str]:
    """Set the scoring job's scores on ``profile``; return the names of the fields changed.

    The names are those of :data:`SCORE_FIELDS`; the segmenter evaluates only the
    segments that read one of them, as for an event.
    """
    changed: set[str] = set()
    for name in SCORE_FIELDS:
        value = getattr(scores, name)
        if getattr(profile, name) != value:
            setattr(profile, name, value)
            changed.add(name)
    return frozenset(changed)


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

    Orders, revenue, refunds, custom event and engagement counts add up (each order
    once: the two profiles never saw the same event), first and last moments widen,
    contacts the survivor lacks are taken from ``other``; traits and consents are
    the survivor's where it has them and ``other``'s elsewhere; a suppression
    carries over (a bounce only when the survivor keeps the address that bounced).
    The behaviour adds up too (see :func:`_absorb_behaviour`). The survivor's
    segments are evaluated afresh.
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
    _absorb_behaviour(survivor, other)
    survivor.evaluated_at = None  # evaluate every segment again
    other.merged_into = survivor.id
    other.next_timer_at = None


def _absorb_behaviour(survivor: Profile, other: Profile) -> None:
    """Order moments and baskets interleave (the latest kept); purchases per category,
    SKU and store, per-day custom events and opens by hour add up; the scores are the
    survivor's, or ``other``'s when the survivor was never scored (the next scoring run
    scores the buyer as one)."""
    for at in other.order_moments:
        _insert_bounded(survivor.order_moments, at, ORDER_HISTORY)
    for basket in other.baskets:
        _insert_basket(survivor.baskets, Basket(basket.at, dict(basket.items)))
    for mine, theirs in (
        (survivor.categories, other.categories),
        (survivor.skus, other.skus),
        (survivor.stores, other.stores),
    ):
        for key, bought in theirs.items():
            mine.setdefault(key, Purchases()).absorb(bought)
    for name, other_days in other.tracked_days.items():
        days = survivor.tracked_days.setdefault(name, {})
        for day, count in other_days.items():
            days[day] = days.get(day, 0) + count
        _prune_days(days)
    for channel, other_hours in other.open_hours.items():
        hours = survivor.open_hours.setdefault(channel, [0] * HOURS)
        survivor.open_hours[channel] = [a + b for a, b in zip(hours, other_hours, strict=True)]
    if survivor.scored_at is None and other.scored_at is not None:
        for name in SCORE_FIELDS:
            setattr(survivor, name, getattr(other, name))


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(x for x in (a, b) if x is not None) if a or b else None


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(x for x in (a, b) if x is not None) if a or b else None
