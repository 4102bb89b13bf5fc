"""Which channel a message goes out on: the reachable ones, and the one that pays best.

A channel is *reachable* when the buyer has an address on it (an email, a
phone, an app install for push), has not withdrawn consent and is not
suppressed there (:meth:`~shared.domain.profile.Profile.barred_from`).

With an ordered channel policy the first reachable channel is chosen and the
rest, in order, are the fallbacks. With ``best`` every reachable channel gets a
score::

    p     ~ Beta(prior.alpha + responses, prior.beta + sent - responses)
    score = p * response_value - cost

``p`` is the chance the buyer responds (clicks; for push, opens the
notification) to a message on that channel. The prior comes from similar
buyers (a segment's or the whole base's response rate, as pseudo-messages), so
while the buyer's own history is thin the estimate stays near theirs and moves
to the buyer's own rate as messages add up. ``p`` is *drawn* from the posterior
(Thompson sampling) with an injected :class:`random.Random` rather than taken at
its mean, so a channel that looks slightly worse is still tried now and then and
its estimate keeps improving. The channel with the highest score is chosen; the
other reachable channels, by their score at the posterior mean, are the
fallbacks for when the chosen one fails for good (a rejected address).

When the message is written, a channel the buyer cannot receive it on (no
address there, or no provider for the channel) is passed over for the next one
(:func:`receiving_address`). When a provider rejects the message, it goes out
on the next of the fallbacks it can be written for (:func:`falls_back`,
:func:`fallbacks_after`). A provider that is down is tried again later only on
the channels whose providers deliver one message per idempotency key (SMS and
push: :func:`can_send_again`), within the time allowed (:func:`tried_again_later`);
an email never is, since it may have gone before the failure.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from shared.domain.events import CHANNELS, Channel
from shared.domain.profile import Profile

__all__ = [
    "DEFAULT_COSTS",
    "DEFAULT_PRIORS",
    "RESENDABLE",
    "BetaPrior",
    "ChannelChoice",
    "ChannelEconomics",
    "ChannelEvidence",
    "can_send_again",
    "choose_channel",
    "evidence_from",
    "fallbacks_after",
    "falls_back",
    "reachable_channels",
    "receiving_address",
    "tried_again_later",
]

RESENDABLE: tuple[Channel, ...] = ("sms", "push")
"""Channels whose providers deliver one message per idempotency key: safe to send again."""


@dataclass(frozen=True)
class BetaPrior:
    """What similar buyers say of a channel's response rate, as pseudo-counts."""

    alpha: float
    beta: float

    def __post_init__(self) -> None:
        if self.alpha <= 0 or self.beta <= 0:
            raise ValueError("a Beta prior needs alpha > 0 and beta > 0")

    @classmethod
    def from_rate(cls, rate: float, strength: float = 20.0) -> BetaPrior:
        """A prior with mean ``rate`` worth ``strength`` messages of the buyer's own."""
        rate = min(max(rate, 1e-4), 1 - 1e-4)
        return cls(rate * strength, (1 - rate) * strength)

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


@dataclass(frozen=True)
class ChannelEvidence:
    """What the buyer did with the messages sent on one channel."""

    sent: int = 0
    responses: int = 0


DEFAULT_COSTS: Mapping[Channel, float] = {"email": 0.1, "sms": 3.5, "push": 0.02}
"""Cost per message in the shop's currency: an email almost nothing, an SMS a few roubles."""

DEFAULT_PRIORS: Mapping[Channel, BetaPrior] = {
    "email": BetaPrior.from_rate(0.03),
    "sms": BetaPrior.from_rate(0.06),
    "push": BetaPrior.from_rate(0.04),
}
"""Response rates to start from when nothing better is known: a click on 3% of emails."""


@dataclass(frozen=True)
class ChannelEconomics:
    """What a response is worth and what a message costs, per channel."""

    costs: Mapping[Channel, float] = field(default_factory=lambda: dict(DEFAULT_COSTS))
    response_value: float = 60.0
    """The value of one response (a click) in the shop's currency: roughly the share of
    clicks that become orders times the margin on an average order."""
    priors: Mapping[Channel, BetaPrior] = field(default_factory=lambda: dict(DEFAULT_PRIORS))


@dataclass(frozen=True)
class ChannelChoice:
    channel: Channel
    fallbacks: tuple[Channel, ...]
    """The other reachable channels, to try in order when ``channel`` fails for good."""
    how: Literal["order", "best"]
    scores: Mapping[Channel, float] = field(default_factory=dict)
    """For ``best``: each reachable channel's sampled score (p * value - cost)."""


def reachable_channels(
    profile: Profile, candidates: Sequence[Channel], *, push_address: str | None = None
) -> tuple[list[Channel], dict[Channel, str]]:
    """The ``candidates`` nudge may send on, in order, and why each other one is not.

    The reasons are ``no_address``, ``unsubscribed`` and ``suppressed``. Push is
    reachable only with ``push_address`` (an app install or device token the
    dispatcher knows for the buyer).
    """
    addresses = _addresses(profile, push_address)
    reachable: list[Channel] = []
    barred: dict[Channel, str] = {}
    for channel in candidates:
        why = "no_address" if not addresses[channel] else profile.barred_from(channel)
        if why is None:
            reachable.append(channel)
        else:
            barred[channel] = why
    return reachable, barred


def receiving_address(
    channel: Channel,
    profile: Profile,
    *,
    push_address: str | None,
    providers: Collection[Channel],
) -> str | None:
    """Where a message on ``channel`` reaches the buyer, or ``None`` when it cannot be
    sent there: no provider for the channel among ``providers``, or no address of the
    buyer's on it (for push, no ``push_address``)."""
    if channel not in providers:
        return None
    return _addresses(profile, push_address)[channel]


def falls_back(outcome: str, fallbacks: Sequence[Channel]) -> bool:
    """Whether a provider's ``outcome`` moves the message on to a fallback channel: only a
    rejection does (that address is refused for good), and only if a fallback is left."""
    return outcome == "rejected" and bool(fallbacks)


def fallbacks_after(channels: Sequence[Channel], channel: Channel) -> tuple[Channel, ...]:
    """What is left to fall back to once the message goes out on ``channel``."""
    return tuple(channels[channels.index(channel) + 1 :])


def can_send_again(channel: str | None) -> Channel | None:
    """``channel`` if its provider delivers one message per idempotency key (SMS, push), so
    a send whose outcome was lost may go again with the same key; else ``None`` (email:
    SMTP has no such key, so an email goes at most once)."""
    return next((c for c in RESENDABLE if c == channel), None)


def tried_again_later(outcome: str, channel: Channel, *, at: datetime, until: datetime) -> bool:
    """Whether a message whose provider was down (``outcome`` is ``failed``) is tried again
    ``at`` a later moment: only on a channel that may send again, and only if ``at`` is no
    later than ``until``."""
    return outcome == "failed" and can_send_again(channel) is not None and at <= until


def _addresses(profile: Profile, push_address: str | None) -> dict[Channel, str | None]:
    return {"email": profile.email, "sms": profile.phone, "push": push_address}


def evidence_from(profile: Profile) -> dict[Channel, ChannelEvidence]:
    """The buyer's responses per channel as the profile keeps them.

    Messages count as delivered ones; a response is a click, and for push an open
    (a tap on the notification) too.
    """
    evidence: dict[Channel, ChannelEvidence] = {}
    for channel in CHANNELS:
        stats = profile.engagement.get(channel)
        if stats is None:
            continue
        responses = max(stats.clicks, stats.opens) if channel == "push" else stats.clicks
        evidence[channel] = ChannelEvidence(max(stats.delivered, responses), responses)
    return evidence


def choose_channel(
    reachable: Sequence[Channel],
    *,
    best: bool,
    evidence: Mapping[Channel, ChannelEvidence],
    economics: ChannelEconomics,
    rng: random.Random,
) -> ChannelChoice:
    """Choose among ``reachable`` (non-empty, in the campaign's order); see the module doc."""
    if not reachable:
        raise ValueError("no reachable channel to choose from")
    if not best or len(reachable) == 1:
        return ChannelChoice(reachable[0], tuple(reachable[1:]), "best" if best else "order")
    sampled: dict[Channel, float] = {}
    expected: dict[Channel, float] = {}
    for channel in reachable:
        alpha, beta = _posterior(channel, evidence, economics)
        cost = economics.costs.get(channel, 0.0)
        sampled[channel] = rng.betavariate(alpha, beta) * economics.response_value - cost
        expected[channel] = alpha / (alpha + beta) * economics.response_value - cost
    chosen = max(reachable, key=lambda c: sampled[c])  # the first of equals wins
    rest = sorted((c for c in reachable if c != chosen), key=lambda c: -expected[c])
    return ChannelChoice(chosen, tuple(rest), "best", sampled)


def _posterior(
    channel: Channel, evidence: Mapping[Channel, ChannelEvidence], economics: ChannelEconomics
) -> tuple[float, float]:
    prior = economics.priors.get(channel) or DEFAULT_PRIORS[channel]
    seen = evidence.get(channel, ChannelEvidence())
    responses = min(max(seen.responses, 0), max(seen.sent, 0))
    return prior.alpha + responses, prior.beta + max(seen.sent, 0) - responses
