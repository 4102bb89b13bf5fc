"""What the dispatcher's parts hand each other: a message being decided, one committed
``sending``, the message row as first written, the providers and the timings they share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.domain.campaigns import Campaign
from shared.domain.decisions import Reason, ScheduledSend
from shared.domain.events import Channel
from shared.domain.profile import Profile
from shared.ports.providers import (
    EmailMessage,
    EmailProvider,
    PushMessage,
    PushProvider,
    SmsMessage,
    SmsProvider,
)
from shared.ports.store import MessageRecord

__all__ = ["Draft", "Outbound", "Outgoing", "Providers", "Timing", "first_record"]

Outbound = EmailMessage | SmsMessage | PushMessage


@dataclass(frozen=True)
class Draft:
    """One message being decided: its campaign, its buyer, its send and the trigger's context."""

    campaign: Campaign
    profile: Profile
    send: ScheduledSend
    context: Mapping[str, Any]
    history: tuple[Reason, ...] = ()
    """What was decided before (a scheduled message's first decision): kept in the trail."""
    push_address: str | None = None
    """The buyer's app install, where a push notification goes."""
    offer: Mapping[str, Any] | None = None
    """What the template sees as ``offer`` when the message carries a promo code
    (:mod:`services.dispatcher.offering`)."""


@dataclass(frozen=True)
class Outgoing:
    """A message committed ``sending``: what to hand to a provider, and what to fall back to."""

    draft: Draft
    channel: Channel
    message: Outbound
    fallbacks: tuple[Channel, ...]


@dataclass
class Providers:
    """The dispatcher's providers, one per channel; SMS and push only where configured."""

    email: EmailProvider
    sms: SmsProvider | None = None
    push: PushProvider | None = None

    @property
    def channels(self) -> tuple[Channel, ...]:
        """The channels a message can go out on: those with a provider."""
        present: dict[Channel, object | None] = {
            "email": self.email,
            "sms": self.sms,
            "push": self.push,
        }
        return tuple(channel for channel, provider in present.items() if provider is not None)


@dataclass
class Timing:
    """How long a send may be in flight, and when a message is tried again after its
    provider was down or no render worker could be had."""

    in_flight_timeout: timedelta = timedelta(minutes=10)
    """How long a send may be in flight before it counts as lost in a crash; longer than a
    provider's retries take."""
    retry_after: timedelta = timedelta(minutes=1)
    """How long a message whose provider was down (unavailable, timing out, its breaker
    open) or that found no render worker waits before it is tried again."""
    retry_for: timedelta = timedelta(hours=6)
    """How long after its trigger such a message is still tried; then it stays ``failed``."""


def first_record(
    campaign: Campaign,
    send: ScheduledSend,
    status: str,
    now: datetime,
    reason: Reason,
    *,
    trail: Sequence[Reason] = (),
) -> MessageRecord:
    """The message row as first written; the outcome is recorded on it after."""
    return MessageRecord(
        key=send.key,
        campaign=campaign.key,
        profile_id=send.profile_id,
        channel=send.channel or campaign.channel,
        occurrence_id=send.occurrence_id,
        status=status,
        created_at=now,
        reason=reason.code,
        holdout=reason.code == "holdout",
        priority=campaign.priority,
        scheduled_for=send.due_at if status == "scheduled" else None,
        decision=tuple(trail) or (reason,),
    )
