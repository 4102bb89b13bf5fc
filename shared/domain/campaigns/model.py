"""A trigger campaign: whom it is for, what it sends on which channels, what it aims at.

:class:`Campaign` holds a trigger (:mod:`.triggers`), a delay, an audience rule,
a holdout share, a channel policy (an ordered list of channels, or ``best``), one
template per channel, a goal (an event within an attribution window), a
priority, a re-entry policy, an active window and a status; :meth:`Campaign.to_dict`
writes it as the JSON :func:`~shared.domain.campaigns.parsing.parse_campaign` reads.

A message is identified by its campaign, its buyer and the trigger occurrence
that caused it; :func:`message_key` is that identity, unique in the message
table and carried as the idempotency key of every provider call.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shared.domain.campaigns.triggers import EventTrigger, SegmentTrigger, Trigger, trigger_document
from shared.domain.documents import format_duration
from shared.domain.events import CHANNELS, AnyEvent, Channel
from shared.domain.profile import Profile, Purchases
from shared.domain.rules import Condition, parse_rule
from shared.domain.segments import MembershipChange

__all__ = [
    "GOAL_EVENTS",
    "MAX_HOLDOUT",
    "ONCE_PER_BUYER",
    "Audience",
    "Campaign",
    "ChannelPolicy",
    "Goal",
    "Reentry",
    "Status",
    "campaigns_triggered_by",
    "campaigns_triggered_by_event",
    "message_context",
    "message_key",
]

Status = Literal["draft", "active", "paused"]
Reentry = Literal["once_per_buyer", "once_per_occurrence"]
ChannelPolicy = tuple[Channel, ...] | Literal["best"]
"""Channels to try in order, or ``best``: the channel that pays best for this buyer."""

MAX_HOLDOUT = 0.5
"""The largest share of an audience a campaign may hold out: a control group, not the most."""

GOAL_EVENTS: tuple[str, ...] = ("purchase", "track")
"""Event types a goal may name: those whose last moment the profile keeps."""

ONCE_PER_BUYER = "once-per-buyer"
"""The occurrence of every message of a ``once_per_buyer`` campaign: one key, one message."""


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
    """A trigger campaign; build it from JSON with :func:`~.parsing.parse_campaign`.

    ``templates`` maps each channel to its template key.
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
    offer: str | None = None
    """The key of the offer each message carries one code of (docs/offers.md), if any."""

    def __hash__(self) -> int:
        return hash(self.key)  # equal campaigns share their key; the templates are a dict

    @property
    def channel(self) -> Channel:
        """The first channel the campaign tries (for ``best``, the first with a template)."""
        if self.channels == "best":
            return next(c for c in CHANNELS if c in self.templates)
        return self.channels[0]

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
            "trigger": trigger_document(self.trigger),
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
        if self.offer is not None:
            document["offer"] = self.offer
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


def _goal_to_dict(goal: Goal) -> dict[str, Any]:
    document: dict[str, Any] = {"event": goal.event, "within": format_duration(goal.within)}
    if goal.name is not None:
        document["name"] = goal.name
    return document


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _most_bought(purchases: Mapping[str, Purchases]) -> str | None:
    """The key bought in the most orders (the latest on a tie), or ``None``."""
    if not purchases:
        return None
    return max(
        purchases,
        key=lambda k: (purchases[k].orders, purchases[k].last_at or _EPOCH, k),
    )
