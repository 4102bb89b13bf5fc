"""Segments and how a buyer's memberships move.

:func:`reevaluate` is the one place that decides who enters and who leaves a
segment, for an event (only the segments that read a changed field) and for a
timer (every segment of the buyer). It also returns the buyer's next timer: the
earliest moment any of their memberships can flip with no event.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, overload

from shared.domain.lifecycle import DEFAULT_POLICY, STAGES, LifecyclePolicy, Stage
from shared.domain.profile import Profile
from shared.domain.rules import Condition, LifecycleIs, RuleError, link_rules, parse_rule

__all__ = [
    "BUILTIN_SEGMENTS",
    "LIFECYCLE_NAMES",
    "Evaluation",
    "MembershipChange",
    "Segment",
    "SegmentIndex",
    "lifecycle_segments",
    "link_segments",
    "merge_stays",
    "occurrence_id",
    "reevaluate",
    "rule_fingerprint",
]

_OCCURRENCE_NAMESPACE = uuid.UUID("6f1c2a8e-1d0b-4a86-9b7e-5b3c1d2e9f40")


@dataclass(frozen=True)
class Segment:
    key: str
    name: str
    rule: Condition

    @classmethod
    def from_definition(cls, key: str, name: str, rule: Any) -> Segment:
        return cls(key=key, name=name, rule=parse_rule(rule))


@dataclass(frozen=True)
class MembershipChange:
    """A buyer entered or left a segment; ``occurrence_id`` names this entry (or exit)."""

    kind: Literal["entered", "exited"]
    segment: str
    profile_id: str
    at: datetime
    occurrence_id: str


@dataclass(frozen=True)
class Evaluation:
    changes: tuple[MembershipChange, ...]
    memberships: dict[str, datetime]
    """Segment key to the moment the buyer entered it, after the changes."""
    next_timer: datetime | None


def occurrence_id(segment: str, profile_id: str, entered_at: datetime) -> str:
    """A stable id for one stay of a buyer in a segment."""
    moment = entered_at.astimezone(UTC).isoformat()
    return str(uuid.uuid5(_OCCURRENCE_NAMESPACE, f"{segment}|{profile_id}|{moment}"))


class SegmentIndex(Sequence[Segment]):
    """The segments in force, indexed by the profile fields their rules read.

    An event that changed some fields needs only the segments that read one of them;
    :meth:`reading` finds those through a field-to-segments map, at a cost that follows
    the fields changed rather than the number of segments. It is a sequence of the
    segments in their given order, so it goes wherever a list of segments does.
    """

    def __init__(self, segments: Iterable[Segment]) -> None:
        self._segments = tuple(segments)
        by_field: dict[str, list[int]] = {}
        for position, segment in enumerate(self._segments):
            for name in segment.rule.reads:
                by_field.setdefault(name, []).append(position)
        self._by_field = {name: tuple(positions) for name, positions in by_field.items()}
        self._by_key = {segment.key: i for i, segment in enumerate(self._segments)}

    def reading(self, changed: Collection[str]) -> list[Segment]:
        """The segments whose rule reads one of the ``changed`` fields, in index order."""
        positions = sorted({p for name in changed for p in self._by_field.get(name, ())})
        return [self._segments[p] for p in positions]

    def reads_any(self, changed: Collection[str]) -> bool:
        """Whether any segment reads one of the ``changed`` fields."""
        return any(name in self._by_field for name in changed)

    def named(self, keys: Collection[str]) -> list[Segment]:
        """The segments with these keys, in index order; unknown keys are left out."""
        positions = sorted(self._by_key[k] for k in keys if k in self._by_key)
        return [self._segments[p] for p in positions]

    @property
    def fields(self) -> frozenset[str]:
        """Every profile field some segment reads."""
        return frozenset(self._by_field)

    @overload
    def __getitem__(self, index: int) -> Segment: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Segment]: ...
    def __getitem__(self, index: int | slice) -> Segment | Sequence[Segment]:
        return self._segments[index]

    def __len__(self) -> int:
        return len(self._segments)

    def __iter__(self) -> Iterator[Segment]:
        return iter(self._segments)

    def __repr__(self) -> str:
        return f"SegmentIndex({[s.key for s in self._segments]!r})"


def rule_fingerprint(rule: Condition) -> str:
    """A digest of what a rule means, the same for two parses of one definition in any
    process: a segment whose fingerprint moved has a new rule, and the base is evaluated
    against it once."""
    return hashlib.sha256(repr(_canonical(rule)).encode()).hexdigest()


def _canonical(value: Any) -> Any:
    """``value`` as nested tuples of plain reprs, with no set order or memory address."""
    if is_dataclass(value) and not isinstance(value, type):
        parts = tuple((f.name, _canonical(getattr(value, f.name))) for f in fields(value))
        return (type(value).__name__, parts)
    if isinstance(value, set | frozenset):
        return ("set", tuple(sorted(repr(_canonical(v)) for v in value)))
    if isinstance(value, Mapping):
        items = ((repr(_canonical(k)), repr(_canonical(v))) for k, v in value.items())
        return ("map", tuple(sorted(items)))
    if isinstance(value, list | tuple):
        return tuple(_canonical(v) for v in value)
    if isinstance(value, Condition) and hasattr(value, "__dict__"):
        return (type(value).__name__, _canonical(vars(value)))
    return repr(value)


def reevaluate(
    profile: Profile,
    segments: Sequence[Segment],
    memberships: Mapping[str, datetime],
    now: datetime,
    changed: Collection[str] | None = None,
    *,
    only: Collection[str] | None = None,
) -> Evaluation:
    """Evaluate ``profile`` against ``segments`` at ``now``.

    ``memberships`` maps the segments the buyer is in to when they entered.
    With ``changed`` (the fields an event changed) only the segments reading one of
    those fields are evaluated; with ``None`` (a timer) every segment is. A buyer never
    evaluated before is evaluated in full (segments that hold for an empty profile, such
    as leads, are entered at once), and so is a buyer whose timer is already due (a flip
    that fell due before the event was handled is not lost).

    With ``only`` (segment keys: a segment whose rule changed, evaluated over the base)
    just those segments are evaluated, ``changed`` aside, with the same two exceptions.
    Pass a :class:`SegmentIndex` to find the segments reading ``changed`` through its
    field index; a plain sequence is indexed on the spot. ``next_timer`` is always the
    earliest flip over every segment.

    The caller keeps ``next_timer`` and ``now`` on the profile (``next_timer_at``,
    ``evaluated_at``) with the memberships.
    """
    index = segments if isinstance(segments, SegmentIndex) else SegmentIndex(segments)
    never_evaluated = profile.evaluated_at is None
    overdue = profile.next_timer_at is not None and profile.next_timer_at <= now
    evaluated: Sequence[Segment]
    if never_evaluated or overdue:
        evaluated = index
    elif only is not None:
        evaluated = index.named(only)
    elif changed is not None:
        evaluated = index.reading(changed)
    else:
        evaluated = index
    current = dict(memberships)
    changes: list[MembershipChange] = []
    for segment in evaluated:
        inside = segment.key in current
        holds = segment.rule.holds(profile, now)
        if holds and not inside:
            current[segment.key] = now
            changes.append(
                MembershipChange(
                    "entered",
                    segment.key,
                    profile.id,
                    now,
                    occurrence_id(segment.key, profile.id, now),
                )
            )
        elif inside and not holds:
            entered_at = current.pop(segment.key)
            changes.append(
                MembershipChange(
                    "exited",
                    segment.key,
                    profile.id,
                    now,
                    occurrence_id(segment.key, profile.id, entered_at),
                )
            )
    flips = [s.rule.next_change(profile, now) for s in index]
    next_timer = min((f for f in flips if f is not None), default=None)
    return Evaluation(tuple(changes), current, next_timer)


def merge_stays(
    survivor: Mapping[str, datetime], other: Mapping[str, datetime]
) -> dict[str, datetime]:
    """The memberships of two profiles found to be one buyer.

    The survivor's stays are kept as they are (a message already sent for one of them
    stays the message for that stay); a segment only ``other`` was in joins with
    ``other``'s entry time, so the merged buyer does not enter it anew and is not
    messaged a second time for it.
    """
    return {**other, **survivor}


def link_segments(
    segments: Iterable[Segment], errors: dict[str, RuleError] | None = None
) -> tuple[Segment, ...]:
    """The segments, with every ``{segment: key}`` in their rules linked to that segment's rule.

    Raises :class:`~shared.domain.rules.RuleError` for a reference to a key not among
    ``segments`` and for segments referring to each other in a cycle; ``error.segment``
    names the referring segment and ``error.pointer`` the reference in its rule. Given
    an ``errors`` dict, the segments that cannot be linked are left out instead, their
    errors recorded by key (a loader keeps the others running).
    """
    given = tuple(segments)
    linked = link_rules({s.key: s.rule for s in given}, errors)
    return tuple(replace(s, rule=linked[s.key]) for s in given if s.key in linked)


LIFECYCLE_NAMES: dict[Stage, str] = {
    "lead": "Lead: identified, no order yet",
    "new": "New: one order",
    "repeat": "Repeat: two orders or more",
    "loyal": "Loyal: frequent, regular or a high average check",
    "pre-churn": "Pre-churn: overdue against their own rhythm, or fading",
    "churned": "Churned: long without an order",
}


def lifecycle_segments(policy: LifecyclePolicy = DEFAULT_POLICY) -> tuple[Segment, ...]:
    """One segment per lifecycle stage (``lifecycle-lead`` ... ``lifecycle-churned``)."""
    return tuple(
        Segment(f"lifecycle-{stage}", LIFECYCLE_NAMES[stage], LifecycleIs(stage, policy))
        for stage in STAGES
    )


BUILTIN_SEGMENTS: tuple[Segment, ...] = link_segments(
    (
        Segment.from_definition(
            "no-order-30d",
            "No order for 30 days",
            {"stat": "last_order_at", "older_than": "30d"},
        ),
        *lifecycle_segments(),
    )
)
"""Segments every shop has from the start: the win-back trigger and the lifecycle stages
(with the default thresholds; pass a policy to :func:`lifecycle_segments` for others)."""
