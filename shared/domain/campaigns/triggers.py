"""What starts a campaign: a segment entered or left, an event, a moment of the buyer's own.

Each trigger says whether an event matches it (:meth:`EventTrigger.matches`) and
is written back as the JSON a marketer wrote (:func:`trigger_document`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from shared.domain.documents import as_decimal, format_duration
from shared.domain.events import AnyEvent, TrackEvent
from shared.domain.profile import Profile

__all__ = [
    "PROFILE_MOMENTS",
    "EventTrigger",
    "MomentTrigger",
    "PropertyFilter",
    "SegmentTrigger",
    "Trigger",
    "trigger_document",
]

PROFILE_MOMENTS: tuple[str, ...] = (
    "expected_next_order_at",
    "last_order_at",
    "first_order_at",
)
"""The profile moments a moment trigger may be set against, read by name from the profile."""


@dataclass(frozen=True)
class SegmentTrigger:
    """The buyer entered (or left) a segment; the occurrence is that stay in the segment."""

    segment: str
    on: Literal["entered", "exited"] = "entered"


@dataclass(frozen=True)
class PropertyFilter:
    """One condition on an event's data: equal to one of ``values``, or within bounds."""

    name: str
    values: tuple[str | int | float | bool, ...] = ()
    low: Decimal | None = None
    high: Decimal | None = None

    def matches(self, fields: Mapping[str, Any]) -> bool:
        value = fields.get(self.name)
        if value is None:
            return False
        if self.values:
            return any(_same_value(value, wanted) for wanted in self.values)
        found = as_decimal(value)
        if found is None:
            return False
        return (self.low is None or found >= self.low) and (self.high is None or found <= self.high)


@dataclass(frozen=True)
class EventTrigger:
    """An event of ``type`` (for ``track``, optionally of one ``name``) whose data matches.

    The occurrence is the event itself (its ``event_id``). ``where`` holds for a
    ``track`` event's properties, and for any other event's scalar data fields
    (``total``, ``currency``, ...) and its ``store_id`` and ``channel``.
    """

    type: str
    name: str | None = None
    where: tuple[PropertyFilter, ...] = ()

    def matches(self, event: AnyEvent) -> bool:
        if event.type != self.type:
            return False
        if self.name is not None and not (
            isinstance(event, TrackEvent) and event.data.name == self.name
        ):
            return False
        fields = _event_fields(event)
        return all(f.matches(fields) for f in self.where)


@dataclass(frozen=True)
class MomentTrigger:
    """A moment of the buyer's own, shifted: ``expected_next_order_at`` less 3 days.

    ``moment`` names a profile field (:data:`PROFILE_MOMENTS`), read by name, so a
    moment the profile does not have (yet) simply never fires. The occurrence is
    the moment's value: when it moves (a new order moves the expected next one), it
    is a new occurrence.
    """

    moment: str
    offset: timedelta = timedelta(0)
    """Negative: before the moment; positive: after it."""

    def moment_of(self, profile: Profile) -> datetime | None:
        value = getattr(profile, self.moment, None)
        return value if isinstance(value, datetime) else None

    def fires_at(self, profile: Profile) -> datetime | None:
        """When this trigger fires for ``profile``, or ``None`` while it has no such moment."""
        moment = self.moment_of(profile)
        return None if moment is None else moment + self.offset

    def occurrence_id(self, profile: Profile) -> str | None:
        moment = self.moment_of(profile)
        return None if moment is None else f"{self.moment}@{moment.isoformat()}"


Trigger = SegmentTrigger | EventTrigger | MomentTrigger


def trigger_document(trigger: Trigger) -> dict[str, Any]:
    """``trigger`` as the JSON a campaign's ``trigger`` field holds."""
    if isinstance(trigger, SegmentTrigger):
        return {"segment": trigger.segment, "on": trigger.on}
    if isinstance(trigger, EventTrigger):
        document: dict[str, Any] = {"event": trigger.type}
        if trigger.name is not None:
            document["name"] = trigger.name
        if trigger.where:
            document["where"] = {f.name: _filter_to_value(f) for f in trigger.where}
        return document
    document = {"moment": trigger.moment}
    if trigger.offset < timedelta(0):
        document["before"] = format_duration(-trigger.offset)
    elif trigger.offset > timedelta(0):
        document["after"] = format_duration(trigger.offset)
    return document


def _filter_to_value(f: PropertyFilter) -> Any:
    if f.values:
        return f.values[0] if len(f.values) == 1 else list(f.values)
    bounds: dict[str, Any] = {}
    if f.low is not None:
        bounds["at_least"] = _plain_number(f.low)
    if f.high is not None:
        bounds["at_most"] = _plain_number(f.high)
    return bounds


def _plain_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _event_fields(event: AnyEvent) -> dict[str, Any]:
    """What an event trigger's ``where`` reads: properties, or scalar data fields."""
    if isinstance(event, TrackEvent):
        fields: dict[str, Any] = dict(event.data.properties)
    else:
        data = event.data.model_dump()
        fields = {k: v for k, v in data.items() if isinstance(v, str | int | float | Decimal)}
    fields.setdefault("store_id", event.store_id)
    fields.setdefault("channel", event.channel)
    return fields


def _same_value(value: Any, wanted: Any) -> bool:
    """Equal as data: numbers by value (``1000`` is ``"1000.00"`` only if both are numbers)."""
    if isinstance(value, bool) or isinstance(wanted, bool):
        return type(value) is type(wanted) and value == wanted
    if isinstance(value, int | float | Decimal) and isinstance(wanted, int | float):
        return Decimal(str(value)) == Decimal(str(wanted))
    return bool(value == wanted)
