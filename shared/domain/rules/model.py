"""The conditions of the segment rule language, each evaluated on plain data.

Every condition answers three questions about a buyer's profile at a given moment:

- ``holds(profile, now)``: is it true for this buyer now?
- ``reads``: which profile fields can change its answer (so an event that
  changed none of them need not evaluate it again);
- ``next_change(profile, now)``: the next moment its answer can flip with no
  event at all (``older_than 30d`` flips 30 days after the last order), or
  ``None`` when only an event can change it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Literal

from shared.domain.lifecycle import (
    DEFAULT_POLICY,
    LIFECYCLE_READS,
    LifecyclePolicy,
    Stage,
    next_stage_change,
    stage,
)
from shared.domain.profile import Profile, Purchases

__all__ = [
    "BOUGHT_KINDS",
    "NUMERIC_STATS",
    "RHYTHM_MEASURES",
    "RHYTHM_READS",
    "TIME_STATS",
    "AllOf",
    "AnyOf",
    "Bought",
    "ClvCompare",
    "ClvTopShare",
    "Condition",
    "EventCount",
    "ExpectedOrderDue",
    "ExpectedOrderOverdue",
    "LifecycleIs",
    "Not",
    "OpensAtHours",
    "PAlive",
    "RfmScoreIn",
    "RfmSegment",
    "RhythmCompare",
    "SegmentRef",
    "StatCompare",
    "StatTime",
    "TraitCompare",
    "TraitEquals",
    "TraitExists",
    "TraitValue",
]


class Condition(ABC):
    """One node of a rule tree."""

    @property
    @abstractmethod
    def reads(self) -> frozenset[str]:
        """The profile fields whose change can change this condition's answer."""

    @abstractmethod
    def holds(self, profile: Profile, now: datetime) -> bool:
        """Whether the condition is true for ``profile`` at ``now``."""

    @abstractmethod
    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        """The earliest moment after ``now`` at which the answer can flip with no event."""


# --- stats ---------------------------------------------------------------------------


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


NUMERIC_STATS: dict[str, Callable[[Profile], Decimal | int | None]] = {
    "orders_count": lambda p: p.orders_count,
    "revenue_total": lambda p: p.revenue_total,
    "avg_check": lambda p: p.avg_check,
    "refunds_count": lambda p: p.refunds_count,
    "refunds_total": lambda p: p.refunds_total,
    "net_revenue": lambda p: p.net_revenue,
    "expected_purchases": lambda p: _decimal(p.expected_purchases),
    "expected_spend": lambda p: p.expected_spend,
}
TIME_STATS: dict[str, Callable[[Profile], datetime | None]] = {
    "first_order_at": lambda p: p.first_order_at,
    "last_order_at": lambda p: p.last_order_at,
}


@dataclass(frozen=True)
class StatCompare(Condition):
    """A numeric stat compared with bounds: ``{stat: avg_check, between: [4000, 6000]}``."""

    stat: str
    low: Decimal | None
    high: Decimal | None

    @property
    def reads(self) -> frozenset[str]:
        return frozenset({self.stat})

    def holds(self, profile: Profile, now: datetime) -> bool:
        return _within_bounds(NUMERIC_STATS[self.stat](profile), self.low, self.high)

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        return None


def _within_bounds(value: Decimal | int | None, low: Decimal | None, high: Decimal | None) -> bool:
    """Inclusive bounds; an unset value is within none."""
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value <= high)


@dataclass(frozen=True)
class StatTime(Condition):
    """A timestamp stat against the clock.

    ``older_than``: the moment lies more than ``age`` in the past (false while it is unset);
    ``within``: the moment lies at most ``age`` in the past.
    """

    stat: str
    age: timedelta
    older: bool

    @property
    def reads(self) -> frozenset[str]:
        return frozenset({self.stat})

    def holds(self, profile: Profile, now: datetime) -> bool:
        moment = TIME_STATS[self.stat](profile)
        if moment is None:
            return False
        is_older = now - moment >= self.age
        return is_older if self.older else not is_older

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        moment = TIME_STATS[self.stat](profile)
        if moment is None:
            return None
        flip = moment + self.age
        return flip if flip > now else None


# --- traits --------------------------------------------------------------------------

TraitValue = str | int | float | bool


def _same_value(kept: object, wanted: TraitValue) -> bool:
    """Equal as a marketer means it: numbers by value (``2`` is ``2.0``), never a boolean."""
    if isinstance(kept, bool) or isinstance(wanted, bool):
        return kept is wanted
    if isinstance(kept, int | float) and isinstance(wanted, int | float):
        return kept == wanted
    return type(kept) is type(wanted) and kept == wanted


@dataclass(frozen=True)
class TraitEquals(Condition):
    """A trait equal to one of some values: ``{trait: region, in: [CFD, NWFD]}`` (``eq``: one)."""

    name: str
    values: tuple[TraitValue, ...]

    @property
    def reads(self) -> frozenset[str]:
        return frozenset({"traits"})

    def holds(self, profile: Profile, now: datetime) -> bool:
        if self.name not in profile.traits:
            return False
        kept = profile.traits[self.name]
        return any(_same_value(kept, wanted) for wanted in self.values)

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        return None


@dataclass(frozen=True)
class TraitExists(Condition):
    """A trait known (``{trait: has_kids, exists: true}``) or not known (``exists: false``)."""

    name: str
    present: bool

    @property
    def reads(self) -> frozenset[str]:
        return frozenset({"traits"})

    def holds(self, profile: Profile, now: datetime) -> bool:
        return (self.name in profile.traits) is self.present

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        return None


@dataclass(frozen=True)
class TraitCompare(Condition):
    """A numeric trait within bounds: ``{trait: kids, at_least: 2}``; false for a non-number."""

    name: str
    low: Decimal | None
    high: Decimal | None

    @property
    def reads(self) -> frozenset[str]:
        return frozenset({"traits"})

    def holds(self, profile: Profile, now: datetime) -> bool:
        kept = profile.traits.get(self.name)
        if isinstance(kept, bool) or not isinstance(kept, int | float):
            return False
        return _within_bounds(Decimal(str(kept)), self.low, self.high)

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        return None


# --- rhythm --------------------------------------------------------------------------

RHYTHM_READS = frozenset({"order_moments", "last_order_at"})
"""The rhythm comes from the kept order moments, and the next order from the last one."""

RHYTHM_MEASURES: dict[str, Callable[[Profile], float | None]] = {
    "median_days_between_orders": lambda p: p.median_days_between_orders,
    "mean_days_between_orders": lambda p: p.mean_days_between_orders,
}


@dataclass(frozen=True)
class RhythmCompare(Condition):
    """Days between orders within bounds: ``{rhythm: median_days_between_orders, between:
    [25, 35]}``; false before the second order."""

    measure: str
    low: Decimal | None
    high: Decimal | None

    @property
    def reads(self) -> frozenset[str]:
        return RHYTHM_READS

    def holds(self, profile: Profile, now: datetime) -> bool:
        return _within_bounds(_decimal(RHYTHM_MEASURES[self.measure](profile)), self.low, self.high)

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        return None


@dataclass(frozen=True)
class ExpectedOrderDue(Condition):
    """The expected next order is at most ``window`` ahead and not yet passed:
    ``{rhythm: expected_next_order_at, within: 3d}`` holds from 3 days before it until it."""

    window: timedelta

    @property
    def reads(self) -> frozenset[str]:
        return RHYTHM_READS

    def holds(self, profile: Profile, now: datetime) -> bool:
        expected = profile.expected_next_order_at
        return expected is not None and expected - self.window <= now < expected

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        expected = profile.expected_next_order_at
        if expected is None:
            return None
        return _earliest(m for m in (expected - self.window, expected) if m > now)


@dataclass(frozen=True)
class ExpectedOrderOverdue(Condition):
    """The expected next order passed at least ``by`` ago:
    ``{rhythm: expected_next_order_at, overdue_by: 7d}``."""

    by: timedelta

    @property
    def reads(self) -> frozenset[str]:
        return RHYTHM_READS

    def holds(self, profile: Profile, now: datetime) -> bool:
        expected = profile.expected_next_order_at
        return expected is not None and now >= expected + self.by

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        expected = profile.expected_next_order_at
        if expected is None:
            return None
        flip = expected + self.by
        return flip if flip > now else None


# --- purchases -----------------------------------------------------------------------

BOUGHT_KINDS: dict[str, Callable[[Profile], dict[str, Purchases]]] = {
    "category": lambda p: p.categories,
    "sku": lambda p: p.skus,
    "store": lambda p: p.stores,
}
"""What ``bought`` can name, and where the profile keeps it (field ``categories`` and so on)."""

_BOUGHT_FIELDS = {"category": "categories", "sku": "skus", "store": "stores"}


@dataclass(frozen=True)
class Bought(Condition):
    """Bought a category, SKU or store: ever, ``within`` a period, or ``not_within`` it.

    ``{bought: {category: pet-food}, within: 90d}`` holds while the last such order is
    less than 90 days old; ``not_within: 90d`` is its negation (true for a buyer who
    never bought it).
    """

    kind: Literal["category", "sku", "store"]
    key: str
    window: timedelta | None = None
    negated: bool = False

    @property
    def reads(self) -> frozenset[str]:
        return frozenset({_BOUGHT_FIELDS[self.kind]})

    def _last(self, profile: Profile) -> datetime | None:
        found = BOUGHT_KINDS[self.kind](profile).get(self.key)
        return None if found is None else found.last_at

    def holds(self, profile: Profile, now: datetime) -> bool:
        last = self._last(profile)
        recent = last is not None and (self.window is None or now - last < self.window)
        return recent is not self.negated

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        last = self._last(profile)
        if last is None or self.window is None:
            return None
        flip = last + self.window
        return flip if flip > now else None


# --- custom events -------------------------------------------------------------------


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


@dataclass(frozen=True)
class EventCount(Condition):
    """How often a custom (``track``) event happened: ever, or within the last ``days`` days.

    ``{event: cart_updated, at_least: 2, within: 7d}`` counts the UTC days from
    6 days before today to today (counts are kept per UTC day): a day leaves the
    window at midnight UTC seven days after it began.
    """

    name: str
    low: Decimal | None
    high: Decimal | None
    days: int | None = None

    @property
    def reads(self) -> frozenset[str]:
        return frozenset({"tracked" if self.days is None else "tracked_days"})

    def count(self, profile: Profile, now: datetime) -> int:
        if self.days is None:
            tally = profile.tracked.get(self.name)
            return 0 if tally is None else tally.count
        today = now.astimezone(UTC).date()
        first = today - timedelta(days=self.days - 1)
        kept = profile.tracked_days.get(self.name, {})
        return sum(n for day, n in kept.items() if first <= day <= today)

    def holds(self, profile: Profile, now: datetime) -> bool:
        return _within_bounds(self.count(profile, now), self.low, self.high)

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        if self.days is None:
            return None
        today = now.astimezone(UTC).date()
        first = today - timedelta(days=self.days - 1)
        # The count changes only when a day leaves the window, or a future day enters it.
        moments = sorted(
            {
                _midnight(day + timedelta(days=self.days) if day <= today else day)
                for day in profile.tracked_days.get(self.name, {})
                if day >= first
            }
        )
        answer = self.holds(profile, now)
        return next((m for m in moments if self.holds(profile, m) is not answer), None)


# --- email opens ---------------------------------------------------------------------


@dataclass(frozen=True)
class OpensAtHours(Condition):
    """A share of the buyer's opens falls in some local hours.

    ``{opens: email, local_hours: [23, 5], share_at_least: 0.5}``: at least half of
    the email opens happened from 23:00 to 05:59 on the buyer's clock. False for a
    buyer who never opened one.
    """

    channel: str
    hours: frozenset[int]
    share: Decimal

    @property
    def reads(self) -> frozenset[str]:
        return frozenset({"open_hours"})

    def holds(self, profile: Profile, now: datetime) -> bool:
        counters = profile.open_hours.get(self.channel)
        total = sum(counters) if counters else 0
        if not counters or total == 0:
            return False
        inside = sum(n for hour, n in enumerate(counters) if hour in self.hours)
        return Decimal(inside) >= self.share * total

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        return None


# --- other segments ------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentRef(Condition):
    """Membership of another segment: ``{segment: churned}``.

    Being in a segment means its rule holds now, so a reference answers, reads and
    flips exactly as the referenced rule does: no evaluation order between segments
    is needed and a reference never lags behind its segment. :func:`link_rules` puts
    the referenced rule in (``target``); an unlinked reference cannot be evaluated.
    """

    key: str
    pointer: str = field(default="", compare=False)
    target: Condition | None = field(default=None, compare=False, repr=False)

    def _rule(self) -> Condition:
        if self.target is None:
            raise RuntimeError(
                f"segment reference {self.key!r} is not linked: load segments with link_rules"
            )
        return self.target

    @property
    def reads(self) -> frozenset[str]:
        return self._rule().reads

    def holds(self, profile: Profile, now: datetime) -> bool:
        return self._rule().holds(profile, now)

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        return self._rule().next_change(profile, now)


# --- lifecycle and scores ------------------------------------------------------------


@dataclass(frozen=True)
class LifecycleIs(Condition):
    """The buyer's lifecycle stage: ``{lifecycle: pre-churn}`` (see :mod:`lifecycle`)."""

    stage: Stage
    policy: LifecyclePolicy = DEFAULT_POLICY

    @property
    def reads(self) -> frozenset[str]:
        return LIFECYCLE_READS

    def holds(self, profile: Profile, now: datetime) -> bool:
        return stage(profile, now, self.policy) == self.stage

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        return next_stage_change(profile, now, self.policy)


@dataclass(frozen=True)
class RfmSegment(Condition):
    """The named RFM segment the scoring job put the buyer in: ``{rfm: champions}``."""

    name: str

    @property
    def reads(self) -> frozenset[str]:
        return frozenset({"rfm_segment"})

    def holds(self, profile: Profile, now: datetime) -> bool:
        return profile.rfm_segment == self.name

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        return None


@dataclass(frozen=True)
class RfmScoreIn(Condition):
    """RFM scores among allowed values: ``{rfm_score: {r: [4, 5], f: [3, 4, 5]}}``.

    A score not named is not looked at; an unscored buyer is in none.
    """

    allowed: tuple[tuple[Literal["r", "f", "m"], frozenset[int]], ...]

    @property
    def reads(self) -> frozenset[str]:
        return frozenset(f"rfm_{letter}" for letter, _ in self.allowed)

    def holds(self, profile: Profile, now: datetime) -> bool:
        scores = {"r": profile.rfm_r, "f": profile.rfm_f, "m": profile.rfm_m}
        return all(scores[letter] in values for letter, values in self.allowed)

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        return None


@dataclass(frozen=True)
class PAlive(Condition):
    """The probability of being alive under and/or over a bound (both strict):
    ``{p_alive: {below: 0.3}}``; false for an unscored buyer."""

    below: Decimal | None
    above: Decimal | None

    @property
    def reads(self) -> frozenset[str]:
        return frozenset({"p_alive"})

    def holds(self, profile: Profile, now: datetime) -> bool:
        value = _decimal(profile.p_alive)
        if value is None:
            return False
        return (self.below is None or value < self.below) and (
            self.above is None or value > self.above
        )

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        return None


@dataclass(frozen=True)
class ClvTopShare(Condition):
    """Among the top share of the base by CLV: ``{clv: {top_share: 0.1}}`` (the top tenth)."""

    share: Decimal

    @property
    def reads(self) -> frozenset[str]:
        return frozenset({"clv_share"})

    def holds(self, profile: Profile, now: datetime) -> bool:
        value = _decimal(profile.clv_share)
        return value is not None and value < self.share

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        return None


@dataclass(frozen=True)
class ClvCompare(Condition):
    """CLV within bounds: ``{clv: {at_least: 20000}}``; false for an unscored buyer."""

    low: Decimal | None
    high: Decimal | None

    @property
    def reads(self) -> frozenset[str]:
        return frozenset({"clv"})

    def holds(self, profile: Profile, now: datetime) -> bool:
        return _within_bounds(profile.clv, self.low, self.high)

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        return None


# --- combinators ---------------------------------------------------------------------


def _earliest(moments: Iterable[datetime | None]) -> datetime | None:
    present = [m for m in moments if m is not None]
    return min(present) if present else None


@dataclass(frozen=True)
class AllOf(Condition):
    children: tuple[Condition, ...]

    @property
    def reads(self) -> frozenset[str]:
        return frozenset().union(*(c.reads for c in self.children))

    def holds(self, profile: Profile, now: datetime) -> bool:
        return all(c.holds(profile, now) for c in self.children)

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        return _earliest(c.next_change(profile, now) for c in self.children)


@dataclass(frozen=True)
class AnyOf(Condition):
    children: tuple[Condition, ...]

    @property
    def reads(self) -> frozenset[str]:
        return frozenset().union(*(c.reads for c in self.children))

    def holds(self, profile: Profile, now: datetime) -> bool:
        return any(c.holds(profile, now) for c in self.children)

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        return _earliest(c.next_change(profile, now) for c in self.children)


@dataclass(frozen=True)
class Not(Condition):
    child: Condition

    @property
    def reads(self) -> frozenset[str]:
        return self.child.reads

    def holds(self, profile: Profile, now: datetime) -> bool:
        return not self.child.holds(profile, now)

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        return self.child.next_change(profile, now)
