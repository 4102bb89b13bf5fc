"""The dispatcher's handlers: a trigger becomes, at most once, a campaign message.

Triggers are segment changes (:meth:`Dispatcher.handle_changes`), and events
(:meth:`Dispatcher.handle_events`): an event an event trigger matches (an
abandoned cart), and a purchase, which moves the buyer's moments (a reminder
three days before the order the buyer's rhythm expects is planned then). Each
trigger runs the campaign's decision (:func:`shared.domain.decisions.decide`:
consent and suppression, holdout, frequency caps, sunset, quiet hours, best hour,
best channel) and records it on the message row, keyed by campaign, buyer and
trigger occurrence: a buyer who gets nothing has a row that says why (``reason``,
``holdout``, every step's say in ``decision``); its status is that reason. A
message that must wait (the campaign's delay, room under the caps, the end of
quiet hours, the buyer's best hour) is ``scheduled`` and sits in the
scheduled-sends table; :meth:`Dispatcher.wake_due` wakes it when due, drops it
if the buyer converted or left the audience meanwhile (the reason recorded),
and decides again.

Exactly once: the message row is committed ``sending`` *before* the provider is
called, its outcome after. A guard row in the scheduled-sends table, due
``in_flight_timeout`` later, is committed with it and removed with the outcome.
If the process dies in between, the guard wakes: an SMS or push message is sent
again with the same idempotency key (those providers deliver one message per
key); an email is not (SMTP has no such key: at most once), and the row keeps
``sending`` with the reason ``outcome_unknown``. A change delivered again finds
the row and sends nothing.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from services.dispatcher.metrics import DispatcherMetrics
from shared.adapters.rendering import InlineRenderer
from shared.codec import decode_change
from shared.domain.campaigns import (
    BUILTIN_PUSH_TEMPLATES,
    BUILTIN_SMS_TEMPLATES,
    Campaign,
    MomentTrigger,
    campaigns_over,
    campaigns_triggered_by,
    campaigns_triggered_by_event,
    message_context,
)
from shared.domain.decisions import (
    DEFAULT_POLICY,
    Decision,
    Reason,
    ScheduledSend,
    SendingPolicy,
    check_at_wake,
    decide,
    schedule,
)
from shared.domain.events import AnyEvent, Channel, PurchaseEvent, TrackEvent, read_published_event
from shared.domain.message_templates import TemplateContentError, checked_template
from shared.domain.profile import Profile, ProfileMerged
from shared.domain.push import PushContent
from shared.domain.rendering import (
    EmailTemplate,
    PushTemplate,
    RenderedEmail,
    RenderedSms,
    RenderError,
    SmsTemplate,
)
from shared.domain.segments import MembershipChange, occurrence_id
from shared.domain.unsubscribe import sign
from shared.errors import (
    PoisonRecord,
    ProviderRejected,
    ProviderUnavailable,
    RendererUnavailable,
)
from shared.logging import get_logger
from shared.ports.bus import Record
from shared.ports.clock import Clock
from shared.ports.definitions import Definitions
from shared.ports.providers import (
    EmailMessage,
    EmailProvider,
    PushMessage,
    PushProvider,
    SmsMessage,
    SmsProvider,
)
from shared.ports.rendering import Renderer
from shared.ports.store import (
    MessageOutcome,
    MessageRecord,
    ScheduledRecord,
    Store,
    UnitOfWork,
)

__all__ = ["Dispatcher"]

BASE_HOURS_EVERY = timedelta(hours=1)
BASE_HOURS_SAMPLE = 5_000
"""Buyers whose email opens make the base's open hours (a best hour for buyers with
few opens of their own): enough for 24 shares, cheap to read once an hour."""

log = get_logger(__name__)

_WEEK = timedelta(days=7)
_IDEMPOTENT: tuple[Channel, ...] = ("sms", "push")
"""Channels whose providers deliver one message per idempotency key: safe to send again."""

Outbound = EmailMessage | SmsMessage | PushMessage


@dataclass(frozen=True)
class _Draft:
    """One message being decided: its campaign, its buyer, its send and the trigger's context."""

    campaign: Campaign
    profile: Profile
    send: ScheduledSend
    context: Mapping[str, Any]
    history: tuple[Reason, ...] = ()
    """What was decided before (a scheduled message's first decision): kept in the trail."""
    push_address: str | None = None
    """The buyer's app install, where a push notification goes."""


@dataclass(frozen=True)
class _Outgoing:
    """A message committed ``sending``: what to hand to a provider, and what to fall back to."""

    draft: _Draft
    channel: Channel
    message: Outbound
    fallbacks: tuple[Channel, ...]


@dataclass
class Dispatcher:
    store: Store
    clock: Clock
    email: EmailProvider
    campaigns: Sequence[Campaign]
    templates: Mapping[str, EmailTemplate]
    unsubscribe_key: bytes
    """Signs each message's unsubscribe link; ingest checks it with the same key."""
    public_url: str
    """Where buyers reach ingest: the base of unsubscribe links."""
    send_attempts: int = 3
    """Tries per email (SMS and push providers retry on their own)."""
    sms: SmsProvider | None = None
    push: PushProvider | None = None
    sms_templates: Mapping[str, SmsTemplate] = field(
        default_factory=lambda: dict(BUILTIN_SMS_TEMPLATES)
    )
    push_templates: Mapping[str, PushTemplate] = field(
        default_factory=lambda: dict(BUILTIN_PUSH_TEMPLATES)
    )
    policy: SendingPolicy = DEFAULT_POLICY
    sms_max_segments: int | None = None
    in_flight_timeout: timedelta = timedelta(minutes=10)
    """How long a send may be in flight before it counts as lost in a crash; longer than a
    provider's retries take."""
    rng: random.Random = field(default_factory=random.Random)
    """Draws for the best channel (Thompson sampling); seeded in tests."""
    applied_timeout: float = 5.0
    """Seconds (real time) an event waits for the segmenter to apply it before its
    triggers are skipped."""
    metrics: DispatcherMetrics = field(default_factory=DispatcherMetrics)
    definitions: Definitions | None = None
    """The marketer's stored campaigns and templates (the console's), over the built-ins."""
    retry_after: timedelta = timedelta(minutes=1)
    """How long a message whose provider was down (unavailable, timing out, its breaker
    open) waits before it is tried again."""
    retry_for: timedelta = timedelta(hours=6)
    """How long after its trigger such a message is still tried; then it stays ``failed``."""
    concurrent_sends: int = 16
    """Provider calls in flight at once per channel: a slow provider holds up its own
    channel's sends, not the others'."""
    max_in_flight: int = 256
    """Deliveries under way (or waiting for a slot) before the consumers wait."""
    renderer: Renderer = field(default_factory=InlineRenderer)
    """Where messages are rendered: off the event loop and bounded in time in a service
    (worker processes); a render over a limit is a failed render, recorded on the row."""

    def __post_init__(self) -> None:
        self._builtins = (
            tuple(self.campaigns),
            dict(self.templates),
            dict(self.sms_templates),
            dict(self.push_templates),
        )
        self._stamp: tuple[int, int] | None = None
        self._sending: dict[str, asyncio.Semaphore] = {}
        self._in_flight: set[asyncio.Task[list[str]]] = set()
        self._refreshing = asyncio.Lock()
        self._fatal: BaseException | None = None
        self._base_hours: tuple[datetime, Sequence[int]] | None = None
        # Not self.rng (tests seed it for channel draws); sampling, not cryptography.
        self._sampling = random.Random()  # noqa: S311

    async def refresh_definitions(self) -> bool:
        """Take the stored campaigns and templates if any changed since the last look (one
        cheap query when none did): a stored one replaces the built-in of its key, and
        its stored status (draft, active, paused) is the one that counts. Return whether
        anything changed. One that no longer parses is left out, and logged."""
        if self.definitions is None:
            return False
        async with self._refreshing:  # the loops ask at once: one of them loads
            return await self._refresh(self.definitions)

    async def _refresh(self, definitions: Definitions) -> bool:
        stamp = (await definitions.campaigns.stamp(), await definitions.templates.stamp())
        if stamp == self._stamp:
            return False
        builtin_campaigns, email, sms, push = self._builtins
        by_channel: dict[str, dict[str, Any]] = {
            "email": dict(email),
            "sms": dict(sms),
            "push": dict(push),
        }
        for template in await definitions.templates.list():
            try:
                by_channel[template.channel][template.key] = checked_template(
                    template.channel, template.content
                )
            except TemplateContentError as exc:
                log.error(
                    "stored template does not render; ignored",
                    template=template.key,
                    error=str(exc),
                )
        known = {channel: set(templates) for channel, templates in by_channel.items()}
        campaigns, refused = campaigns_over(
            builtin_campaigns,
            ((d.key, d.definition, d.status) for d in await definitions.campaigns.list()),
            templates=known,
        )
        for key, error in refused.items():
            log.error("stored campaign does not parse; ignored", campaign=key, error=str(error))
        self.campaigns = tuple(campaigns.values())
        self.templates = by_channel["email"]
        self.sms_templates = by_channel["sms"]
        self.push_templates = by_channel["push"]
        self._stamp = stamp
        log.info(
            "campaigns loaded",
            campaigns=len(self.campaigns),
            active=sum(1 for c in self.campaigns if c.status == "active"),
        )
        return True

    # --- triggers ----------------------------------------------------------------------

    async def handle_changes(self, records: Sequence[Record]) -> None:
        """Decide every message the batch's changes trigger, each committed before its
        provider call; then hand them to the providers in the background (see
        :meth:`drain`), so a slow provider never holds up the next batch."""
        await self.refresh_definitions()
        for record in records:
            try:
                change = decode_change(record.value)
            except (ValueError, KeyError, TypeError) as exc:
                raise PoisonRecord(f"not a segment change: {exc}") from exc
            if isinstance(change, ProfileMerged):
                # The segmenter already moved the message history to the survivor.
                log.info("profiles merged", absorbed=change.absorbed, survivor=change.survivor)
                continue
            for campaign in campaigns_triggered_by(self.campaigns, change):
                _status, sending = await self._begin(campaign, change)
                if sending is not None:  # committed: handed over now, whatever comes next
                    await self._hand_over([sending])

    async def send(self, campaign: Campaign, change: MembershipChange) -> str:
        """Decide ``campaign``'s message for ``change`` unless it exists; return its status.

        The message belongs to the buyer as they are now (following merges) and, for an
        entry, to the buyer's current stay in the segment: two profiles merged into one
        buyer share one stay, so a change announced for each sends one message. A buyer
        who left the segment before the send gets nothing, and the row says why.
        """
        status, sending = await self._begin(campaign, change)
        return status if sending is None else await self._deliver(sending)

    async def _begin(
        self, campaign: Campaign, change: MembershipChange
    ) -> tuple[str, _Outgoing | None]:
        """Decide and record ``campaign``'s message for ``change`` (see :meth:`send`); what
        is left to hand to a provider, if anything."""
        outgoing: _Outgoing | None = None
        async with self.store.unit_of_work() as uow:
            now = self.clock.now()
            profile = await uow.profiles.current(change.profile_id)
            if profile is not None:
                # Locked: caps are counted by one transaction at a time for this buyer.
                profile = (await uow.profiles.get_many([profile.id], lock=True))[profile.id]
            buyer = profile.id if profile is not None else change.profile_id
            occurrence = change.occurrence_id
            left = False
            if profile is not None and change.kind == "entered":
                entered_at = (await uow.memberships.of([buyer]))[buyer].get(change.segment)
                if entered_at is None:
                    left = True
                else:
                    occurrence = occurrence_id(change.segment, buyer, entered_at)
            planned = schedule(campaign, buyer, occurrence, change.at)
            context = {"segment": change.segment, "on": change.kind}
            if profile is not None and not left:
                push = await self._push_address(uow, profile)
                draft = _Draft(campaign, profile, planned, context, push_address=push)
                status, outgoing = await self._trigger(uow, draft, now)
            elif (existing := await uow.messages.get(planned.key)) is not None:
                return existing.status, None
            else:
                reason = (
                    Reason("wake", "left_segment", "the buyer left the segment before the send")
                    if left
                    else Reason("consent", "no_address", "the buyer is not known")
                )
                await uow.messages.begin(_record(campaign, planned, reason.code, now, reason))
                status = await self._skip(uow, planned, reason, (reason,), now)
            await uow.commit()
        return status, outgoing

    async def handle_events(self, records: Sequence[Record]) -> None:
        """Start the event-triggered campaigns (an abandoned cart) and plan the moment-
        triggered ones (a reminder before the expected next order) for each buyer's events.

        The events are those the segmenter applies too: each is acted on once the segmenter
        has applied it (its ``event_id`` is processed), so the buyer's profile is known and
        current; one the segmenter has not applied within ``applied_timeout`` is skipped
        (logged). An event that does not parse is left to the segmenter's dead-letter topic.
        """
        await self.refresh_definitions()
        triggering: list[tuple[AnyEvent, list[Campaign]]] = []
        for record in records:
            try:
                event = read_published_event(record.value)
            except ValidationError:
                continue
            campaigns = campaigns_triggered_by_event(self.campaigns, event)
            if isinstance(event, PurchaseEvent):
                campaigns += [
                    c
                    for c in self.campaigns
                    if isinstance(c.trigger, MomentTrigger) and c.status == "active"
                ]
            if campaigns:
                triggering.append((event, campaigns))
        if not triggering:
            return
        applied = await self._applied({event.dedupe_id for event, _ in triggering})
        for event, campaigns in triggering:
            if event.dedupe_id in applied:
                decided = await self._begin_event(event, campaigns)
                await self._hand_over([o for _, o in decided if o is not None])
            else:
                log.warning(
                    "event not applied in time: its triggers are skipped",
                    event_id=event.event_id,
                )

    async def on_event(self, event: AnyEvent, campaigns: Sequence[Campaign]) -> list[str]:
        """Trigger ``campaigns`` (event or moment triggers) for ``event``'s buyer; the statuses."""
        decided = await self._begin_event(event, campaigns)
        outcomes = await self._deliver_all([o for _, o in decided if o is not None])
        delivered = iter(outcomes)
        return [status if sending is None else next(delivered) for status, sending in decided]

    async def _begin_event(
        self, event: AnyEvent, campaigns: Sequence[Campaign]
    ) -> list[tuple[str, _Outgoing | None]]:
        """Decide and record the messages ``event`` triggers; what is left to hand over."""
        decided: list[tuple[str, _Outgoing | None]] = []
        async with self.store.unit_of_work() as uow:
            now = self.clock.now()
            profile = await self._buyer(uow, event)
            if profile is None:
                return []
            push = await self._push_address(uow, profile)
            for campaign in campaigns:
                planned = _planned(campaign, profile, event)
                if planned is not None:
                    context = {"event": event.type, "trigger": _trigger_data(event)}
                    draft = _Draft(campaign, profile, planned, context, push_address=push)
                    decided.append(await self._trigger(uow, draft, now))
            await uow.commit()
        return decided

    async def _buyer(self, uow: UnitOfWork, event: AnyEvent) -> Profile | None:
        """The profile the event's strongest known identifier names, now, locked."""
        for kind, value in event.customer.identifiers().items():
            found = await uow.profiles.find(kind, value)
            if found is not None:
                current = await uow.profiles.current(found.id)
                if current is not None:
                    return (await uow.profiles.get_many([current.id], lock=True))[current.id]
        return None

    async def _applied(self, event_ids: set[str]) -> set[str]:
        """Those of ``event_ids`` the segmenter applied, waiting up to ``applied_timeout``."""
        deadline = asyncio.get_running_loop().time() + self.applied_timeout
        pause = 0.01
        while True:
            async with self.store.unit_of_work() as uow:
                applied = await uow.inbox.seen(event_ids)
            if applied == event_ids or asyncio.get_running_loop().time() >= deadline:
                return applied
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)

    async def _trigger(
        self, uow: UnitOfWork, draft: _Draft, now: datetime
    ) -> tuple[str, _Outgoing | None]:
        """A trigger's message: none if its key exists, else scheduled (a delay) or decided."""
        existing = await uow.messages.get(draft.send.key)
        if existing is not None:
            return existing.status, None
        if draft.send.due_at > now:
            why = f"the campaign waits until {draft.send.due_at.isoformat()}"
            delay = Reason("delay", "delay", why)
            await uow.messages.begin(_record(draft.campaign, draft.send, "scheduled", now, delay))
            return await self._wait(uow, draft, now, (delay,)), None
        return await self._decide(uow, draft, now, new=True)

    # --- scheduled sends -----------------------------------------------------------------

    async def wake_due(self, limit: int = 100) -> int:
        """Wake up to ``limit`` due sends: drop, defer, skip or send each; return how many.

        One unit of work per send: it claims the earliest due row (skipping rows another
        replica holds), locks its buyer (caps are counted by one transaction at a time),
        wakes it and commits, before the next is claimed. A send's render runs inside its
        own unit of work, so the database is held for one render at most, never for a
        batch of them (on SQLite every unit of work of the process waits for the open one).
        """
        await self.refresh_definitions()
        woken = 0
        while woken < limit:
            async with self.store.unit_of_work() as uow:
                now = self.clock.now()
                due = await uow.schedule.due(now, 1)
                if not due:
                    break
                (record,) = due
                await uow.profiles.get_many({record.send.profile_id}, lock=True)
                sending = await self._wake(uow, record, now)
                await uow.commit()
            woken += 1
            if sending is not None:
                await self._hand_over([sending])
        return woken

    async def measure_queue(self) -> int:
        """Set the queue-depth gauges: sends waiting, and those already due; return the first.

        Counting every waiting row reads the whole index: call it now and then, not per send.
        """
        async with self.store.unit_of_work() as uow:
            depth = await uow.schedule.count_pending()
            due = await uow.schedule.count_pending(due_by=self.clock.now())
        self.metrics.queue_depth.set(depth)
        self.metrics.queue_due.set(due)
        return depth

    async def _wake(self, uow: UnitOfWork, due: ScheduledRecord, now: datetime) -> _Outgoing | None:
        send = due.send
        message = await uow.messages.get(send.key)
        await uow.schedule.remove([send.key])
        if message is None or message.status not in ("scheduled", "sending", "failed"):
            return None  # a guard outliving its send: nothing to do
        campaign = next((c for c in self.campaigns if c.key == send.campaign), None)
        profile = await uow.profiles.current(send.profile_id)
        if campaign is None or profile is None:
            why = Reason("wake", "campaign_not_live", "the campaign or the buyer is gone")
            await self._skip(uow, send, why, (why,), now)
            return None
        draft = _Draft(
            campaign,
            profile,
            replace(send, profile_id=profile.id),
            due.context,
            message.decision,
            await self._push_address(uow, profile),
        )
        if message.status == "sending":
            return await self._recover(uow, draft, message, now)
        memberships = (await uow.memberships.of([profile.id]))[profile.id]
        dropped = check_at_wake(draft.send, campaign, profile, set(memberships), now)
        if dropped is not None:
            await self._skip(uow, send, dropped, (*message.decision, dropped), now)
            log.info("scheduled message dropped", key=send.key, reason=dropped.code)
            return None
        _status, outgoing = await self._decide(uow, draft, now, new=False)
        return outgoing

    async def _recover(
        self, uow: UnitOfWork, draft: _Draft, message: MessageRecord, now: datetime
    ) -> _Outgoing | None:
        """A send whose outcome was never recorded (the process died): SMS and push go again
        with the same idempotency key; an email is not sent twice (SMTP has no such key)."""
        channel = next((c for c in _IDEMPOTENT if c == message.channel), None)
        if channel is None:
            await uow.messages.finish(
                message.key,
                MessageOutcome(
                    "sending",
                    now,
                    reason="outcome_unknown",
                    error="the dispatcher stopped during the send: not sent again",
                ),
            )
            return None
        try:
            composed = await self._compose(draft, (channel,))
        except RendererUnavailable:  # still sending: its guard wakes it again later
            later = draft.send.deferred_to(now + self.retry_after)
            await uow.schedule.add([ScheduledRecord(later, dict(draft.context))], now)
            log.warning("no render worker; the resend is tried again", key=message.key)
            return None
        if isinstance(composed, Reason):
            await self._skip(uow, draft.send, composed, (*message.decision, composed), now)
            return None
        await self._guard(uow, draft, now)
        log.info("resending after a crash", key=message.key, channel=channel)
        return _Outgoing(draft, channel, composed[1], ())

    # --- deciding ----------------------------------------------------------------------

    async def _decide(
        self, uow: UnitOfWork, draft: _Draft, now: datetime, *, new: bool
    ) -> tuple[str, _Outgoing | None]:
        """Run the campaign's decision for ``draft`` and record it: skip, wait or send."""
        profile, send = draft.profile, draft.send
        sent = await uow.messages.recent(
            [profile.id], now - _WEEK, at_least=self.policy.sunset.stop_after
        )
        in_flight = {m.key for m in sent[profile.id]}  # their guard rows are not plans
        scheduled = [
            s
            for s in (await uow.schedule.pending([profile.id]))[profile.id]
            if s.key not in in_flight
        ]
        own_hours = profile.open_hours.get("email")
        base_hours = None
        if sum(own_hours or ()) < self.policy.best_hour_min_opens:
            base_hours = await self._base_open_hours(uow, now)
        decision = decide(
            draft.campaign,
            profile,
            now,
            rng=self.rng,
            policy=self.policy,
            sent=sent[profile.id],
            scheduled=scheduled,
            key=send.key,
            open_hours=own_hours,
            base_open_hours=base_hours,
            push_address=draft.push_address,
        )
        decision = replace(decision, trail=(*draft.history, *decision.trail))
        if new:
            status = {"skip": decision.reason.code, "send_at": "scheduled"}.get(
                decision.action, "sending"
            )
            record = _record(
                draft.campaign, send, status, now, decision.reason, trail=decision.trail
            )
            await uow.messages.begin(record)
        if decision.action == "skip":
            return await self._skip(uow, send, decision.reason, decision.trail, now), None
        if decision.action == "send_at":
            assert decision.at is not None
            moved = replace(draft, send=send.deferred_to(decision.at, decision.channel))
            return await self._wait(uow, moved, now, decision.trail), None
        return await self._start(uow, draft, decision, now)

    async def _start(
        self, uow: UnitOfWork, draft: _Draft, decision: Decision, now: datetime
    ) -> tuple[str, _Outgoing | None]:
        """Compose the message on the chosen channel (or a fallback); commit it ``sending``."""
        assert decision.channel is not None
        channels = (decision.channel, *decision.fallbacks)
        try:
            composed = await self._compose(draft, channels)
        except RendererUnavailable as exc:
            # No fault of the template's: tried again later, like a provider outage.
            why = Reason("render", "renderer_unavailable", str(exc))
            later = draft.send.deferred_to(now + self.retry_after, decision.channel)
            log.warning("no render worker; the send is tried again", key=draft.send.key)
            moved = replace(draft, send=later)
            return await self._wait(uow, moved, now, (*decision.trail, why)), None
        if isinstance(composed, Reason):
            trail = (*decision.trail, composed)
            return await self._skip(uow, draft.send, composed, trail, now), None
        channel, outbound = composed
        await uow.messages.finish(
            draft.send.key,
            MessageOutcome(
                "sending",
                now,
                reason=decision.reason.code,
                channel=channel,
                sent_at=now,
                decision=decision.trail,
            ),
        )
        await self._guard(uow, draft, now)
        rest = channels[channels.index(channel) + 1 :]
        return "sending", _Outgoing(draft, channel, outbound, rest)

    async def _base_open_hours(self, uow: UnitOfWork, now: datetime) -> Sequence[int]:
        """The base's email opens by local hour: the best hour of a buyer with too few
        opens of their own. A random sample of buyers, read again every hour."""
        if self._base_hours is None or now - self._base_hours[0] >= BASE_HOURS_EVERY:
            start = str(uuid.UUID(int=self._sampling.getrandbits(128)))
            hours = await uow.profiles.open_hours_sample(
                "email", start=start, limit=BASE_HOURS_SAMPLE
            )
            self._base_hours = (now, hours)
        return self._base_hours[1]

    async def _guard(self, uow: UnitOfWork, draft: _Draft, now: datetime) -> None:
        """Keep a due row while the send is in flight: it wakes only if the outcome is lost."""
        guard = draft.send.deferred_to(now + self.in_flight_timeout)
        await uow.schedule.add([ScheduledRecord(guard, dict(draft.context))], now)

    async def _skip(
        self,
        uow: UnitOfWork,
        send: ScheduledSend,
        reason: Reason,
        trail: Sequence[Reason],
        now: datetime,
    ) -> str:
        """Record that nothing goes out, and why: the status is the reason's code."""
        await uow.messages.finish(
            send.key,
            MessageOutcome(
                reason.code,
                now,
                error=reason.detail,
                reason=reason.code,
                holdout=reason.code == "holdout",
                decision=trail,
            ),
        )
        self.metrics.outcome(send.campaign, "", reason.code)
        return reason.code

    async def _wait(
        self, uow: UnitOfWork, draft: _Draft, now: datetime, trail: Sequence[Reason]
    ) -> str:
        """Put the message in the scheduled-sends table, due at ``draft.send.due_at``."""
        send = draft.send
        reason = next(r for r in reversed(trail) if r.step != "channel").code
        await uow.messages.finish(
            send.key,
            MessageOutcome(
                "scheduled",
                now,
                reason=reason,
                scheduled_for=send.due_at,
                decision=trail,
                channel=send.channel,
            ),
        )
        await uow.schedule.add([ScheduledRecord(send, dict(draft.context))], now)
        self.metrics.scheduled.labels(send.campaign, reason).inc()
        return "scheduled"

    # --- composing and sending ---------------------------------------------------------

    async def _push_address(self, uow: UnitOfWork, profile: Profile) -> str | None:
        """The buyer's app install for push (the latest by id when they have several), if the
        dispatcher has a push provider."""
        if self.push is None:
            return None
        installs = (await uow.profiles.identifiers([profile.id], "app_install_id"))[profile.id]
        return installs[-1] if installs else None

    def unsubscribe_url(self, buyer: str, campaign: Campaign, channel: Channel = "email") -> str:
        """The link that unsubscribes ``buyer`` from ``campaign``'s channel in one click."""
        token = sign(buyer, channel, campaign.key, self.unsubscribe_key)
        return f"{self.public_url.rstrip('/')}/v1/unsubscribe/{token}"

    async def _compose(
        self, draft: _Draft, channels: Sequence[Channel]
    ) -> tuple[Channel, Outbound] | Reason:
        """The message on the first of ``channels`` it can be written for, or why none (a
        template that does not render, or is over a render limit: ``render_failed``).
        Raise :class:`RendererUnavailable` if no render worker can be had: the caller
        tries the send again later."""
        why: list[str] = []
        for channel in channels:
            try:
                outbound = await self._message(draft, channel)
            except RenderError as exc:
                why.append(f"{channel}: {exc}")
                continue
            if outbound is None:
                why.append(f"{channel}: no address, template or provider")
                continue
            return channel, outbound
        return Reason("render", "render_failed", "; ".join(why) or "no channel")

    async def _message(self, draft: _Draft, channel: Channel) -> Outbound | None:
        campaign, profile, key = draft.campaign, draft.profile, draft.send.key
        template = campaign.templates.get(channel)
        if template is None:
            return None
        link = self.unsubscribe_url(profile.id, campaign, channel)
        values = message_context(
            profile, unsubscribe_url=link, trigger=draft.context.get("trigger")
        )
        if channel == "email" and profile.email is not None and template in self.templates:
            content = await self.renderer.message(self.templates[template], values)
            assert isinstance(content, RenderedEmail)
            return EmailMessage(profile.email, content, key, unsubscribe_url=link)
        if (
            channel == "sms"
            and profile.phone is not None
            and self.sms is not None
            and template in self.sms_templates
        ):
            sms = await self.renderer.message(
                self.sms_templates[template], values, max_segments=self.sms_max_segments
            )
            assert isinstance(sms, RenderedSms)
            return SmsMessage(profile.phone, sms.text, key)
        if (
            channel == "push"
            and draft.push_address is not None
            and self.push is not None
            and template in self.push_templates
        ):
            notification = await self.renderer.message(self.push_templates[template], values)
            assert isinstance(notification, PushContent)
            return PushMessage(draft.push_address, notification, key)
        return None

    async def _hand_over(self, outgoing: Sequence[_Outgoing]) -> None:
        """Deliver ``outgoing`` in the background. Each row is committed ``sending`` with
        its guard already, so a crash before the outcome is recorded loses nothing. With
        ``max_in_flight`` deliveries under way, wait for one to end first: a slow
        provider slows the consumer down rather than piling sends up in memory."""
        for sending in outgoing:
            while len(self._in_flight) >= self.max_in_flight:
                await asyncio.wait(set(self._in_flight), return_when=asyncio.FIRST_COMPLETED)
            task = asyncio.create_task(self._deliver_all([sending]))
            self._in_flight.add(task)
            task.add_done_callback(self._delivered)

    def _delivered(self, task: asyncio.Task[list[str]]) -> None:
        self._in_flight.discard(task)
        error = None if task.cancelled() else task.exception()
        if isinstance(error, Exception):
            # The outcome was not recorded: the send's guard wakes and settles it.
            log.error("delivery failed", error=str(error))
        elif error is not None:
            self._fatal = error  # the process is going down: drain() raises it

    async def drain(self) -> int:
        """Wait for every delivery in the background to end; return how many there were."""
        drained = 0
        while self._in_flight:
            running = list(self._in_flight)
            drained += len(running)
            await asyncio.gather(*running, return_exceptions=True)
        if self._fatal is not None:
            fatal, self._fatal = self._fatal, None
            raise fatal
        return drained

    async def _deliver_all(self, outgoing: Sequence[_Outgoing]) -> list[str]:
        """Deliver every message, at most ``concurrent_sends`` at once; their outcomes."""

        async def one(sending: _Outgoing) -> str:
            slots = self._sending.setdefault(
                sending.channel, asyncio.Semaphore(self.concurrent_sends)
            )
            async with slots:  # per channel: a slow SMS API leaves email its own slots
                return await self._deliver(sending)

        return list(await asyncio.gather(*(one(o) for o in outgoing)))

    async def _deliver(self, outgoing: _Outgoing) -> str:
        """Call the provider; on a rejection, fall back to the next channel; record the outcome."""
        draft, key = outgoing.draft, outgoing.draft.send.key
        channel, message, rest = outgoing.channel, outgoing.message, outgoing.fallbacks
        rejections: list[str] = []
        while True:
            outcome, provider_id, error = await self._call(message)
            if outcome != "rejected" or not rest:
                break
            try:
                composed = await self._compose(draft, rest)
            except RendererUnavailable:  # no fallback written now: the rejection stands
                break
            if isinstance(composed, Reason):
                break
            rejections.append(f"{channel} rejected: {error}")
            channel, message = composed
            rest = rest[rest.index(channel) + 1 :]
            async with self.store.unit_of_work() as uow:
                # Committed before the next call: a crash now is recovered on this channel.
                moved = MessageOutcome(
                    "sending", self.clock.now(), error="; ".join(rejections), channel=channel
                )
                await uow.messages.finish(key, moved)
                await uow.commit()
        notes = "; ".join([*rejections, *([error] if error else [])]) or None
        now = self.clock.now()
        retry_at = now + self.retry_after
        retrying = (
            outcome == "failed"
            and channel in _IDEMPOTENT  # an email may have gone before the failure: never again
            and retry_at <= draft.send.triggered_at + self.retry_for
        )
        async with self.store.unit_of_work() as uow:
            await uow.messages.finish(
                key,
                MessageOutcome(
                    outcome,
                    now,
                    provider_id,
                    notes,
                    channel=channel,
                    reason="provider_unavailable" if retrying else None,
                    scheduled_for=retry_at if retrying else None,
                ),
            )
            if retrying:  # tried again once the provider may be back (its breaker closed)
                again = draft.send.deferred_to(retry_at, channel)
                await uow.schedule.add([ScheduledRecord(again, dict(draft.context))], now)
            else:
                await uow.schedule.remove([key])
            await uow.commit()
        self.metrics.outcome(draft.campaign.key, channel, outcome)
        log.info("message", campaign=draft.campaign.key, key=key, channel=channel, status=outcome)
        return outcome

    async def _call(self, message: Outbound) -> tuple[str, str | None, str | None]:
        """Hand ``message`` to its channel's provider: the outcome, provider id and error."""
        try:
            if isinstance(message, EmailMessage):
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type(ProviderUnavailable),
                    stop=stop_after_attempt(self.send_attempts),
                    wait=wait_exponential_jitter(multiplier=0.2, max=2.0, jitter=0.2),
                    reraise=True,
                ):
                    with attempt:
                        receipt = await self.email.send(message)
            elif isinstance(message, SmsMessage):
                assert self.sms is not None
                receipt = await self.sms.send(message)
            else:
                assert self.push is not None
                receipt = await self.push.send(message)
        except ProviderRejected as exc:
            return "rejected", None, str(exc)
        except ProviderUnavailable as exc:
            return "failed", None, str(exc)
        return "sent", receipt.provider_message_id, None


def _record(
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


def _planned(campaign: Campaign, profile: Profile, event: AnyEvent) -> ScheduledSend | None:
    """The send ``event`` starts: the event is the occurrence of an event trigger; for a
    moment trigger, the buyer's moment as it is now (a purchase moves it)."""
    trigger = campaign.trigger
    if isinstance(trigger, MomentTrigger):
        fires_at = trigger.fires_at(profile)
        occurrence = trigger.occurrence_id(profile)
        if fires_at is None or occurrence is None or not campaign.is_live(fires_at):
            return None
        return schedule(campaign, profile.id, occurrence, fires_at)
    return schedule(campaign, profile.id, event.dedupe_id, event.occurred_at)


def _trigger_data(event: AnyEvent) -> dict[str, Any]:
    """What a template sees as ``trigger``: a custom event's properties, or the event's data."""
    data: dict[str, Any] = event.data.model_dump(mode="json")
    if isinstance(event, TrackEvent):
        return dict(data.get("properties") or {})
    return data
