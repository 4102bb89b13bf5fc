"""Trigger campaigns: which segment change sends which message, once.

A message is identified by its campaign, its buyer and the trigger occurrence
that caused it; :func:`message_key` is that identity, unique in the message
table and carried as the idempotency key of every provider call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from shared.domain.profile import Profile
from shared.domain.rendering import EmailTemplate
from shared.domain.segments import MembershipChange

__all__ = [
    "BUILTIN_CAMPAIGNS",
    "BUILTIN_TEMPLATES",
    "Campaign",
    "SegmentTrigger",
    "campaigns_triggered_by",
    "message_context",
    "message_key",
]


@dataclass(frozen=True)
class SegmentTrigger:
    segment: str
    on: Literal["entered", "exited"] = "entered"


@dataclass(frozen=True)
class Campaign:
    key: str
    name: str
    trigger: SegmentTrigger
    template: str
    channel: Literal["email"] = "email"


def campaigns_triggered_by(
    campaigns: Iterable[Campaign], change: MembershipChange
) -> list[Campaign]:
    return [
        c for c in campaigns if c.trigger.segment == change.segment and c.trigger.on == change.kind
    ]


def message_key(campaign: str, profile_id: str, occurrence_id: str) -> str:
    """The unique identity of one message: (campaign, buyer, trigger occurrence)."""
    digest = hashlib.sha256(f"{campaign}|{profile_id}|{occurrence_id}".encode()).hexdigest()
    return f"{campaign}-{digest[:32]}"


def message_context(profile: Profile, *, unsubscribe_url: str) -> Mapping[str, Any]:
    """What a template sees: the buyer, and the link that unsubscribes them in one click."""
    return {
        "unsubscribe_url": unsubscribe_url,
        "customer": {
            "orders_count": profile.orders_count,
            "revenue_total": profile.revenue_total,
            "avg_check": profile.avg_check,
            "first_order_at": profile.first_order_at,
            "last_order_at": profile.last_order_at,
        },
    }


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
}

BUILTIN_CAMPAIGNS: tuple[Campaign, ...] = (
    Campaign(
        key="win-back-30d",
        name="Win-back after 30 days without an order",
        trigger=SegmentTrigger(segment="no-order-30d", on="entered"),
        template="win-back-email",
    ),
)
