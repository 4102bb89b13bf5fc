"""How a buyer walks a programme: :func:`enter` and :func:`walk`, on plain data and a clock.

A buyer inside a programme is at one :class:`Position`: the programme and version,
the entry (the trigger occurrence that brought them in), the step they are at, when
they reached it and, at a wait, when the wait ends. :func:`walk` takes a position and
what is known of the buyer now and goes as far as it can: it passes branches and
splits, hands over each send step's message (:class:`StepSend`, with its own
idempotency key) and stops at a wait that has not ended, or at the end. Calling it
again with the position it answered, at the same moment, does nothing more: a walk
is a function of its position and the buyer, so a replayed or retried wake-up
repeats no step and skips none.

Moments: a send finishes at the moment of the walk; a wait finishes at the moment it
was due, so a wait after a wait is measured from the first one's end even when the
wake-up came late; a branch takes no time. Before every step the walk checks the
exits that apply at any step: the goal reached after entry (``goal``) and, with an
audience rule, the buyer no longer in it (``left_audience``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from shared.domain.campaigns import (
    Audience,
    Campaign,
    Goal,
    MomentTrigger,
    SegmentTrigger,
    message_key,
)
from shared.domain.decisions import best_hour
from shared.domain.profile import Profile
from shared.domain.programmes.model import (
    Branch,
    EveryoneIn,
    Exit,
    OnResponse,
    OnRule,
    Programme,
    Response,
    Send,
    Split,
    Variant,
    Wait,
    WaitFor,
    WaitForEvent,
    WaitUntil,
)

__all__ = [
    "ACTIVATION_ENTRY",
    "STEP_SEPARATOR",
    "Entry",
    "Position",
    "Relocation",
    "StepSend",
    "Walk",
    "draw",
    "enter",
    "in_programme_holdout",
    "relocate",
    "split_step_campaign_key",
    "step_campaign",
    "step_campaign_key",
    "step_occurrence",
    "variant_for",
    "wait_ends",
    "walk",
]


@dataclass(frozen=True)
class Position:
    """Where one entry of one buyer is in a programme."""

    programme: str
    version: int
    profile_id: str
    entry: str
    """The trigger occurrence the buyer entered by: one walk per entry."""
    entered_at: datetime
    step: str
    arrived_at: datetime
    """When the buyer reached ``step``."""
    due_at: datetime | None = None
    """At a wait: when it ends (its timeout, for an event wait); ``None`` elsewhere."""


@dataclass(frozen=True)
class Entry:
    """A buyer entering a programme: the position at its first step, or the holdout."""

    position: Position
    holdout: bool


@dataclass(frozen=True)
class StepSend:
    """A send step's message for one buyer: decided and sent like a campaign's."""

    step: Send
    variant: Variant
    key: str
    """The message's identity (programme, buyer, entry and step): one message per step."""
    occurrence: str
    at: datetime


@dataclass(frozen=True)
class Walk:
    """What one :func:`walk` did.

    ``position`` is where the buyer waits now (``None`` once the walk ended, with
    ``exited`` its reason); ``passed`` the steps the walk went through, in order;
    ``sends`` the messages it handed over; ``held_out`` the send steps whose own
    holdout skipped the buyer's message.
    """

    position: Position | None
    exited: str | None
    passed: tuple[str, ...]
    sends: tuple[StepSend, ...]
    held_out: tuple[str, ...]

    @property
    def moved(self) -> bool:
        return bool(self.passed) or self.exited is not None


def draw(*parts: str) -> float:
    """A number in [0, 1) that is the same for the same parts in every process."""
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_programme_holdout(programme: Programme, profile_id: str) -> bool:
    """Whether the buyer is in the programme's control group (drawn once, at entry)."""
    return draw("holdout", "programme", programme.key, profile_id) < programme.holdout


def variant_for(
    programme: Programme, step: Send, profile_id: str, shares: Sequence[float] | None = None
) -> Variant:
    """The buyer's content variant of ``step``: by its share (or by ``shares``, one per
    variant: an adaptive split's now), the same at every draw for the same shares."""
    chance = draw("variant", programme.key, step.id, profile_id)
    written = [v.share for v in step.variants]
    return step.variants[_pick(chance, written if shares is None else shares)]


ACTIVATION_ENTRY = "activation"
"""The entry of every buyer an :class:`~.model.EveryoneIn` programme enters at activation:
one per programme and buyer, so activating again (or resuming after a crash) enters no
one twice."""


def enter(programme: Programme, profile_id: str, occurrence: str, at: datetime) -> Entry:
    """The buyer enters ``programme`` at ``at`` by the trigger occurrence ``occurrence``;
    an entry planned ahead (a moment trigger's) waits until ``at``."""
    position = Position(
        programme.key, programme.version, profile_id, occurrence, at, programme.start, at, at
    )
    return Entry(position, in_programme_holdout(programme, profile_id))


def walk(
    programme: Programme,
    position: Position,
    profile: Profile,
    now: datetime,
    *,
    zone: ZoneInfo,
    responses: Mapping[str, Collection[Response]] | None = None,
    open_hours: Sequence[int] | None = None,
    base_open_hours: Sequence[int] | None = None,
    splits: Mapping[str, Sequence[float]] | None = None,
) -> Walk:
    """Walk ``position`` of ``programme`` (the version it is on) as far as it goes at ``now``.

    ``zone``: the buyer's time zone (local waits); ``responses``: per send step the
    buyer passed, what they did with its message (a branch on a response reads it);
    ``open_hours``/``base_open_hours``: the buyer's and similar buyers' email opens by
    local hour (a best-hour wait reads them); ``splits``: per adaptive send step, its
    variants' shares now (:func:`~.adaptive.learn`; a step left out keeps its written ones).
    """
    if position.programme != programme.key or position.version != programme.version:
        raise ValueError(
            f"position on {position.programme} v{position.version}, "
            f"programme {programme.key} v{programme.version}"
        )
    responses = responses or {}
    passed: list[str] = []
    sends: list[StepSend] = []
    held_out: list[str] = []

    def ended(reason: str) -> Walk:
        return Walk(None, reason, tuple(passed), tuple(sends), tuple(held_out))

    begun = _begin(programme, position, profile, now)
    if isinstance(begun, Walk):
        return begun
    position = begun
    for _ in range(len(programme.steps) + 1):
        exit_reason = _exit_anywhere(programme, position, profile, now)
        if exit_reason is not None:
            return ended(exit_reason)
        step = programme.steps[position.step]
        if isinstance(step, Exit):
            passed.append(step.id)
            return ended(step.reason)
        if isinstance(step, Wait):
            due = position.due_at or wait_ends(
                step, position.arrived_at, zone, open_hours, base_open_hours
            )
            through = _through_wait(step, profile, position.arrived_at, due, now)
            if through is None:
                still = replace(position, due_at=due)
                return Walk(still, None, tuple(passed), tuple(sends), tuple(held_out))
            goes, finished_at = through
        else:
            finished_at = now
            if isinstance(step, Send):
                who = position.profile_id
                held = draw("holdout", "step", programme.key, step.id, who) < step.holdout
                if held:
                    held_out.append(step.id)
                else:
                    shares = (splits or {}).get(step.id)
                    sends.append(_send(programme, step, position, now, shares))
            goes = _next_of(programme, step, position, profile, now, responses=responses)
        passed.append(step.id)
        if goes is None:
            return ended("end")
        position = replace(position, step=goes, arrived_at=finished_at, due_at=None)
    raise AssertionError("a programme's graph has no cycle")  # pragma: no cover


def wait_ends(
    step: Wait,
    since: datetime,
    zone: ZoneInfo,
    open_hours: Sequence[int] | None = None,
    base_open_hours: Sequence[int] | None = None,
) -> datetime:
    """When a wait that began at ``since`` ends (for an event wait: its timeout)."""
    until = step.until
    if isinstance(until, WaitFor):
        if not until.calendar:
            return since + until.span
        local = since.astimezone(zone) + until.span  # wall-clock arithmetic in the zone
        return local.astimezone(UTC)
    if isinstance(until, WaitForEvent):
        return since + until.timeout
    if isinstance(until, WaitUntil):
        return _next_local(since, until.at, zone)
    found = best_hour(open_hours, base_open_hours)
    if found is None:
        return since
    target = _next_local(since, time(found[0]), zone)
    return target if target - since <= until.within else since


@dataclass(frozen=True)
class Relocation:
    """How buyers inside an edited programme go on: ``stay`` on the version they entered
    (the default), ``same_step`` (move to the new version at the step of the same id,
    where there is one), or ``restart`` (the new version's first step, same entry)."""

    rule: Literal["stay", "same_step", "restart"] = "stay"


def relocate(position: Position, new: Programme, relocation: Relocation, now: datetime) -> Position:
    """``position`` moved onto ``new`` (a later version of its programme) as ``relocation``
    says. A step already sent is never sent again: its message key holds no version."""
    if relocation.rule == "stay" or position.version == new.version:
        return position
    if relocation.rule == "same_step":
        if position.step not in new.steps:
            return position
        kept = position.due_at if isinstance(new.steps[position.step], Wait) else None
        return replace(position, version=new.version, due_at=kept)
    return replace(position, version=new.version, step=new.start, arrived_at=now, due_at=None)


# --- the parts ---------------------------------------------------------------------------


def step_occurrence(entry: str, step_id: str) -> str:
    """The occurrence a step's message is keyed by: the step, and the entry (digested, so
    that it fits the 64 characters a message's occurrence has)."""
    return f"{step_id}:{hashlib.sha256(entry.encode()).hexdigest()[:40]}"


def _send(
    programme: Programme,
    step: Send,
    position: Position,
    now: datetime,
    shares: Sequence[float] | None = None,
) -> StepSend:
    who = position.profile_id
    occurrence = step_occurrence(position.entry, step.id)
    key = message_key(programme.key, who, occurrence)
    return StepSend(step, variant_for(programme, step, who, shares), key, occurrence, now)


def _through_wait(
    step: Wait, profile: Profile, since: datetime, due: datetime, now: datetime
) -> tuple[str | None, datetime] | None:
    """Where a wait leads and when it ended, or ``None`` while it has not."""
    happened = _event_since(step, profile, since, now)
    if happened is not None:
        return step.next, happened
    if due <= now:
        timed_out = isinstance(step.until, WaitForEvent)
        return (step.on_timeout if timed_out else step.next), due
    return None


def _next_of(
    programme: Programme,
    step: Send | Branch | Split,
    position: Position,
    profile: Profile,
    now: datetime,
    *,
    responses: Mapping[str, Collection[Response]],
) -> str | None:
    if isinstance(step, Send):
        return step.next
    if isinstance(step, Branch):
        return step.then if _holds(step, profile, now, responses) else step.otherwise
    chance = draw("split", programme.key, step.id, position.profile_id)
    return step.arms[_pick(chance, [share for share, _ in step.arms])][1]


def _begin(
    programme: Programme, position: Position, profile: Profile, now: datetime
) -> Position | Walk:
    """The position to walk from, or the walk that ends before the first step: a planned
    entry (a moment ahead) not in yet, or one whose moment moved."""
    if now < position.entered_at:
        return Walk(replace(position, due_at=position.entered_at), None, (), (), ())
    if not _not_started(programme, position):
        return position
    if _moment_moved(programme, position, profile):
        return Walk(None, "moment_moved", (), (), ())
    if position.due_at == position.entered_at:
        return replace(position, due_at=None)  # the entry's own wake, not a wait's end
    return position


def _not_started(programme: Programme, position: Position) -> bool:
    """At the first step, and not moved since the entry."""
    return position.step == programme.start and position.arrived_at == position.entered_at


def _moment_moved(programme: Programme, position: Position, profile: Profile) -> bool:
    """A moment trigger's entry whose moment moved before the walk began (a new order
    moved the expected next one): that entry is void."""
    trigger = programme.trigger
    if not isinstance(trigger, MomentTrigger):
        return False
    now_at = trigger.occurrence_id(profile)
    return now_at is not None and now_at != position.entry


def _exit_anywhere(
    programme: Programme, position: Position, profile: Profile, now: datetime
) -> str | None:
    reached = programme.goal.reached_at(profile)
    if reached is not None and position.entered_at < reached <= now:
        return "goal"
    rule = programme.audience_rule
    if rule is not None and not rule.holds(profile, now):
        return "left_audience"
    return None


def _event_since(step: Wait, profile: Profile, since: datetime, now: datetime) -> datetime | None:
    until = step.until
    if not isinstance(until, WaitForEvent):
        return None
    last = Goal(until.event, until.timeout, until.name).reached_at(profile)
    if last is not None and since < last <= now and last <= since + until.timeout:
        return last
    return None


def _holds(
    step: Branch, profile: Profile, now: datetime, responses: Mapping[str, Collection[Response]]
) -> bool:
    condition = step.condition
    if isinstance(condition, OnRule):
        return condition.rule.holds(profile, now)
    assert isinstance(condition, OnResponse)
    return condition.response in responses.get(condition.step, ())


def _pick(chance: float, shares: Sequence[float]) -> int:
    """The index of the share whose band of [0, 1) holds ``chance``."""
    total = 0.0
    for i, share in enumerate(shares):
        total += share
        if chance < total:
            return i
    return len(shares) - 1


def _next_local(since: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The first moment after ``since`` when the buyer's clock shows ``at``."""
    local = since.astimezone(zone)
    for days in (0, 1, 2):
        candidate = datetime.combine(local.date() + timedelta(days=days), at, tzinfo=zone)
        moment = candidate.astimezone(UTC)
        if moment > since:
            return moment
    raise AssertionError("a local time of day comes within two days")  # pragma: no cover


# --- a send step as a campaign -----------------------------------------------------------

STEP_SEPARATOR = "."
"""Between a programme's key, a step's id and a variant's name in a step's campaign key
(no campaign key holds a dot, so the two never meet)."""


def step_campaign_key(programme: str, step: str, variant: str) -> str:
    """The campaign key a send step's messages carry: ``programme.step.variant``."""
    return STEP_SEPARATOR.join((programme, step, variant))


def split_step_campaign_key(key: str) -> tuple[str, str, str] | None:
    """``(programme, step, variant)`` of a step's campaign key; ``None`` for a campaign's."""
    parts = key.split(STEP_SEPARATOR)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


def step_campaign(programme: Programme, step: Send, variant: Variant) -> Campaign:
    """A send step in one variant as the campaign the decisions run on: the programme's
    audience, goal and priority, the step's channels and the variant's templates, live
    while the programme is active. Its holdout is 0 (the programme drew it at entry, the
    step's own share was drawn before), and it is once per buyer: the step's message key
    already names the entry, so a moment that moved does not drop a deferred step."""
    trigger = programme.trigger
    return Campaign(
        key=step_campaign_key(programme.key, step.id, variant.name),
        name=f"{programme.name}: {step.id} ({variant.name})",
        trigger=SegmentTrigger(trigger.segment) if isinstance(trigger, EveryoneIn) else trigger,
        templates=variant.templates,
        channels=step.channels,
        audience=(
            Audience(programme.audience, programme.audience_rule)
            if programme.audience_rule is not None
            else None
        ),
        goal=programme.goal,
        priority=programme.priority,
        reentry="once_per_buyer",
        status="active" if programme.status == "active" else "paused",
        offer=variant.offer,
    )
