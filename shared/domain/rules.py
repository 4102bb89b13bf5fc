"""The segment rule language: a small tree of conditions over a buyer's profile.

A rule is written as JSON (or YAML) and parsed into :class:`Condition` objects.
Every condition answers three questions, on plain data and a given moment:

- ``holds(profile, now)``: is it true for this buyer now?
- ``reads``: which profile fields can change its answer (so an event that
  changed none of them need not evaluate it again);
- ``next_change(profile, now)``: the next moment its answer can flip with no
  event at all (``older_than 30d`` flips 30 days after the last order), or
  ``None`` when only an event can change it.

A rule that does not parse raises :class:`RuleError` naming the JSON pointer of
the bad node and what was expected there.

The conditions: ``all``/``any``/``not``; ``stat`` (order stats and their moments);
``trait``; ``rhythm`` (days between orders, the expected next order); ``bought``
(a category, SKU or store, ever or within a period); ``event`` (a custom event's
count, ever or within a period of whole days); ``opens`` (the share of opens at
the buyer's local hours); ``segment`` (another segment's rule, linked by
:func:`link_rules`); ``lifecycle``; ``rfm`` and ``rfm_score``; ``p_alive``; ``clv``.
docs/segments.md has an example of each.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal, cast

from shared.domain.documents import (
    DocumentError,
    child,
    duration,
    number,
    only,
    parse_duration,
    text,
)
from shared.domain.events import CHANNELS
from shared.domain.lifecycle import (
    DEFAULT_POLICY,
    LIFECYCLE_READS,
    STAGES,
    LifecyclePolicy,
    Stage,
    next_stage_change,
    stage,
)
from shared.domain.profile import TRACK_HORIZON_DAYS, Profile, Purchases
from shared.domain.rfm import RFM_SEGMENTS

__all__ = [
    "KINDS",
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
    "RuleError",
    "SegmentRef",
    "StatCompare",
    "StatTime",
    "TraitCompare",
    "TraitEquals",
    "TraitExists",
    "link_rules",
    "parse_duration",
    "parse_rule",
]


class RuleError(DocumentError):
    """A rule that does not parse: ``pointer`` names the bad node (RFC 6901).

    ``segment`` names the segment whose rule holds the bad node, when the error was
    found while linking segments together (:func:`link_rules`).
    """

    def __init__(self, pointer: str, message: str, segment: str | None = None) -> None:
        super().__init__(pointer, message)
        self.segment = segment


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


# --- parsing -------------------------------------------------------------------------


KINDS: tuple[str, ...] = (
    "all",
    "any",
    "not",
    "stat",
    "trait",
    "rhythm",
    "bought",
    "event",
    "opens",
    "segment",
    "lifecycle",
    "rfm",
    "rfm_score",
    "p_alive",
    "clv",
)
"""The key that names a condition's kind, as a rule node carries it."""


def parse_rule(
    node: Any, pointer: str = "", *, policy: LifecyclePolicy = DEFAULT_POLICY
) -> Condition:
    """Parse a rule tree; raise :class:`RuleError` at the first bad node.

    ``policy`` holds the lifecycle thresholds a ``{lifecycle: ...}`` condition uses.
    A ``{segment: ...}`` reference is parsed unlinked: :func:`link_rules` links the
    rules of a set of segments together (and refuses unknown keys and cycles).
    """
    if not isinstance(node, Mapping):
        raise RuleError(pointer, "expected an object such as {all: [...]} or {stat: ...}")
    if "all" in node or "any" in node:
        op = "all" if "all" in node else "any"
        _only(node, {op}, pointer)
        children = node[op]
        if not isinstance(children, list) or not children:
            raise RuleError(child(pointer, op), "expected a non-empty list of conditions")
        parsed = tuple(
            parse_rule(c, child(child(pointer, op), i), policy=policy)
            for i, c in enumerate(children)
        )
        return AllOf(parsed) if op == "all" else AnyOf(parsed)
    if "not" in node:
        _only(node, {"not"}, pointer)
        return Not(parse_rule(node["not"], child(pointer, "not"), policy=policy))
    if "lifecycle" in node:
        return _parse_lifecycle(node, pointer, policy)
    for kind, parse in _PARSERS.items():
        if kind in node:
            return parse(node, pointer)
    raise RuleError(pointer, "expected one of: " + ", ".join(KINDS))


def link_rules(
    rules: Mapping[str, Condition], errors: dict[str, RuleError] | None = None
) -> dict[str, Condition]:
    """The rules of a set of segments (by key), with every ``{segment: ...}`` linked.

    Raises :class:`RuleError` (with ``segment`` set to the referring segment, and the
    pointer of the reference) for a key not in ``rules`` and for a cycle
    (``a`` refers to ``b`` which refers back to ``a``). Given an ``errors`` dict, it
    raises nothing: a segment that cannot be linked is left out of the result and its
    error recorded under its key (so are the segments referring to it, in turn).

    To check a new or edited rule before saving it, link it with the rules in force:
    ``link_rules({**rules_in_force, key: new_rule})`` refuses an unknown reference and
    a cycle through the new rule.
    """
    if errors is None:
        return _link_all(rules)
    remaining = dict(rules)
    while True:
        try:
            return _link_all(remaining)
        except RuleError as exc:
            if exc.segment is None:  # pragma: no cover - every linking error names one
                raise
            errors[exc.segment] = exc
            del remaining[exc.segment]


def _link_all(rules: Mapping[str, Condition]) -> dict[str, Condition]:
    linked: dict[str, Condition] = {}
    path: list[str] = []

    def link(key: str) -> Condition:
        if key not in linked:
            path.append(key)
            linked[key] = _relink(rules[key], resolve)
            path.pop()
        return linked[key]

    def resolve(ref: SegmentRef) -> Condition:
        here = path[-1]
        if ref.key not in rules:
            known = ", ".join(sorted(rules)) or "none"
            raise RuleError(ref.pointer, f"unknown segment {ref.key!r}; known: {known}", here)
        if ref.key in path:
            cycle = " -> ".join([*path[path.index(ref.key) :], ref.key])
            raise RuleError(ref.pointer, f"segments refer to each other in a cycle: {cycle}", here)
        return link(ref.key)

    for key in rules:
        link(key)
    return linked


def _relink(condition: Condition, resolve: Callable[[SegmentRef], Condition]) -> Condition:
    if isinstance(condition, SegmentRef):
        return replace(condition, target=resolve(condition))
    if isinstance(condition, AllOf | AnyOf):
        return replace(condition, children=tuple(_relink(c, resolve) for c in condition.children))
    if isinstance(condition, Not):
        return Not(_relink(condition.child, resolve))
    return condition


def _only(node: Mapping[str, Any], allowed: set[str], pointer: str) -> None:
    only(node, allowed, pointer, RuleError)


def _parse_stat(node: Mapping[str, Any], pointer: str) -> Condition:
    stat = node["stat"]
    known = sorted({*TIME_STATS, *NUMERIC_STATS})
    if not isinstance(stat, str):
        raise RuleError(child(pointer, "stat"), f"expected a stat name, one of {known}")
    if stat in TIME_STATS:
        ops = {"older_than", "within"} & set(node)
        if len(ops) != 1:
            raise RuleError(pointer, f"stat {stat!r} takes exactly one of: older_than, within")
        op = ops.pop()
        _only(node, {"stat", op}, pointer)
        return StatTime(stat, _duration_at(node, op, pointer), older=op == "older_than")
    if stat in NUMERIC_STATS:
        _only(node, {"stat", "eq", "at_least", "at_most", "between"}, pointer)
        low, high = _bounds(node, pointer)
        return StatCompare(stat, low, high)
    raise RuleError(child(pointer, "stat"), f"unknown stat {stat!r}; expected one of {known}")


def _number(value: Any, pointer: str) -> Decimal:
    return number(value, pointer, RuleError)


def _bounds(node: Mapping[str, Any], pointer: str) -> tuple[Decimal | None, Decimal | None]:
    low: Decimal | None
    high: Decimal | None
    ops = sorted({"eq", "at_least", "at_most", "between"} & set(node))
    if ("eq" in ops or "between" in ops) and len(ops) > 1:
        raise RuleError(pointer, f"{ops[0]} and {ops[1]} cannot be combined; use one comparison")
    if "between" in node:
        pair = node["between"]
        if not isinstance(pair, list) or len(pair) != 2:
            raise RuleError(child(pointer, "between"), "expected [low, high]")
        low = _number(pair[0], child(child(pointer, "between"), 0))
        high = _number(pair[1], child(child(pointer, "between"), 1))
        if low > high:
            raise RuleError(child(pointer, "between"), "low is above high")
        return low, high
    if "eq" in node:
        value = _number(node["eq"], child(pointer, "eq"))
        return value, value
    low = _number(node["at_least"], child(pointer, "at_least")) if "at_least" in node else None
    high = _number(node["at_most"], child(pointer, "at_most")) if "at_most" in node else None
    if low is not None and high is not None and low > high:
        raise RuleError(pointer, "at_least is above at_most")
    if low is None and high is None:
        raise RuleError(pointer, "expected one of: eq, at_least, at_most, between")
    return low, high


# --- parsing the conditions beyond stats ---------------------------------------------


def _text(node: Mapping[str, Any], key: str, pointer: str, what: str) -> str:
    return text(node, key, pointer, RuleError, what)


def _duration_at(node: Mapping[str, Any], key: str, pointer: str) -> timedelta:
    return duration(str(node[key]), child(pointer, key), RuleError)


def _one_of(node: Mapping[str, Any], options: Iterable[str], pointer: str, what: str) -> str:
    found = [o for o in options if o in node]
    if len(found) != 1:
        raise RuleError(pointer, f"{what} takes exactly one of: {', '.join(options)}")
    return found[0]


def _share(value: Any, pointer: str) -> Decimal:
    share = _number(value, pointer)
    if not 0 <= share <= 1:
        raise RuleError(pointer, "expected a share from 0 to 1")
    return share


def _scalar(value: Any, pointer: str) -> TraitValue:
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        _number(value, pointer)  # refuses NaN and infinities
        return value
    raise RuleError(pointer, "expected a string, a number, true or false")


def _parse_trait(node: Mapping[str, Any], pointer: str) -> Condition:
    name = _text(node, "trait", pointer, "a trait name such as 'gender'")
    eq = node.get("eq")
    if "eq" in node and (isinstance(eq, bool) or not isinstance(eq, int | float)):
        _only(node, {"trait", "eq"}, pointer)
        return TraitEquals(name, (_scalar(node["eq"], child(pointer, "eq")),))
    if "in" in node:
        _only(node, {"trait", "in"}, pointer)
        values = node["in"]
        if not isinstance(values, list) or not values:
            raise RuleError(child(pointer, "in"), "expected a non-empty list of values")
        at = child(pointer, "in")
        return TraitEquals(name, tuple(_scalar(v, child(at, i)) for i, v in enumerate(values)))
    if "exists" in node:
        _only(node, {"trait", "exists"}, pointer)
        if not isinstance(node["exists"], bool):
            raise RuleError(child(pointer, "exists"), "expected true or false")
        return TraitExists(name, node["exists"])
    _only(node, {"trait", "eq", "at_least", "at_most", "between"}, pointer)
    if not {"eq", "at_least", "at_most", "between"} & set(node):
        raise RuleError(pointer, "expected one of: eq, in, exists, at_least, at_most, between")
    low, high = _bounds(node, pointer)
    if "eq" in node:  # a number: equal by value, as a marketer means it
        return TraitEquals(name, (node["eq"],))
    return TraitCompare(name, low, high)


def _parse_rhythm(node: Mapping[str, Any], pointer: str) -> Condition:
    known = [*RHYTHM_MEASURES, "expected_next_order_at"]
    measure = node["rhythm"]
    if not isinstance(measure, str) or measure not in known:
        raise RuleError(child(pointer, "rhythm"), f"expected one of {known}")
    if measure in RHYTHM_MEASURES:
        _only(node, {"rhythm", "eq", "at_least", "at_most", "between"}, pointer)
        low, high = _bounds(node, pointer)
        return RhythmCompare(measure, low, high)
    op = _one_of(node, ("within", "overdue_by"), pointer, "expected_next_order_at")
    _only(node, {"rhythm", op}, pointer)
    moment = _duration_at(node, op, pointer)
    return ExpectedOrderDue(moment) if op == "within" else ExpectedOrderOverdue(moment)


def _parse_bought(node: Mapping[str, Any], pointer: str) -> Condition:
    what = node["bought"]
    at = child(pointer, "bought")
    if not isinstance(what, Mapping):
        raise RuleError(at, "expected an object: {category: ...}, {sku: ...} or {store: ...}")
    kind = _one_of(what, tuple(BOUGHT_KINDS), at, "bought")
    _only(what, {kind}, at)
    key = _text(what, kind, at, f"a {kind} name")
    ops = [op for op in ("within", "not_within") if op in node]
    if len(ops) > 1:
        raise RuleError(pointer, "within and not_within cannot be combined")
    _only(node, {"bought", *ops}, pointer)
    window = _duration_at(node, ops[0], pointer) if ops else None
    chosen = cast(Literal["category", "sku", "store"], kind)
    return Bought(chosen, key, window, negated=ops == ["not_within"])


def _parse_event(node: Mapping[str, Any], pointer: str) -> Condition:
    name = _text(node, "event", pointer, "a custom event name such as 'cart_updated'")
    _only(node, {"event", "eq", "at_least", "at_most", "between", "within"}, pointer)
    low, high = _bounds(node, pointer)
    if "within" not in node:
        return EventCount(name, low, high)
    window = _duration_at(node, "within", pointer)
    days = window // timedelta(days=1)
    if window != timedelta(days=days) or not 1 <= days <= TRACK_HORIZON_DAYS:
        raise RuleError(
            child(pointer, "within"),
            f"expected whole days from 1d to {TRACK_HORIZON_DAYS}d (counts are kept per day)",
        )
    return EventCount(name, low, high, days)


def _parse_opens(node: Mapping[str, Any], pointer: str) -> Condition:
    channel = node["opens"]
    if channel not in CHANNELS:
        raise RuleError(child(pointer, "opens"), f"expected a channel, one of {list(CHANNELS)}")
    _only(node, {"opens", "local_hours", "share_at_least"}, pointer)
    for key in ("local_hours", "share_at_least"):
        if key not in node:
            raise RuleError(pointer, f"opens needs {key}")
    span = node["local_hours"]
    at = child(pointer, "local_hours")
    if not isinstance(span, list) or len(span) != 2:
        raise RuleError(at, "expected [from, to]: hours 0-23, wrapping past midnight")
    for i, hour in enumerate(span):
        if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
            raise RuleError(child(at, i), "expected an hour from 0 to 23")
    start, end = span
    hours = range(start, end + 1) if start <= end else [*range(start, 24), *range(end + 1)]
    share = _share(node["share_at_least"], child(pointer, "share_at_least"))
    return OpensAtHours(channel, frozenset(hours), share)


def _parse_segment(node: Mapping[str, Any], pointer: str) -> Condition:
    _only(node, {"segment"}, pointer)
    key = _text(node, "segment", pointer, "a segment key")
    return SegmentRef(key, pointer=child(pointer, "segment"))


def _parse_lifecycle(node: Mapping[str, Any], pointer: str, policy: LifecyclePolicy) -> Condition:
    _only(node, {"lifecycle"}, pointer)
    name = node["lifecycle"]
    if name not in STAGES:
        raise RuleError(child(pointer, "lifecycle"), f"expected a stage, one of {list(STAGES)}")
    return LifecycleIs(cast(Stage, name), policy)


def _parse_rfm(node: Mapping[str, Any], pointer: str) -> Condition:
    _only(node, {"rfm"}, pointer)
    name = node["rfm"]
    if name not in RFM_SEGMENTS:
        raise RuleError(
            child(pointer, "rfm"), f"expected an RFM segment, one of {list(RFM_SEGMENTS)}"
        )
    return RfmSegment(name)


def _parse_rfm_score(node: Mapping[str, Any], pointer: str) -> Condition:
    _only(node, {"rfm_score"}, pointer)
    scores = node["rfm_score"]
    at = child(pointer, "rfm_score")
    if not isinstance(scores, Mapping) or not scores:
        raise RuleError(at, "expected an object such as {r: [4, 5], f: [3, 4, 5]}")
    _only(scores, {"r", "f", "m"}, at)
    allowed: list[tuple[Literal["r", "f", "m"], frozenset[int]]] = []
    for letter in ("r", "f", "m"):
        if letter not in scores:
            continue
        values = scores[letter]
        if not isinstance(values, list) or not values:
            raise RuleError(child(at, letter), "expected a non-empty list of scores 1-5")
        for i, value in enumerate(values):
            if isinstance(value, bool) or value not in (1, 2, 3, 4, 5):
                raise RuleError(child(child(at, letter), i), "expected a score from 1 to 5")
        allowed.append((letter, frozenset(values)))
    return RfmScoreIn(tuple(allowed))


def _parse_p_alive(node: Mapping[str, Any], pointer: str) -> Condition:
    _only(node, {"p_alive"}, pointer)
    bounds = node["p_alive"]
    at = child(pointer, "p_alive")
    if not isinstance(bounds, Mapping) or not {"below", "above"} & set(bounds):
        raise RuleError(at, "expected an object with below and/or above, such as {below: 0.3}")
    _only(bounds, {"below", "above"}, at)
    below = _share(bounds["below"], child(at, "below")) if "below" in bounds else None
    above = _share(bounds["above"], child(at, "above")) if "above" in bounds else None
    return PAlive(below, above)


def _parse_clv(node: Mapping[str, Any], pointer: str) -> Condition:
    _only(node, {"clv"}, pointer)
    spec = node["clv"]
    at = child(pointer, "clv")
    if not isinstance(spec, Mapping):
        raise RuleError(at, "expected an object such as {top_share: 0.1} or {at_least: 20000}")
    if "top_share" in spec:
        _only(spec, {"top_share"}, at)
        share = _share(spec["top_share"], child(at, "top_share"))
        if share == 0:
            raise RuleError(child(at, "top_share"), "expected a share above 0")
        return ClvTopShare(share)
    _only(spec, {"eq", "at_least", "at_most", "between"}, at)
    if not spec:
        raise RuleError(at, "expected one of: top_share, eq, at_least, at_most, between")
    low, high = _bounds(spec, at)
    return ClvCompare(low, high)


_PARSERS: dict[str, Callable[[Mapping[str, Any], str], Condition]] = {
    "stat": _parse_stat,
    "trait": _parse_trait,
    "rhythm": _parse_rhythm,
    "bought": _parse_bought,
    "event": _parse_event,
    "opens": _parse_opens,
    "segment": _parse_segment,
    "rfm_score": _parse_rfm_score,
    "rfm": _parse_rfm,
    "p_alive": _parse_p_alive,
    "clv": _parse_clv,
}
"""How each kind of condition is parsed (``all``, ``any``, ``not``, ``lifecycle`` aside)."""
