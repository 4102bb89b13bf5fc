"""Segments and how a buyer's memberships move.

:func:`reevaluate` is the one place that decides who enters and who leaves a
segment, for an event (only the segments that read a changed field) and for a
timer (every segment of the buyer). It also returns the buyer's next timer: the
earliest moment any of their memberships can flip with no event.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from shared.domain.profile import Profile
from shared.domain.rules import Condition, parse_rule

__all__ = [
    "BUILTIN_SEGMENTS",
    "Evaluation",
    "MembershipChange",
    "Segment",
    "merge_stays",
    "occurrence_id",
    "reevaluate",
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


def reevaluate(
    profile: Profile,
    segments: Sequence[Segment],
    memberships: Mapping[str, datetime],
    now: datetime,
    changed: Collection[str] | None = None,
) -> Evaluation:
    """Evaluate ``profile`` against ``segments`` at ``now``.

    ``memberships`` maps the segments the buyer is in to when they entered.
    With ``changed`` (the fields an event changed) only the segments reading one of
    those fields are evaluated; with ``None`` (a timer) every segment is. A buyer never
    evaluated before is evaluated in full (segments that hold for an empty profile, such
    as leads, are entered at once), and so is a buyer whose timer is already due (a flip
    that fell due before the event was handled is not lost).

    The caller keeps ``next_timer`` and ``now`` on the profile (``next_timer_at``,
    ``evaluated_at``) with the memberships.
    """
    never_evaluated = profile.evaluated_at is None
    overdue = profile.next_timer_at is not None and profile.next_timer_at <= now
    if never_evaluated or overdue:
        changed = None
    current = dict(memberships)
    changes: list[MembershipChange] = []
    for segment in segments:
        if changed is not None and segment.rule.reads.isdisjoint(changed):
            continue
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
    flips = [s.rule.next_change(profile, now) for s in segments]
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


BUILTIN_SEGMENTS: tuple[Segment, ...] = (
    Segment.from_definition(
        "no-order-30d",
        "No order for 30 days",
        {"stat": "last_order_at", "older_than": "30d"},
    ),
)
"""Segments every shop has from the start."""
