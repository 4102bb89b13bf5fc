"""Linking the rules of a set of segments: each ``{segment: ...}`` to the rule it names."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from shared.domain.rules.model import AllOf, AnyOf, Condition, Not, SegmentRef
from shared.domain.rules.parsing import RuleError

__all__ = ["link_rules"]


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
