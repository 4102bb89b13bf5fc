"""Reading a rule written as JSON (or YAML) into its :class:`Condition` tree.

:func:`parse_rule` raises :class:`RuleError` naming the JSON pointer of the first
bad node and what was expected there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal, cast

from shared.domain.documents import DocumentError, child, duration, number, only, text
from shared.domain.events import CHANNELS
from shared.domain.lifecycle import DEFAULT_POLICY, STAGES, LifecyclePolicy, Stage
from shared.domain.profile import TRACK_HORIZON_DAYS
from shared.domain.rfm import RFM_SEGMENTS
from shared.domain.rules.model import (
    BOUGHT_KINDS,
    NUMERIC_STATS,
    RHYTHM_MEASURES,
    TIME_STATS,
    AllOf,
    AnyOf,
    Bought,
    ClvCompare,
    ClvTopShare,
    Condition,
    EventCount,
    ExpectedOrderDue,
    ExpectedOrderOverdue,
    LifecycleIs,
    Not,
    OpensAtHours,
    PAlive,
    RfmScoreIn,
    RfmSegment,
    RhythmCompare,
    SegmentRef,
    StatCompare,
    StatTime,
    TraitCompare,
    TraitEquals,
    TraitExists,
    TraitValue,
)

__all__ = ["KINDS", "RuleError", "parse_rule"]


class RuleError(DocumentError):
    """A rule that does not parse: ``pointer`` names the bad node (RFC 6901).

    ``segment`` names the segment whose rule holds the bad node, when the error was
    found while linking segments together (:func:`link_rules`).
    """

    def __init__(self, pointer: str, message: str, segment: str | None = None) -> None:
        super().__init__(pointer, message)
        self.segment = segment


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
