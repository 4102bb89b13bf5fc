"""Trigger campaigns: what starts one, whom it is for, what it sends and what it aims at.

A campaign is a trigger (a segment entered or left, an event of a type with a
filter on its data, or a moment of the buyer's own such as two days before the
expected next order), a delay, an audience rule, a holdout share, a channel
policy (an ordered list of channels, or ``best``), one template per channel, a
goal (an event within an attribution window), a priority, a re-entry policy, an
active window and a status. Marketers write it as JSON (what the console API
takes); :func:`parse_campaign` validates it with a precise error, a
:class:`CampaignError` naming the JSON pointer of the bad field, and
:meth:`Campaign.to_dict` writes it back.

A message is identified by its campaign, its buyer and the trigger occurrence
that caused it; :func:`message_key` is that identity, unique in the message
table and carried as the idempotency key of every provider call.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeVar, get_args

from shared.domain.documents import (
    DocumentError,
    as_decimal,
    child,
    duration,
    format_duration,
    number,
    only,
    text,
)
from shared.domain.events import CHANNELS, EVENT_TYPES, AnyEvent, Channel, TrackEvent
from shared.domain.profile import Profile, Purchases
from shared.domain.rendering import EmailTemplate, PushTemplate, SmsTemplate
from shared.domain.rules import Condition, RuleError, parse_rule
from shared.domain.segments import MembershipChange

__all__ = [
    "BUILTIN_CAMPAIGNS",
    "BUILTIN_PUSH_TEMPLATES",
    "BUILTIN_SMS_TEMPLATES",
    "BUILTIN_TEMPLATES",
    "MAX_HOLDOUT",
    "PROFILE_MOMENTS",
    "Audience",
    "Campaign",
    "CampaignError",
    "ChannelPolicy",
    "EventTrigger",
    "Goal",
    "MomentTrigger",
    "PropertyFilter",
    "Reentry",
    "SegmentTrigger",
    "Status",
    "Trigger",
    "campaigns_over",
    "campaigns_triggered_by",
    "campaigns_triggered_by_event",
    "format_duration",
    "message_context",
    "message_key",
    "parse_campaign",
]

Status = Literal["draft", "active", "paused"]
Reentry = Literal["once_per_buyer", "once_per_occurrence"]
ChannelPolicy = tuple[Channel, ...] | Literal["best"]
"""Channels to try in order, or ``best``: the channel that pays best for this buyer."""

MAX_HOLDOUT = 0.5
"""The largest share of an audience a campaign may hold out: a control group, not the most."""

PROFILE_MOMENTS: tuple[str, ...] = (
    "expected_next_order_at",
    "last_order_at",
    "first_order_at",
)
"""The profile moments a moment trigger may be set against, read by name from the profile."""

GOAL_EVENTS: tuple[str, ...] = ("purchase", "track")
"""Event types a goal may name: those whose last moment the profile keeps."""

ONCE_PER_BUYER = "once-per-buyer"
"""The occurrence of every message of a ``once_per_buyer`` campaign: one key, one message."""

_STATUSES: tuple[Status, ...] = get_args(Status)
_REENTRIES: tuple[Reentry, ...] = get_args(Reentry)
_ON: tuple[Literal["entered", "exited"], ...] = ("entered", "exited")
_Word = TypeVar("_Word", bound=str)

_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_NAME_MAX = 200


class CampaignError(DocumentError):
    """A campaign that does not validate: ``pointer`` names the bad field (RFC 6901)."""


# --- triggers ------------------------------------------------------------------------


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


# --- the campaign --------------------------------------------------------------------


@dataclass(frozen=True)
class Audience:
    """Whom a campaign is for: a rule in the segment rule language, kept as written too."""

    definition: Any
    rule: Condition = field(compare=False)

    @classmethod
    def parse(cls, definition: Any, pointer: str = "") -> Audience:
        """Parse ``definition``; raise :class:`~shared.domain.rules.RuleError` at a bad node."""
        return cls(copy.deepcopy(definition), parse_rule(definition, pointer))

    def holds(self, profile: Profile, now: datetime) -> bool:
        return self.rule.holds(profile, now)


@dataclass(frozen=True)
class Goal:
    """What the campaign aims at: an event (a purchase) within the attribution window.

    A goal event after the trigger and before the send means the message is no
    longer needed; one within ``within`` after the send is the campaign's conversion.
    """

    event: str = "purchase"
    within: timedelta = timedelta(days=14)
    name: str | None = None
    """For ``track``: the custom event's name."""

    def reached_at(self, profile: Profile) -> datetime | None:
        """The last moment the buyer reached the goal, as the profile keeps it."""
        if self.event == "purchase":
            return profile.last_order_at
        if self.event == "track" and self.name is not None:
            tally = profile.tracked.get(self.name)
            return tally.last_at if tally is not None else None
        return None


@dataclass(frozen=True)
class Campaign:
    """A trigger campaign; build it from JSON with :func:`parse_campaign`.

    ``templates`` maps each channel to its template key; a single template key
    stands for an email-only campaign (the form campaigns took before channels).
    """

    key: str
    name: str
    trigger: Trigger
    templates: Mapping[Channel, str]
    channels: ChannelPolicy = ("email",)
    delay: timedelta = timedelta(0)
    audience: Audience | None = None
    holdout: float = 0.0
    goal: Goal = field(default_factory=Goal)
    priority: int = 0
    """Higher wins when a frequency cap leaves room for only one message."""
    reentry: Reentry = "once_per_occurrence"
    active_from: datetime | None = None
    active_until: datetime | None = None
    status: Status = "active"

    def __post_init__(self) -> None:
        if isinstance(self.templates, str):
            object.__setattr__(self, "templates", {"email": self.templates})

    def __hash__(self) -> int:
        return hash(self.key)  # equal campaigns share their key; the templates are a dict

    @property
    def channel(self) -> Channel:
        """The campaign's first channel: where an email-only dispatcher sends."""
        if self.channels == "best":
            return next(c for c in CHANNELS if c in self.templates)
        return self.channels[0]

    @property
    def template(self) -> str:
        """The template of :attr:`channel`."""
        return self.templates[self.channel]

    @property
    def candidate_channels(self) -> tuple[Channel, ...]:
        """The channels this campaign may send on, in the order it tries them."""
        if self.channels == "best":
            return tuple(c for c in CHANNELS if c in self.templates)
        return self.channels

    def is_live(self, now: datetime) -> bool:
        """Active, and ``now`` inside the active window (from inclusive, until exclusive)."""
        return (
            self.status == "active"
            and (self.active_from is None or now >= self.active_from)
            and (self.active_until is None or now < self.active_until)
        )

    def occurrence(self, trigger_occurrence: str) -> str:
        """The occurrence a message is keyed by: the trigger's, or one per buyer."""
        return ONCE_PER_BUYER if self.reentry == "once_per_buyer" else trigger_occurrence

    def to_dict(self) -> dict[str, Any]:
        """The campaign as JSON-shaped data; :func:`parse_campaign` reads it back."""
        document: dict[str, Any] = {
            "key": self.key,
            "name": self.name,
            "status": self.status,
            "trigger": _trigger_to_dict(self.trigger),
            "delay": format_duration(self.delay),
            "holdout": self.holdout,
            "channels": self.channels if self.channels == "best" else list(self.channels),
            "templates": dict(self.templates),
            "goal": _goal_to_dict(self.goal),
            "priority": self.priority,
            "reentry": self.reentry,
        }
        if self.audience is not None:
            document["audience"] = copy.deepcopy(self.audience.definition)
        active = {
            k: v.isoformat()
            for k, v in (("from", self.active_from), ("until", self.active_until))
            if v is not None
        }
        if active:
            document["active"] = active
        return document


def campaigns_triggered_by(
    campaigns: Iterable[Campaign], change: MembershipChange
) -> list[Campaign]:
    """The live campaigns a segment change starts, in the order given."""
    return [
        c
        for c in campaigns
        if isinstance(c.trigger, SegmentTrigger)
        and c.trigger.segment == change.segment
        and c.trigger.on == change.kind
        and c.is_live(change.at)
    ]


def campaigns_triggered_by_event(campaigns: Iterable[Campaign], event: AnyEvent) -> list[Campaign]:
    """The live campaigns an event starts (its ``event_id`` is the occurrence), in order."""
    return [
        c
        for c in campaigns
        if isinstance(c.trigger, EventTrigger)
        and c.trigger.matches(event)
        and c.is_live(event.occurred_at)
    ]


def message_key(campaign: str, profile_id: str, occurrence_id: str) -> str:
    """The unique identity of one message: (campaign, buyer, trigger occurrence)."""
    digest = hashlib.sha256(f"{campaign}|{profile_id}|{occurrence_id}".encode()).hexdigest()
    return f"{campaign}-{digest[:32]}"


def message_context(
    profile: Profile,
    *,
    unsubscribe_url: str,
    trigger: Mapping[str, Any] | None = None,
) -> Mapping[str, Any]:
    """What a template sees: the buyer, the link that unsubscribes them in one click, and
    ``trigger``: the triggering event's data (a cart's properties), empty for other triggers.

    ``customer`` holds the buyer's figures, rhythm and traits (``customer.traits.first_name``),
    ``basket`` the standard basket (``[{sku, quantity}]``: what a monthly buyer's reminder
    lists) and ``offer`` the recommended offer: the SKU the buyer orders most, and the
    category they buy most in.
    """
    return {
        "unsubscribe_url": unsubscribe_url,
        "trigger": dict(trigger or {}),
        "customer": {
            "orders_count": profile.orders_count,
            "revenue_total": profile.revenue_total,
            "avg_check": profile.avg_check,
            "first_order_at": profile.first_order_at,
            "last_order_at": profile.last_order_at,
            "median_days_between_orders": profile.median_days_between_orders,
            "expected_next_order_at": profile.expected_next_order_at,
            "traits": dict(profile.traits),
            "rfm_segment": profile.rfm_segment,
        },
        "basket": [{"sku": sku, "quantity": quantity} for sku, quantity in profile.standard_basket],
        "offer": {
            "sku": _most_bought(profile.skus),
            "category": _most_bought(profile.categories),
        },
    }


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _most_bought(purchases: Mapping[str, Purchases]) -> str | None:
    """The key bought in the most orders (the latest on a tie), or ``None``."""
    if not purchases:
        return None
    return max(
        purchases,
        key=lambda k: (purchases[k].orders, purchases[k].last_at or _EPOCH, k),
    )


# --- parsing -------------------------------------------------------------------------

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
) -> Campaign:
    """Validate a campaign written as JSON; raise :class:`CampaignError` at the first bad field.

    ``key``: the key from the URL (``PUT /v1/campaigns/{key}``); the document may
    repeat it but not contradict it. ``segments`` (keys) and ``templates`` (channel to
    template keys), when given, are what exists: a trigger on another segment, or a
    template that is not one of its channel's, is refused. A campaign saved without a
    status is a draft: saving never starts sending.
    """
    if not isinstance(document, Mapping):
        raise CampaignError("", "expected an object")
    _only(document, _FIELDS, "")
    key = _parse_key(document, key)
    name = _name(document)
    status = _choice(document.get("status", "draft"), _STATUSES, "/status")
    trigger = _parse_trigger(_required(document, "trigger", ""), "/trigger", segments)
    delay = _duration(document.get("delay", "0m"), "/delay")
    audience = None
    if document.get("audience") is not None:
        try:
            audience = Audience.parse(document["audience"], "/audience")
        except RuleError as exc:
            raise CampaignError(exc.pointer, exc.message) from None
    holdout = _holdout(document.get("holdout", 0))
    channels = _parse_channels(_required(document, "channels", ""))
    chosen = _parse_templates(_required(document, "templates", ""), channels, templates)
    goal = _parse_goal(document.get("goal", {"event": "purchase", "within": "14d"}))
    priority = document.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise CampaignError("/priority", "expected a whole number (higher wins)")
    if not 0 <= priority <= MAX_PRIORITY:
        raise CampaignError("/priority", f"expected a whole number from 0 to {MAX_PRIORITY}")
    reentry = _choice(document.get("reentry", "once_per_occurrence"), get_args(Reentry), "/reentry")
    active_from, active_until = _parse_window(document.get("active", {}))
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
    )


def _only(node: Mapping[str, Any], allowed: Collection[str], pointer: str) -> None:
    only(node, allowed, pointer, CampaignError, noun="field")


def _required(node: Mapping[str, Any], name: str, pointer: str) -> Any:
    if node.get(name) is None:
        raise CampaignError(child(pointer, name), "required")
    return node[name]


def _name(document: Mapping[str, Any]) -> str:
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


def _parse_key(document: Mapping[str, Any], key: str | None) -> str:
    written = document.get("key")
    if key is not None and written is not None and written != key:
        raise CampaignError("/key", f"the document says {written!r}, the address {key!r}")
    key = key if key is not None else written
    if not isinstance(key, str) or not _KEY.match(key):
        raise CampaignError(
            "/key", "expected lower-case letters, digits and dashes (up to 63), e.g. 'win-back'"
        )
    return key


def _parse_trigger(
    node: Any, pointer: str, segments: Collection[str] | None
) -> SegmentTrigger | EventTrigger | MomentTrigger:
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


def _holdout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CampaignError("/holdout", f"expected a share from 0 to {MAX_HOLDOUT}")
    if not 0 <= value <= MAX_HOLDOUT:
        raise CampaignError("/holdout", f"expected a share from 0 to {MAX_HOLDOUT}")
    return float(value)


def _parse_channels(value: Any) -> ChannelPolicy:
    if value == "best":
        return "best"
    if not isinstance(value, list) or not value:
        raise CampaignError("/channels", f"expected 'best' or a list of channels {list(CHANNELS)}")
    for i, channel in enumerate(value):
        if channel not in CHANNELS:
            raise CampaignError(f"/channels/{i}", f"expected one of {list(CHANNELS)}")
        if channel in value[:i]:
            raise CampaignError(f"/channels/{i}", f"{channel!r} is listed twice")
    return tuple(value)


def _parse_templates(
    value: Any, channels: ChannelPolicy, known: Mapping[str, Collection[str]] | None
) -> dict[Channel, str]:
    if not isinstance(value, Mapping) or not value:
        raise CampaignError("/templates", "expected an object: channel to template key")
    chosen: dict[Channel, str] = {}
    for channel, template in value.items():
        pointer = child("/templates", str(channel))
        if channel not in CHANNELS:
            raise CampaignError(pointer, f"expected a channel, one of {list(CHANNELS)}")
        if not isinstance(template, str) or not template:
            raise CampaignError(pointer, "expected a template key")
        if known is not None and template not in known.get(channel, ()):
            raise CampaignError(pointer, f"no {channel} template {template!r}")
        chosen[channel] = template
    if channels != "best":
        for i, channel in enumerate(channels):
            if channel not in chosen:
                raise CampaignError(f"/channels/{i}", f"no template for {channel!r} in templates")
    return chosen


def _parse_goal(node: Any) -> Goal:
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


# --- writing back ----------------------------------------------------------------------


def _trigger_to_dict(trigger: Trigger) -> dict[str, Any]:
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


def _goal_to_dict(goal: Goal) -> dict[str, Any]:
    document: dict[str, Any] = {"event": goal.event, "within": format_duration(goal.within)}
    if goal.name is not None:
        document["name"] = goal.name
    return document


# --- event data ------------------------------------------------------------------------


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


# --- ready-made campaigns --------------------------------------------------------------

_UNSUBSCRIBE_HTML = (
    '<p style="font-size: small"><a href="{{ unsubscribe_url }}">Unsubscribe</a> '
    "from these emails.</p>"
)
_UNSUBSCRIBE_TEXT = "\nUnsubscribe from these emails: {{ unsubscribe_url }}\n"
_SMS_STOP = " Stop: {{ unsubscribe_url }}"


def _email(subject: str, body_html: str, body_text: str) -> EmailTemplate:
    return EmailTemplate(
        subject=subject,
        html=f"<p>Hello!</p>{body_html}{_UNSUBSCRIBE_HTML}",
        text=f"Hello!\n\n{body_text}\n{_UNSUBSCRIBE_TEXT}",
    )


BUILTIN_TEMPLATES: dict[str, EmailTemplate] = {
    "win-back-email": EmailTemplate(
        subject="We miss you: 10% off your next order",
        html=(
            "<p>Hello!</p><p>It has been a while since your last order"
            "{% if customer.last_order_at %} on {{ customer.last_order_at.strftime('%d %B') }}"
            "{% endif %}. Here is 10% off your next one with the code <b>COMEBACK10</b>.</p>"
            '<p style="font-size: small"><a href="{{ unsubscribe_url }}">Unsubscribe</a> '
            "from these emails.</p>"
        ),
        text=(
            "Hello!\n\nIt has been a while since your last order"
            "{% if customer.last_order_at %} on {{ customer.last_order_at.strftime('%d %B') }}"
            "{% endif %}. Here is 10% off your next one with the code COMEBACK10.\n"
            "\nUnsubscribe from these emails: {{ unsubscribe_url }}\n"
        ),
    ),
    "welcome-email": _email(
        "Welcome! 5% off your first order",
        "<p>Thank you for joining us. Your first order is 5% cheaper with the code "
        "<b>WELCOME5</b>.</p>",
        "Thank you for joining us. Your first order is 5% cheaper with the code WELCOME5.",
    ),
    "second-order-email": _email(
        "Thank you for your first order: a gift for the second",
        "<p>We hope you enjoyed your first order"
        "{% if customer.last_order_at %} of {{ customer.last_order_at.strftime('%d %B') }}"
        "{% endif %}. Your second one comes with free delivery: use the code "
        "<b>SECOND</b>.</p>",
        "We hope you enjoyed your first order"
        "{% if customer.last_order_at %} of {{ customer.last_order_at.strftime('%d %B') }}"
        "{% endif %}. Your second one comes with free delivery: use the code SECOND.",
    ),
    "monthly-basket-email": _email(
        "Time to restock your usual basket?",
        "<p>By your usual rhythm your next order is due in a few days. Your usual basket "
        "is one click away:</p>"
        "{% if basket %}<ul>{% for item in basket %}<li>{{ item.sku }} &times; {{ item.quantity }}"
        "</li>{% endfor %}</ul>{% endif %}",
        "By your usual rhythm your next order is due in a few days. Your usual basket is one "
        "click away:"
        "{% for item in basket %}\n- {{ item.sku }} x {{ item.quantity }}{% endfor %}",
    ),
    "pre-churn-email": _email(
        "Is everything all right? 15% off to welcome you back",
        "<p>We have not seen you for longer than usual. Here is 15% off your next order with "
        "the code <b>STAY15</b>, valid for two weeks.</p>",
        "We have not seen you for longer than usual. Here is 15% off your next order with the "
        "code STAY15, valid for two weeks.",
    ),
    "abandoned-cart-email": _email(
        "You left something in your cart",
        "<p>Your cart is waiting for you"
        "{% if trigger.total is defined %}: {{ trigger.total }} in all{% endif %}. "
        "Complete your order before the items run out.</p>",
        "Your cart is waiting for you"
        "{% if trigger.total is defined %}: {{ trigger.total }} in all{% endif %}. "
        "Complete your order before the items run out.",
    ),
}
"""Email templates of the ready-made campaigns, by key."""

BUILTIN_SMS_TEMPLATES: dict[str, SmsTemplate] = {
    "monthly-basket-sms": SmsTemplate(
        "Your usual basket is due in a few days: order it in one click." + _SMS_STOP
    ),
    "pre-churn-sms": SmsTemplate("We miss you! 15% off your next order: code STAY15." + _SMS_STOP),
}
"""SMS templates of the ready-made campaigns (GSM-7 text, so one segment costs less)."""

BUILTIN_PUSH_TEMPLATES: dict[str, PushTemplate] = {
    "second-order-push": PushTemplate(
        title="Free delivery on your second order", body="Use the code SECOND at checkout."
    ),
    "monthly-basket-push": PushTemplate(
        title="Time to restock?", body="Your usual basket is due in a few days."
    ),
    "pre-churn-push": PushTemplate(title="We miss you", body="15% off your next order: STAY15."),
    "abandoned-cart-push": PushTemplate(
        title="Your cart is waiting", body="Complete your order before the items run out."
    ),
}
"""Push templates of the ready-made campaigns."""

_READY_MADE: tuple[dict[str, Any], ...] = (
    {
        "key": "win-back-30d",
        "name": "Win-back after 30 days without an order",
        "status": "active",
        "trigger": {"segment": "no-order-30d", "on": "entered"},
        "channels": ["email"],
        "templates": {"email": "win-back-email"},
        "goal": {"event": "purchase", "within": "30d"},
        "priority": 40,
    },
    {
        "key": "welcome-lead",
        "name": "Welcome for new leads",
        "trigger": {"segment": "lifecycle-lead", "on": "entered"},
        "holdout": 0.1,
        "channels": ["email"],
        "templates": {"email": "welcome-email"},
        "goal": {"event": "purchase", "within": "30d"},
        "priority": 50,
        "reentry": "once_per_buyer",
    },
    {
        "key": "second-order",
        "name": "Second order, two weeks after the first",
        "trigger": {"segment": "lifecycle-new", "on": "entered"},
        "delay": "14d",
        "holdout": 0.1,
        "channels": ["email", "push"],
        "templates": {"email": "second-order-email", "push": "second-order-push"},
        "goal": {"event": "purchase", "within": "14d"},
        "priority": 60,
        "reentry": "once_per_buyer",
    },
    {
        "key": "monthly-basket",
        "name": "Monthly basket reminder, 3 days before the expected next order",
        "trigger": {"moment": "expected_next_order_at", "before": "3d"},
        "audience": {"rhythm": "median_days_between_orders", "between": [20, 40]},
        "holdout": 0.1,
        "channels": "best",
        "templates": {
            "email": "monthly-basket-email",
            "sms": "monthly-basket-sms",
            "push": "monthly-basket-push",
        },
        "goal": {"event": "purchase", "within": "7d"},
        "priority": 30,
    },
    {
        "key": "pre-churn-rescue",
        "name": "Pre-churn rescue: overdue against their own rhythm",
        "trigger": {"segment": "lifecycle-pre-churn", "on": "entered"},
        "holdout": 0.1,
        "channels": "best",
        "templates": {
            "email": "pre-churn-email",
            "sms": "pre-churn-sms",
            "push": "pre-churn-push",
        },
        "goal": {"event": "purchase", "within": "21d"},
        "priority": 70,
    },
    {
        "key": "abandoned-cart",
        "name": "Abandoned cart: no order 2 hours after the cart changed",
        "trigger": {"event": "track", "name": "cart_updated"},
        "delay": "2h",
        "holdout": 0.1,
        "channels": ["email", "push"],
        "templates": {"email": "abandoned-cart-email", "push": "abandoned-cart-push"},
        "goal": {"event": "purchase", "within": "3d"},
        "priority": 80,
    },
)

BUILTIN_CAMPAIGNS: tuple[Campaign, ...] = tuple(parse_campaign(c) for c in _READY_MADE)
"""Campaigns every shop has: win-back is active, the others are drafts a shop switches on."""
