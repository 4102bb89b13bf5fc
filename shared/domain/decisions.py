"""Whether, when and on which channel a campaign's message goes to one buyer.

:func:`decide` runs the steps below in this order; the first that says no ends
the decision with its reason (a :class:`Reason`, so a report can say why a
buyer got nothing), and the steps that move the send later say so in the trail:

1. ``campaign``: the campaign is active and inside its window, and the buyer is
   in its audience (``campaign_not_live``, ``not_in_audience``);
2. ``consent``: at least one of the campaign's channels is reachable: an
   address, consent not withdrawn, not suppressed (``no_address``,
   ``unsubscribed``, ``suppressed``, or ``unreachable`` when the channels
   disagree on why);
3. ``holdout``: the buyer is in the campaign's control group (``holdout``); the
   draw is a hash of campaign and buyer, so it is the same in every process and
   for every occurrence;
4. ``caps``: frequency caps, per buyer per day and per week, and per campaign
   per week (``capped``, or ``capped_deferred`` when room opens soon enough);
5. ``sunset``: a buyer who has not responded (opened, clicked, ordered) to the
   last messages gets only high-priority ones, then none (``sunset_reduced``,
   ``sunset``);
6. ``quiet_hours``: a send inside the buyer's quiet hours (their own time zone)
   moves to the end of the quiet period (``quiet_hours``);
7. ``best_hour``: the send moves to the hour the buyer opens emails most
   (``best_hour``), if that is near enough;
8. ``channel``: the channel, and the fallbacks (:mod:`shared.domain.channels`).

Frequency caps and priority: the caps count the messages already sent to the
buyer and the scheduled ones of *higher* priority (they reserve their place).
So a lower-priority message never takes the room a higher-priority one is
scheduled for, and a higher-priority message scheduled after a lower-priority
one was sent waits (or is dropped) like any other: what was sent stays sent.
A capped message is deferred to the moment the windows leave room, when that
is within :attr:`FrequencyCaps.defer_up_to`, and dropped otherwise.

A scheduled send (a campaign with a delay, a deferred or moved send) is a
:class:`ScheduledSend`; when it falls due, :func:`check_at_wake` drops it if the
buyer reached the goal since the trigger or left the audience, and
:func:`decide` runs again.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from shared.domain.campaigns import Campaign, MomentTrigger, SegmentTrigger, message_key
from shared.domain.channels import (
    ChannelEconomics,
    ChannelEvidence,
    choose_channel,
    evidence_from,
    reachable_channels,
)
from shared.domain.events import Channel
from shared.domain.profile import Profile, local_zone

__all__ = [
    "DEFAULT_POLICY",
    "HOURS",
    "Decision",
    "FrequencyCaps",
    "QuietHours",
    "Reason",
    "ScheduledSend",
    "SendingPolicy",
    "SentMessage",
    "SunsetPolicy",
    "best_hour",
    "buyer_zone",
    "check_at_wake",
    "decide",
    "holdout_draw",
    "in_holdout",
    "schedule",
    "unanswered_messages",
]

HOURS = 24


@dataclass(frozen=True)
class Reason:
    """Why a step decided what it did: ``code`` for reports, ``detail`` for people."""

    step: str
    code: str
    detail: str


# --- inputs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SentMessage:
    """A message already sent (or being sent) to the buyer: what the caps and sunset count."""

    campaign: str
    priority: int
    at: datetime
    channel: Channel
    key: str = ""


@dataclass(frozen=True)
class ScheduledSend:
    """A message that waits for its moment: a campaign's delay, a cap, quiet hours."""

    key: str
    campaign: str
    profile_id: str
    occurrence_id: str
    triggered_at: datetime
    due_at: datetime
    channel: Channel | None = None
    priority: int = 0

    def deferred_to(self, at: datetime, channel: Channel | None = None) -> ScheduledSend:
        """The same message (same key), due at ``at``."""
        return replace(self, due_at=at, channel=channel or self.channel)


def schedule(
    campaign: Campaign, profile_id: str, trigger_occurrence: str, triggered_at: datetime
) -> ScheduledSend:
    """The send a trigger starts: due after the campaign's delay, keyed by its occurrence."""
    occurrence = campaign.occurrence(trigger_occurrence)
    return ScheduledSend(
        key=message_key(campaign.key, profile_id, occurrence),
        campaign=campaign.key,
        profile_id=profile_id,
        occurrence_id=occurrence,
        triggered_at=triggered_at,
        due_at=triggered_at + campaign.delay,
        priority=campaign.priority,
    )


# --- policy ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FrequencyCaps:
    """How many messages a buyer gets at most, over rolling windows."""

    per_day: int = 2
    per_week: int = 4
    per_campaign_per_week: int = 1
    defer_up_to: timedelta = timedelta(hours=24)
    """A capped message waits for room this long at most; beyond, it is dropped."""


@dataclass(frozen=True)
class SunsetPolicy:
    """Fewer messages for a buyer who stopped responding, then none."""

    reduce_after: int = 6
    """After this many unanswered messages in a row, only priority >= ``reduced_min_priority``."""
    reduced_min_priority: int = 60
    stop_after: int = 12
    """After this many unanswered messages in a row, nothing."""


@dataclass(frozen=True)
class QuietHours:
    """A daily period in the buyer's own time when nothing is sent: 21:00 to 09:00."""

    start: time = time(21)
    end: time = time(9)

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def ends_after(self, moment: datetime, zone: ZoneInfo) -> datetime | None:
        """The end of the quiet period ``moment`` falls in (in UTC), or ``None`` outside one."""
        local = moment.astimezone(zone)
        clock = local.time().replace(tzinfo=None)
        if not self.contains(clock):
            return None
        day = local.date()
        if self.start > self.end and clock >= self.start:
            day += timedelta(days=1)
        return datetime.combine(day, self.end, tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class SendingPolicy:
    """The shop's rules for sending; every field has a sensible default."""

    caps: FrequencyCaps = field(default_factory=FrequencyCaps)
    sunset: SunsetPolicy = field(default_factory=SunsetPolicy)
    quiet_hours: QuietHours | None = field(default_factory=QuietHours)
    default_timezone: str = "UTC"
    """The zone of a buyer with no valid ``timezone`` trait: the shop's own (the same zone
    the segmenter counts the buyer's open hours in)."""
    best_hour_min_opens: int = 5
    """A buyer's own open hours count from this many opens on; before, the base's."""
    best_hour_max_wait: timedelta = timedelta(hours=12)
    """The best hour is worth waiting for this long at most."""
    channels: ChannelEconomics = field(default_factory=ChannelEconomics)


DEFAULT_POLICY = SendingPolicy()


# --- the decision ----------------------------------------------------------------------

Action = Literal["send_now", "send_at", "skip"]


@dataclass(frozen=True)
class Decision:
    """Send now, send at ``at``, or skip; ``reason`` is the deciding step's, ``trail`` all."""

    action: Action
    reason: Reason
    at: datetime | None = None
    channel: Channel | None = None
    fallbacks: tuple[Channel, ...] = ()
    trail: tuple[Reason, ...] = ()


def decide(
    campaign: Campaign,
    profile: Profile,
    now: datetime,
    *,
    rng: random.Random,
    policy: SendingPolicy = DEFAULT_POLICY,
    sent: Sequence[SentMessage] = (),
    scheduled: Sequence[ScheduledSend] = (),
    key: str | None = None,
    open_hours: Sequence[int] | None = None,
    base_open_hours: Sequence[int] | None = None,
    evidence: Mapping[Channel, ChannelEvidence] | None = None,
    push_address: str | None = None,
) -> Decision:
    """Decide whether, when and where ``campaign``'s message goes to ``profile``.

    ``sent``: the buyer's messages of the last week, and at least the last
    ``policy.sunset.stop_after`` ones; ``scheduled``: the buyer's scheduled sends
    (``key``, the message being decided, is left out of them). ``open_hours``: the
    buyer's email opens by local hour (24 counts); ``base_open_hours``: those of
    similar buyers (a segment, or the base). ``evidence``: the buyer's responses per
    channel, by default read from the profile. ``push_address``: the buyer's app
    install, when the dispatcher knows one.
    """
    trail: list[Reason] = []

    def skip(reason: Reason) -> Decision:
        return Decision("skip", reason, trail=(*trail, reason))

    reachable, barred = reachable_channels(
        profile, campaign.candidate_channels, push_address=push_address
    )
    refusal = (
        _campaign_refusal(campaign, profile, now)
        or (_unreachable(barred) if not reachable else None)
        or _holdout(campaign, profile)
    )
    if refusal is not None:
        return skip(refusal)

    at = now
    capped = _caps(campaign, now, policy.caps, sent, [s for s in scheduled if s.key != key])
    if isinstance(capped, Reason):
        return skip(capped)
    if capped > now:
        at = capped
        trail.append(
            Reason("caps", "capped_deferred", f"the frequency caps leave room at {at.isoformat()}")
        )

    sunset = _sunset(campaign, profile, policy.sunset, sent)
    if sunset is not None:
        return skip(sunset)

    zone = buyer_zone(profile, policy)
    if policy.quiet_hours is not None:
        quiet_end = policy.quiet_hours.ends_after(at, zone)
        if quiet_end is not None:
            at = quiet_end
            trail.append(
                Reason(
                    "quiet_hours",
                    "quiet_hours",
                    f"quiet hours in {zone.key} until {at.isoformat()}",
                )
            )

    moved = _best_hour(at, zone, policy, open_hours, base_open_hours)
    if moved is not None:
        at, why = moved
        trail.append(why)

    choice = choose_channel(
        reachable,
        best=campaign.channels == "best",
        evidence=evidence if evidence is not None else evidence_from(profile),
        economics=policy.channels,
        rng=rng,
    )
    scores = ", ".join(f"{c} {s:.2f}" for c, s in choice.scores.items())
    trail.append(
        Reason("channel", choice.how, f"{choice.channel}" + (f" ({scores})" if scores else ""))
    )
    if at <= now:
        reason = Reason("send", "send_now", "every step lets the message go now")
        return Decision("send_now", reason, now, choice.channel, choice.fallbacks, (*trail,))
    last_move = next(r for r in reversed(trail) if r.step != "channel")
    return Decision("send_at", last_move, at, choice.channel, choice.fallbacks, (*trail,))


def check_at_wake(
    send: ScheduledSend,
    campaign: Campaign,
    profile: Profile,
    memberships: Collection[str],
    now: datetime,
) -> Reason | None:
    """Why a scheduled send that fell due must not go out any more, or ``None``.

    ``converted``: the buyer reached the campaign's goal after the trigger (an order
    after the cart was left); ``left_segment``: a segment-entry trigger whose segment
    the buyer left (``back_in_segment`` for an exit trigger); ``moment_moved``: the
    buyer's moment moved (a new order moved the expected next one); then the
    campaign and audience checks of :func:`decide`.
    """
    reached = campaign.goal.reached_at(profile)
    if reached is not None and send.triggered_at < reached <= now:
        return Reason("wake", "converted", f"the buyer reached the goal at {reached.isoformat()}")
    trigger = campaign.trigger
    if isinstance(trigger, SegmentTrigger):
        inside = trigger.segment in memberships
        if trigger.on == "entered" and not inside:
            return Reason("wake", "left_segment", f"the buyer left {trigger.segment}")
        if trigger.on == "exited" and inside:
            return Reason("wake", "back_in_segment", f"the buyer is back in {trigger.segment}")
    if (
        isinstance(trigger, MomentTrigger)
        and campaign.reentry == "once_per_occurrence"
        and trigger.occurrence_id(profile) != send.occurrence_id
    ):
        return Reason("wake", "moment_moved", f"the buyer's {trigger.moment} moved")
    return _campaign_refusal(campaign, profile, now)


# --- the steps -------------------------------------------------------------------------


def _campaign_refusal(campaign: Campaign, profile: Profile, now: datetime) -> Reason | None:
    if not campaign.is_live(now):
        return Reason(
            "campaign",
            "campaign_not_live",
            f"the campaign is {campaign.status} or outside its active window",
        )
    if campaign.audience is not None and not campaign.audience.holds(profile, now):
        return Reason("campaign", "not_in_audience", "the buyer is not in the campaign's audience")
    return None


def _unreachable(barred: Mapping[Channel, str]) -> Reason:
    whys = set(barred.values())
    detail = ", ".join(f"{channel}: {why}" for channel, why in barred.items())
    code = whys.pop() if len(whys) == 1 else "unreachable"
    return Reason("consent", code, f"no channel to reach the buyer on ({detail})")


def _holdout(campaign: Campaign, profile: Profile) -> Reason | None:
    if in_holdout(campaign.key, profile.id, campaign.holdout):
        return Reason("holdout", "holdout", "the buyer is in the campaign's control group")
    return None


def holdout_draw(campaign: str, profile_id: str) -> float:
    """A number in [0, 1) fixed by campaign and buyer: the same in every process."""
    digest = hashlib.sha256(f"holdout|{campaign}|{profile_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_holdout(campaign: str, profile_id: str, share: float) -> bool:
    """Whether the buyer is in the campaign's control group of ``share`` of its audience."""
    return holdout_draw(campaign, profile_id) < share


_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)


def _caps(
    campaign: Campaign,
    now: datetime,
    caps: FrequencyCaps,
    sent: Sequence[SentMessage],
    scheduled: Sequence[ScheduledSend],
) -> datetime | Reason:
    """The first moment from ``now`` the caps leave room, or why the message is dropped."""
    reserved = [s for s in scheduled if s.priority > campaign.priority]
    windows: list[tuple[timedelta, int, list[datetime], list[datetime]]] = [
        (_DAY, caps.per_day, [m.at for m in sent], [s.due_at for s in reserved]),
        (_WEEK, caps.per_week, [m.at for m in sent], [s.due_at for s in reserved]),
        (
            _WEEK,
            caps.per_campaign_per_week,
            [m.at for m in sent if m.campaign == campaign.key],
            [s.due_at for s in reserved if s.campaign == campaign.key],
        ),
    ]

    def room_at(moment: datetime) -> bool:
        for span, limit, done, planned in windows:
            count = sum(moment - span < t <= moment for t in done)
            count += sum(moment - span < t < moment + span for t in planned)
            if count >= limit:
                return False
        return True

    freed = {t + span for span, _, done, planned in windows for t in (*done, *planned)}
    candidates = sorted({now} | freed)
    for moment in (c for c in candidates if c >= now):
        if room_at(moment):
            if moment - now > caps.defer_up_to:
                break
            return moment
    return Reason(
        "caps",
        "capped",
        f"the buyer reached a frequency cap ({caps.per_day}/day, {caps.per_week}/week, "
        f"{caps.per_campaign_per_week}/week for this campaign) for longer than "
        f"{caps.defer_up_to}",
    )


def unanswered_messages(profile: Profile, sent: Sequence[SentMessage]) -> int:
    """How many of ``sent`` went out after the buyer's last open, click or order."""
    moments = [profile.last_order_at]
    for stats in profile.engagement.values():
        moments += [stats.last_open_at, stats.last_click_at]
    answered = max((m for m in moments if m is not None), default=None)
    return sum(1 for m in sent if answered is None or m.at > answered)


def _sunset(
    campaign: Campaign, profile: Profile, sunset: SunsetPolicy, sent: Sequence[SentMessage]
) -> Reason | None:
    unanswered = unanswered_messages(profile, sent)
    if unanswered >= sunset.stop_after:
        return Reason(
            "sunset", "sunset", f"no response to the last {unanswered} messages: nothing more"
        )
    if unanswered >= sunset.reduce_after and campaign.priority < sunset.reduced_min_priority:
        return Reason(
            "sunset",
            "sunset_reduced",
            f"no response to the last {unanswered} messages: only priority "
            f"{sunset.reduced_min_priority} and above",
        )
    return None


def buyer_zone(profile: Profile, policy: SendingPolicy = DEFAULT_POLICY) -> ZoneInfo:
    """The buyer's time zone: the ``timezone`` trait if it names one, else the shop's
    (``policy.default_timezone``), else UTC."""
    return local_zone(profile, policy.default_timezone)


def best_hour(
    own: Sequence[int] | None,
    base: Sequence[int] | None = None,
    *,
    min_opens: int = DEFAULT_POLICY.best_hour_min_opens,
) -> tuple[int, Literal["own", "base"]] | None:
    """The local hour a buyer opens emails most, and whose habits said so.

    The buyer's own opens count once there are ``min_opens`` of them, else those of
    similar buyers (``base``), else there is no best hour. Each hour is scored with
    its neighbours (a three-hour window, wrapping at midnight) so that one stray
    open does not decide; the earliest of equal hours wins.
    """
    sources: tuple[tuple[Sequence[int] | None, Literal["own", "base"], int], ...] = (
        (own, "own", min_opens),
        (base, "base", 1),
    )
    for counts, source, needed in sources:
        if counts is None:
            continue
        if len(counts) != HOURS:
            raise ValueError(f"open hours are {HOURS} counts, got {len(counts)}")
        if sum(counts) >= needed:
            smooth = [counts[h - 1] + counts[h] + counts[(h + 1) % HOURS] for h in range(HOURS)]
            return max(range(HOURS), key=lambda h: (smooth[h], counts[h], -h)), source
    return None


def _best_hour(
    at: datetime,
    zone: ZoneInfo,
    policy: SendingPolicy,
    own: Sequence[int] | None,
    base: Sequence[int] | None,
) -> tuple[datetime, Reason] | None:
    found = best_hour(own, base, min_opens=policy.best_hour_min_opens)
    if found is None:
        return None
    hour, source = found
    local = at.astimezone(zone)
    if local.hour == hour:
        return None
    day = local.date() if hour > local.hour else local.date() + timedelta(days=1)
    target = datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)
    quiet = policy.quiet_hours
    if target - at > policy.best_hour_max_wait or (
        quiet is not None and quiet.contains(target.astimezone(zone).time().replace(tzinfo=None))
    ):
        return None
    whose = "the buyer's" if source == "own" else "similar buyers'"
    return target, Reason(
        "best_hour", "best_hour", f"{hour:02d}:00 in {zone.key} is when {whose} emails are opened"
    )
