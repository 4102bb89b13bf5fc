"""Reading a campaign written as JSON: :func:`parse_campaign` validates it with a
precise error, a :class:`CampaignError` naming the JSON pointer of the bad field (and,
in its ``errors``, every bad field of the document, so a form can show them all at
once); :func:`campaigns_over` lays the stored campaigns over the ready-made ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeVar, get_args

from shared.domain.campaigns.model import (
    GOAL_EVENTS,
    MAX_HOLDOUT,
    Audience,
    Campaign,
    ChannelPolicy,
    Goal,
    Reentry,
    Status,
)
from shared.domain.campaigns.triggers import (
    PROFILE_MOMENTS,
    EventTrigger,
    MomentTrigger,
    PropertyFilter,
    SegmentTrigger,
)
from shared.domain.documents import DocumentError, child, duration, number, only, text
from shared.domain.events import CHANNELS, EVENT_TYPES, Channel
from shared.domain.rules import RuleError

__all__ = [
    "MAX_PRIORITY",
    "CampaignError",
    "campaigns_over",
    "parse_campaign",
    "parse_channels",
    "parse_goal",
    "parse_holdout",
    "parse_key",
    "parse_name",
    "parse_offer_key",
    "parse_templates",
    "parse_trigger",
]

_STATUSES: tuple[Status, ...] = get_args(Status)
_REENTRIES: tuple[Reentry, ...] = get_args(Reentry)
_ON: tuple[Literal["entered", "exited"], ...] = ("entered", "exited")
_Word = TypeVar("_Word", bound=str)
_T = TypeVar("_T")

_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_NAME_MAX = 200


class CampaignError(DocumentError):
    """A campaign that does not validate: ``pointer`` names the bad field (RFC 6901);
    ``errors`` holds every bad field found, this one first (itself alone by default)."""

    def __init__(self, pointer: str, message: str, *, others: Sequence[CampaignError] = ()) -> None:
        super().__init__(pointer, message)
        self._others = tuple(others)

    @property
    def errors(self) -> tuple[CampaignError, ...]:
        return (self, *self._others)

    @classmethod
    def of(cls, errors: Sequence[CampaignError]) -> CampaignError:
        """One error that carries ``errors`` (not empty), the first as its own."""
        first, *others = errors
        return cls(first.pointer, first.message, others=others)


_NO_WINDOW: tuple[datetime | None, datetime | None] = (None, None)
_NO_TRIGGER: SegmentTrigger | EventTrigger | MomentTrigger = SegmentTrigger("", "entered")
"""What a field that did not parse reads as meanwhile: never in a campaign."""


class _Errors:
    """Every bad field of one document: each field is parsed whatever its neighbours
    hold, and the errors are raised together at the end."""

    def __init__(self) -> None:
        self.found: list[CampaignError] = []

    def attempt(self, parse: Callable[[], _T], fallback: _T) -> _T:
        """``parse()``; its errors noted and ``fallback`` answered in its place."""
        try:
            return parse()
        except CampaignError as exc:
            self.found.extend(exc.errors)
            return fallback

    def check(self) -> None:
        if self.found:
            raise CampaignError.of(self.found)


_FIELDS = (
    "key",
    "name",
    "status",
    "trigger",
    "delay",
    "audience",
    "holdout",
    "channels",
    "templates",
    "goal",
    "priority",
    "reentry",
    "active",
    "offer",
)


def campaigns_over(
    builtins: Iterable[Campaign],
    stored: Iterable[tuple[str, Mapping[str, Any], str]],
    *,
    templates: Mapping[str, Collection[str]] | None = None,
) -> tuple[dict[str, Campaign], dict[str, CampaignError]]:
    """The campaigns in force: ``builtins`` by key, each replaced by a stored campaign of
    its key, and the other stored ones beside them. ``stored`` is ``(key, definition,
    status)`` as the console saved them; the stored status is the one that counts. A
    stored campaign that no longer parses (a template gone, say) is left out, its error
    returned by key, so the caller can say so and go on with the others."""
    found = {c.key: c for c in builtins}
    refused: dict[str, CampaignError] = {}
    for key, definition, status in stored:
        try:
            found[key] = parse_campaign(
                {**definition, "status": status}, key=key, templates=templates
            )
        except CampaignError as exc:
            refused[key] = exc
    return found, refused


MAX_PRIORITY = 1000
"""Priorities run from 0 to this (higher wins when the frequency caps allow one message)."""


def parse_campaign(
    document: Any,
    *,
    key: str | None = None,
    segments: Collection[str] | None = None,
    templates: Mapping[str, Collection[str]] | None = None,
    offers: Collection[str] | None = None,
) -> Campaign:
    """Validate a campaign written as JSON; raise :class:`CampaignError` at the first bad field.

    ``key``: the key from the URL (``PUT /v1/campaigns/{key}``); the document may
    repeat it but not contradict it. ``segments`` (keys) and ``templates`` (channel to
    template keys), when given, are what exists: a trigger on another segment, or a
    template that is not one of its channel's, is refused; so is an offer not among
    ``offers`` (keys), when given. A campaign saved without a status is a draft: saving
    never starts sending.
    """
    if not isinstance(document, Mapping):
        raise CampaignError("", "expected an object")
    errors = _Errors()
    errors.attempt(lambda: _only(document, _FIELDS, ""), None)
    key = errors.attempt(lambda: parse_key(document, key), "")
    name = errors.attempt(lambda: parse_name(document), "")
    status: Status = errors.attempt(
        lambda: _choice(document.get("status", "draft"), _STATUSES, "/status"), "draft"
    )
    trigger = errors.attempt(
        lambda: parse_trigger(_required(document, "trigger", ""), "/trigger", segments),
        _NO_TRIGGER,
    )
    delay = errors.attempt(lambda: _duration(document.get("delay", "0m"), "/delay"), timedelta(0))
    audience = errors.attempt(lambda: _parse_audience(document.get("audience")), None)
    holdout = errors.attempt(lambda: parse_holdout(document.get("holdout", 0)), 0.0)
    parsed_channels = errors.attempt(
        lambda: parse_channels(_required(document, "channels", "")), None
    )
    channels: ChannelPolicy = parsed_channels if parsed_channels is not None else "best"
    chosen: dict[Channel, str] = errors.attempt(
        lambda: parse_templates(
            _required(document, "templates", ""),
            channels,
            templates,
            check_channels=parsed_channels is not None,
        ),
        {},
    )
    goal = errors.attempt(
        lambda: parse_goal(document.get("goal", {"event": "purchase", "within": "14d"})),
        Goal("purchase", timedelta(days=14), None),
    )
    priority = errors.attempt(lambda: _priority(document.get("priority", 0)), 0)
    reentry: Reentry = errors.attempt(
        lambda: _choice(document.get("reentry", "once_per_occurrence"), _REENTRIES, "/reentry"),
        "once_per_occurrence",
    )
    window = errors.attempt(lambda: _parse_window(document.get("active", {})), _NO_WINDOW)
    active_from, active_until = window
    offer = errors.attempt(lambda: parse_offer_key(document.get("offer"), "/offer", offers), None)
    errors.check()
    return Campaign(
        key=key,
        name=name,
        trigger=trigger,
        templates=chosen,
        channels=channels,
        delay=delay,
        audience=audience,
        holdout=holdout,
        goal=goal,
        priority=priority,
        reentry=reentry,
        active_from=active_from,
        active_until=active_until,
        status=status,
        offer=offer,
    )


def _parse_audience(node: Any) -> Audience | None:
    if node is None:
        return None
    try:
        return Audience.parse(node, "/audience")
    except RuleError as exc:
        raise CampaignError(exc.pointer, exc.message) from None


def _priority(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CampaignError("/priority", "expected a whole number (higher wins)")
    if not 0 <= value <= MAX_PRIORITY:
        raise CampaignError("/priority", f"expected a whole number from 0 to {MAX_PRIORITY}")
    return value


def parse_offer_key(value: Any, pointer: str, offers: Collection[str] | None) -> str | None:
    """The key of the offer a campaign (or a programme's variant) names at ``pointer``, and
    one of ``offers`` when they are given; ``None`` when it names none."""
    if value is None:
        return None
    if not isinstance(value, str) or not _KEY.match(value):
        raise CampaignError(pointer, "expected an offer's key, e.g. 'win-back-10'")
    if offers is not None and value not in offers:
        raise CampaignError(pointer, f"no offer {value!r}")
    return value


def _only(node: Mapping[str, Any], allowed: Collection[str], pointer: str) -> None:
    only(node, allowed, pointer, CampaignError, noun="field")


def _required(node: Mapping[str, Any], name: str, pointer: str) -> Any:
    if node.get(name) is None:
        raise CampaignError(child(pointer, name), "required")
    return node[name]


def parse_name(document: Mapping[str, Any]) -> str:
    """The document's ``/name``: a non-empty text of at most 200 characters."""
    value = text(document, "name", "", CampaignError, "a non-empty text")
    if len(value) > _NAME_MAX:
        raise CampaignError("/name", f"expected at most {_NAME_MAX} characters")
    return value.strip()


def _choice(value: Any, allowed: tuple[_Word, ...], pointer: str) -> _Word:
    """``value`` if it is one of ``allowed`` (the values of a ``Literal``)."""
    for word in allowed:
        if value == word:
            return word
    raise CampaignError(pointer, f"expected one of {list(allowed)}")


def _duration(value: Any, pointer: str) -> timedelta:
    if not isinstance(value, str):
        raise CampaignError(pointer, "expected a duration such as '2h', '14d' or '2w'")
    return duration(value, pointer, CampaignError)


def _moment(value: Any, pointer: str) -> datetime:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is not None:
                return moment
    raise CampaignError(pointer, "expected an ISO 8601 moment with its offset")


def parse_key(document: Mapping[str, Any], key: str | None) -> str:
    """The document's ``/key``, the same as the address's ``key`` when both are given."""
    written = document.get("key")
    if key is not None and written is not None and written != key:
        raise CampaignError("/key", f"the document says {written!r}, the address {key!r}")
    key = key if key is not None else written
    if not isinstance(key, str) or not _KEY.match(key):
        raise CampaignError(
            "/key", "expected lower-case letters, digits and dashes (up to 63), e.g. 'win-back'"
        )
    return key


def parse_trigger(
    node: Any, pointer: str, segments: Collection[str] | None
) -> SegmentTrigger | EventTrigger | MomentTrigger:
    """A campaign trigger as written at ``pointer`` (``segments``: the keys that exist)."""
    if not isinstance(node, Mapping):
        raise CampaignError(pointer, "expected an object with one of: segment, event, moment")
    if "segment" in node:
        _only(node, ("segment", "on"), pointer)
        segment = node["segment"]
        if not isinstance(segment, str) or not segment:
            raise CampaignError(child(pointer, "segment"), "expected a segment key")
        if segments is not None and segment not in segments:
            raise CampaignError(child(pointer, "segment"), f"no segment {segment!r}")
        on = _choice(node.get("on", "entered"), _ON, child(pointer, "on"))
        return SegmentTrigger(segment, on)
    if "event" in node:
        _only(node, ("event", "name", "where"), pointer)
        return _parse_event_trigger(node, pointer)
    if "moment" in node:
        _only(node, ("moment", "before", "after"), pointer)
        moment = node["moment"]
        if moment not in PROFILE_MOMENTS:
            raise CampaignError(
                child(pointer, "moment"), f"expected one of {list(PROFILE_MOMENTS)}"
            )
        if "before" in node and "after" in node:
            raise CampaignError(pointer, "takes one of: before, after")
        offset = timedelta(0)
        if "before" in node:
            offset = -_duration(node["before"], child(pointer, "before"))
        elif "after" in node:
            offset = _duration(node["after"], child(pointer, "after"))
        return MomentTrigger(moment, offset)
    raise CampaignError(pointer, "expected one of: segment, event, moment")


def _parse_event_trigger(node: Mapping[str, Any], pointer: str) -> EventTrigger:
    event = node["event"]
    if event not in EVENT_TYPES:
        raise CampaignError(child(pointer, "event"), f"expected one of {list(EVENT_TYPES)}")
    name = node.get("name")
    if name is not None and (event != "track" or not isinstance(name, str) or not name):
        raise CampaignError(
            child(pointer, "name"), "a name (of a custom event) goes with event 'track' only"
        )
    where = node.get("where", {})
    where_pointer = child(pointer, "where")
    if not isinstance(where, Mapping):
        raise CampaignError(where_pointer, "expected an object: property to value")
    filters = tuple(
        _parse_filter(str(k), v, child(where_pointer, str(k))) for k, v in where.items()
    )
    return EventTrigger(str(event), name, filters)


def _parse_filter(name: str, value: Any, pointer: str) -> PropertyFilter:
    if _is_scalar(value):
        return PropertyFilter(name, values=(value,))
    if isinstance(value, list) and value and all(_is_scalar(v) for v in value):
        return PropertyFilter(name, values=tuple(value))
    if isinstance(value, Mapping) and value and set(value) <= {"at_least", "at_most"}:
        low = (
            _number(value["at_least"], child(pointer, "at_least")) if "at_least" in value else None
        )
        high = _number(value["at_most"], child(pointer, "at_most")) if "at_most" in value else None
        if low is not None and high is not None and low > high:
            raise CampaignError(pointer, "at_least is above at_most")
        return PropertyFilter(name, low=low, high=high)
    raise CampaignError(
        pointer, "expected a value, a non-empty list of values, or {at_least, at_most}"
    )


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _number(value: Any, pointer: str) -> Decimal:
    return number(value, pointer, CampaignError, not_a_number="expected a finite number")


def parse_holdout(value: Any, pointer: str = "/holdout") -> float:
    """A holdout share as written at ``pointer``: 0 to :data:`MAX_HOLDOUT`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CampaignError(pointer, f"expected a share from 0 to {MAX_HOLDOUT}")
    if not 0 <= value <= MAX_HOLDOUT:
        raise CampaignError(pointer, f"expected a share from 0 to {MAX_HOLDOUT}")
    return float(value)


def parse_channels(value: Any, pointer: str = "/channels") -> ChannelPolicy:
    """A channel policy as written at ``pointer``: ``"best"`` or a list of channels."""
    if value == "best":
        return "best"
    if not isinstance(value, list) or not value:
        raise CampaignError(pointer, f"expected 'best' or a list of channels {list(CHANNELS)}")
    for i, channel in enumerate(value):
        if channel not in CHANNELS:
            raise CampaignError(f"{pointer}/{i}", f"expected one of {list(CHANNELS)}")
        if channel in value[:i]:
            raise CampaignError(f"{pointer}/{i}", f"{channel!r} is listed twice")
    return tuple(value)


def parse_templates(
    value: Any,
    channels: ChannelPolicy,
    known: Mapping[str, Collection[str]] | None,
    *,
    pointer: str = "/templates",
    channels_pointer: str = "/channels",
    check_channels: bool = True,
) -> dict[Channel, str]:
    """Channel to template key, as written at ``pointer``: one for each of ``channels``
    (unless not ``check_channels``: they did not parse), and each one of ``known``'s for
    its channel when ``known`` is given. Every bad entry is in the error's ``errors``."""
    templates_pointer = pointer
    if not isinstance(value, Mapping) or not value:
        raise CampaignError(templates_pointer, "expected an object: channel to template key")
    errors = _Errors()
    chosen: dict[Channel, str] = {}
    for channel, template in value.items():
        errors.attempt(_one_template(channel, template, known, chosen, pointer), None)
    if channels != "best" and check_channels:
        for i, channel in enumerate(channels):
            if channel not in chosen and f"{templates_pointer}/{channel}" not in {
                e.pointer for e in errors.found
            }:
                errors.found.append(
                    CampaignError(
                        f"{channels_pointer}/{i}", f"no template for {channel!r} in templates"
                    )
                )
    errors.check()
    return chosen


def _one_template(
    channel: Any,
    template: Any,
    known: Mapping[str, Collection[str]] | None,
    chosen: dict[Channel, str],
    templates_pointer: str,
) -> Callable[[], None]:
    """A check of one ``/templates`` entry that adds it to ``chosen`` when it is good."""

    def check() -> None:
        pointer = child(templates_pointer, str(channel))
        if channel not in CHANNELS:
            raise CampaignError(pointer, f"expected a channel, one of {list(CHANNELS)}")
        if not isinstance(template, str) or not template:
            raise CampaignError(pointer, "expected a template key")
        if known is not None and template not in known.get(channel, ()):
            raise CampaignError(pointer, f"no {channel} template {template!r}")
        chosen[channel] = template

    return check


def parse_goal(node: Any) -> Goal:
    """A goal as written at ``/goal``: ``{event, name?, within}``."""
    if not isinstance(node, Mapping):
        raise CampaignError("/goal", "expected {event, within}")
    _only(node, ("event", "name", "within"), "/goal")
    event = _choice(node.get("event", "purchase"), GOAL_EVENTS, "/goal/event")
    name = node.get("name")
    if event == "track" and (not isinstance(name, str) or not name):
        raise CampaignError("/goal/name", "a track goal names its custom event")
    if event != "track" and name is not None:
        raise CampaignError("/goal/name", "a name goes with event 'track' only")
    within = _duration(node.get("within", "14d"), "/goal/within")
    if within <= timedelta(0):
        raise CampaignError("/goal/within", "expected an attribution window longer than zero")
    return Goal(event, within, name)


def _parse_window(node: Any) -> tuple[datetime | None, datetime | None]:
    if not isinstance(node, Mapping):
        raise CampaignError("/active", "expected {from, until}")
    _only(node, ("from", "until"), "/active")
    since = _moment(node["from"], "/active/from") if node.get("from") is not None else None
    until = _moment(node["until"], "/active/until") if node.get("until") is not None else None
    if since is not None and until is not None and until <= since:
        raise CampaignError("/active/until", "expected a moment after 'from'")
    return since, until
