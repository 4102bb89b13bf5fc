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
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.domain.profile import Profile

__all__ = [
    "AllOf",
    "AnyOf",
    "Condition",
    "Not",
    "RuleError",
    "StatCompare",
    "StatTime",
    "parse_duration",
    "parse_rule",
]


class RuleError(ValueError):
    """A rule that does not parse: ``pointer`` names the bad node (RFC 6901)."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(f"{pointer or '/'}: {message}")
        self.pointer = pointer or "/"
        self.message = message


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

NUMERIC_STATS: dict[str, Callable[[Profile], Decimal | int | None]] = {
    "orders_count": lambda p: p.orders_count,
    "revenue_total": lambda p: p.revenue_total,
    "avg_check": lambda p: p.avg_check,
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
        value = NUMERIC_STATS[self.stat](profile)
        if value is None:
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        return None


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


def _child(pointer: str, key: str | int) -> str:
    """``pointer`` extended by ``key``, escaped as RFC 6901 says."""
    return f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"


_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``"30d"`` → 30 days; units m (minutes), h, d, w."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"expected a duration such as '30d', '12h' or '2w', got {text!r}")
    amount, unit = match.groups()
    try:
        return timedelta(**{_UNITS[unit]: int(amount)})
    except OverflowError:
        raise ValueError(f"duration {text!r} is too long") from None


def parse_rule(node: Any, pointer: str = "") -> Condition:
    """Parse a rule tree; raise :class:`RuleError` at the first bad node."""
    if not isinstance(node, Mapping):
        raise RuleError(pointer, "expected an object such as {all: [...]} or {stat: ...}")
    if "all" in node or "any" in node:
        op = "all" if "all" in node else "any"
        _only(node, {op}, pointer)
        children = node[op]
        if not isinstance(children, list) or not children:
            raise RuleError(_child(pointer, op), "expected a non-empty list of conditions")
        parsed = tuple(
            parse_rule(c, _child(_child(pointer, op), i)) for i, c in enumerate(children)
        )
        return AllOf(parsed) if op == "all" else AnyOf(parsed)
    if "not" in node:
        _only(node, {"not"}, pointer)
        return Not(parse_rule(node["not"], _child(pointer, "not")))
    if "stat" in node:
        return _parse_stat(node, pointer)
    raise RuleError(pointer, "expected one of: all, any, not, stat")


def _only(node: Mapping[str, Any], allowed: set[str], pointer: str) -> None:
    extra = sorted(str(k) for k in set(node) - allowed)
    if extra:
        raise RuleError(
            _child(pointer, extra[0]), f"unexpected key; allowed here: {sorted(allowed)}"
        )


def _parse_stat(node: Mapping[str, Any], pointer: str) -> Condition:
    stat = node["stat"]
    known = sorted({*TIME_STATS, *NUMERIC_STATS})
    if not isinstance(stat, str):
        raise RuleError(_child(pointer, "stat"), f"expected a stat name, one of {known}")
    if stat in TIME_STATS:
        ops = {"older_than", "within"} & set(node)
        if len(ops) != 1:
            raise RuleError(pointer, f"stat {stat!r} takes exactly one of: older_than, within")
        op = ops.pop()
        _only(node, {"stat", op}, pointer)
        try:
            age = parse_duration(str(node[op]))
        except ValueError as exc:
            raise RuleError(_child(pointer, op), str(exc)) from None
        return StatTime(stat, age, older=op == "older_than")
    if stat in NUMERIC_STATS:
        _only(node, {"stat", "eq", "at_least", "at_most", "between"}, pointer)
        low, high = _bounds(node, pointer)
        return StatCompare(stat, low, high)
    raise RuleError(_child(pointer, "stat"), f"unknown stat {stat!r}; expected one of {known}")


def _number(value: Any, pointer: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise RuleError(pointer, "expected a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise RuleError(pointer, "expected a number") from None
    if not number.is_finite():
        raise RuleError(pointer, "expected a finite number")
    return number


def _bounds(node: Mapping[str, Any], pointer: str) -> tuple[Decimal | None, Decimal | None]:
    low: Decimal | None
    high: Decimal | None
    ops = sorted({"eq", "at_least", "at_most", "between"} & set(node))
    if ("eq" in ops or "between" in ops) and len(ops) > 1:
        raise RuleError(pointer, f"{ops[0]} and {ops[1]} cannot be combined; use one comparison")
    if "between" in node:
        pair = node["between"]
        if not isinstance(pair, list) or len(pair) != 2:
            raise RuleError(_child(pointer, "between"), "expected [low, high]")
        low = _number(pair[0], _child(_child(pointer, "between"), 0))
        high = _number(pair[1], _child(_child(pointer, "between"), 1))
        if low > high:
            raise RuleError(_child(pointer, "between"), "low is above high")
        return low, high
    if "eq" in node:
        value = _number(node["eq"], _child(pointer, "eq"))
        return value, value
    low = _number(node["at_least"], _child(pointer, "at_least")) if "at_least" in node else None
    high = _number(node["at_most"], _child(pointer, "at_most")) if "at_most" in node else None
    if low is not None and high is not None and low > high:
        raise RuleError(pointer, "at_least is above at_most")
    if low is None and high is None:
        raise RuleError(pointer, "expected one of: eq, at_least, at_most, between")
    return low, high
