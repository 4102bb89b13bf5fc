"""Triggers: segment changes and events becoming, at most once, campaign messages.

Triggers are segment changes (:meth:`Triggers.handle_changes`) and events
(:meth:`Triggers.handle_events`): an event an event trigger matches (an abandoned
cart), and a purchase, which moves the buyer's moments (a reminder three days before
the order the buyer's rhythm expects is planned then). Each trigger's message is
keyed by campaign, buyer and trigger occurrence and decided
(:mod:`services.dispatcher.deciding`) unless its row exists: a change delivered
again finds the row and sends nothing. A batch of changes, or of events, is decided in
one unit of work, set-wise (:mod:`services.dispatcher.ledger`: its buyers locked and
what its decisions need read at once, its rows written at once). What is committed
``sending`` is handed to :mod:`services.dispatcher.delivery` at once, so a slow
provider never holds up the next batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from services.catalogue import Catalogue
from services.dispatcher.composing import Composer
from services.dispatcher.deciding import Decided, Decider
from services.dispatcher.delivery import Delivery
from services.dispatcher.ledger import Ledger
from services.dispatcher.outgoing import Draft, Outgoing, first_record
from services.dispatcher.programmes import Entering, ProgrammeSteps
from shared.codec import decode_change
from shared.domain.campaigns import (
    Campaign,
    MomentTrigger,
    campaigns_triggered_by,
    campaigns_triggered_by_event,
)
from shared.domain.decisions import Reason, ScheduledSend, schedule
from shared.domain.events import AnyEvent, PurchaseEvent, TrackEvent, read_published_event
from shared.domain.profile import Profile, ProfileMerged
from shared.domain.segments import MembershipChange, occurrence_id
from shared.errors import PoisonRecord
from shared.logging import get_logger
from shared.ports.bus import Record
from shared.ports.clock import Clock
from shared.ports.store import Store, UnitOfWork

__all__ = ["Triggers"]

log = get_logger(__name__)


@dataclass(frozen=True)
class _Planned:
    """A campaign's message for a segment change, before it is decided."""

    change: MembershipChange
    campaign: Campaign
    profile: Profile | None
    """The buyer as they are now, locked; ``None`` if unknown."""
    send: ScheduledSend
    left: bool
    """The buyer left the segment the change says they entered."""


@dataclass
class Triggers:
    store: Store
    clock: Clock
    catalogue: Catalogue
    composer: Composer
    decider: Decider
    delivery: Delivery
    applied_timeout: float = 5.0
    """Seconds (real time) an event waits for the segmenter to apply it before its
    triggers are skipped."""
    programmes: ProgrammeSteps | None = None
    """The programmes the changes and events start and move (none: campaigns only)."""

    async def handle_changes(self, records: Sequence[Record]) -> None:
        """Decide every message the batch's changes trigger, in order, in one unit of work
        (the campaigns' and the entries into programmes); once it is committed, hand the
        ones to send over for delivery."""
        if self.programmes is not None:
            await self.catalogue.refresh_programmes()  # the campaigns too, in one look
        else:
            await self.catalogue.refresh_campaigns()
        triggered: list[tuple[MembershipChange, Campaign]] = []
        entering: list[Entering] = []
        for record in records:
            try:
                change = decode_change(record.value)
            except (ValueError, KeyError, TypeError) as exc:
                raise PoisonRecord(f"not a segment change: {exc}") from exc
            if isinstance(change, ProfileMerged):
                # The segmenter already moved the message history to the survivor.
                log.info("profiles merged", absorbed=change.absorbed, survivor=change.survivor)
                continue
            campaigns = campaigns_triggered_by(self.catalogue.campaigns, change)
            triggered += [(change, campaign) for campaign in campaigns]
            if self.programmes is not None:
                entering += self.programmes.entered_by_change(change)
        if not triggered and not entering:
            return
        sending: list[Outgoing] = []
        async with self.store.unit_of_work() as uow:
            ledger = Ledger(uow)
            if triggered:
                plans = await self._plan(ledger, triggered)
                buyers = {plan.profile.id for plan in plans if plan.profile is not None}
                push = await self.composer.push_addresses(uow, buyers)
                for plan in plans:
                    _status, outgoing = await self._begin(ledger, plan, push)
                    if outgoing is not None:
                        sending.append(outgoing)
            if self.programmes is not None:
                sending += await self.programmes.enter(ledger, entering)
            await ledger.write(self.clock.now())
            await uow.commit()
        await self.delivery.hand_over(sending)  # committed: handed over now, in order

    async def _plan(
        self, ledger: Ledger, triggered: Sequence[tuple[MembershipChange, Campaign]]
    ) -> list[_Planned]:
        """Each campaign's message for each change, for the buyer as they are now (following
        merges) and, for an entry, for the buyer's current stay in the segment: two profiles
        merged into one buyer share one stay, so a change announced for each sends one
        message. The batch's buyers are locked, in one order, and what deciding their
        messages needs is read into ``ledger``, for all of them at once."""
        uow = ledger.uow
        # Locked: caps are counted by one transaction at a time for each buyer.
        named = {change.profile_id for change, _ in triggered}
        buyers = await uow.profiles.current_many(named, lock=True)
        entering = {
            buyers[c.profile_id].id
            for c, _ in triggered
            if c.kind == "entered" and c.profile_id in buyers
        }
        memberships = await uow.memberships.of(entering)
        plans: list[_Planned] = []
        for change, campaign in triggered:
            profile = buyers.get(change.profile_id)
            buyer = profile.id if profile is not None else change.profile_id
            occurrence, left = change.occurrence_id, False
            if profile is not None and change.kind == "entered":
                entered_at = memberships[buyer].get(change.segment)
                if entered_at is None:
                    left = True
                else:
                    occurrence = occurrence_id(change.segment, buyer, entered_at)
            send = schedule(campaign, buyer, occurrence, change.at)
            plans.append(_Planned(change, campaign, profile, send, left))
        keys = {plan.send.key for plan in plans}
        locked = {profile.id for profile in buyers.values()}
        await self.decider.read(ledger, locked, keys, self.clock.now())
        return plans

    async def _begin(
        self, ledger: Ledger, plan: _Planned, push: Mapping[str, str | None]
    ) -> Decided:
        """Decide and record ``plan``'s message unless it exists. A buyer who left the
        segment before the send gets nothing, and the row says why."""
        now = self.clock.now()
        campaign, profile, planned, change = plan.campaign, plan.profile, plan.send, plan.change
        if profile is not None and not plan.left:
            context = {"segment": change.segment, "on": change.kind}
            draft = Draft(campaign, profile, planned, context, push_address=push.get(profile.id))
            return await self.decider.trigger(ledger, draft, now)
        if (existing := ledger.message(planned.key)) is not None:
            return existing.status, None
        reason = (
            Reason("wake", "left_segment", "the buyer left the segment before the send")
            if plan.left
            else Reason("consent", "no_address", "the buyer is not known")
        )
        ledger.begin(first_record(campaign, planned, reason.code, now, reason))
        return self.decider.skip(ledger, planned, reason, (reason,), now), None

    async def handle_events(self, records: Sequence[Record]) -> None:
        """Start the event-triggered campaigns (an abandoned cart) and plan the moment-
        triggered ones (a reminder before the expected next order) for each buyer's events.

        The events are those the segmenter applies too: each is acted on once the segmenter
        has applied it (its ``event_id`` is processed), so the buyer's profile is known and
        current; one the segmenter has not applied within ``applied_timeout`` is skipped
        (logged). An event that does not parse is left to the segmenter's dead-letter topic.
        """
        steps = self.programmes
        if steps is not None:
            await self.catalogue.refresh_programmes()  # the campaigns too, in one look
            if not steps.live():
                steps = None
        else:
            await self.catalogue.refresh_campaigns()
        in_force = self.catalogue.campaigns
        triggering: list[tuple[AnyEvent, list[Campaign]]] = []
        moving: list[AnyEvent] = []
        for record in records:
            try:
                event = read_published_event(record.value)
            except ValidationError:
                continue
            if steps is not None:
                moving.append(event)
            campaigns = campaigns_triggered_by_event(in_force, event)
            if isinstance(event, PurchaseEvent):
                campaigns += [
                    c
                    for c in in_force
                    if isinstance(c.trigger, MomentTrigger) and c.status == "active"
                ]
            if campaigns:
                triggering.append((event, campaigns))
        if not triggering and not moving:
            return
        wanted = {event.dedupe_id for event, _ in triggering} | {e.dedupe_id for e in moving}
        applied = await self._applied(wanted)
        for event_id in sorted(wanted - applied):
            log.warning("event not applied in time: its triggers are skipped", event_id=event_id)
        ready = [
            (event, campaigns) for event, campaigns in triggering if event.dedupe_id in applied
        ]
        if ready:
            await self._begin_events(ready)
        if steps is not None:
            await steps.handle_events([e for e in moving if e.dedupe_id in applied], self._buyers)

    async def _begin_events(self, triggering: Sequence[tuple[AnyEvent, list[Campaign]]]) -> None:
        """Decide and record the messages the events trigger, in order, in one unit of work;
        once it is committed, hand the ones to send over for delivery."""
        sending: list[Outgoing] = []
        async with self.store.unit_of_work() as uow:
            buyers = await self._buyers(uow, [event for event, _ in triggering])
            planned = [
                (event, profile, campaign, send)
                for (event, campaigns), profile in zip(triggering, buyers, strict=True)
                if profile is not None
                for campaign in campaigns
                if (send := _planned(campaign, profile, event)) is not None
            ]
            known = {profile.id for profile in buyers if profile is not None}
            push = await self.composer.push_addresses(uow, known)
            ledger = Ledger(uow)
            keys = {send.key for *_, send in planned}
            await self.decider.read(ledger, known, keys, self.clock.now())
            for event, profile, campaign, send in planned:
                context = {"event": event.type, "trigger": _trigger_data(event)}
                draft = Draft(campaign, profile, send, context, push_address=push.get(profile.id))
                _status, outgoing = await self.decider.trigger(ledger, draft, self.clock.now())
                if outgoing is not None:
                    sending.append(outgoing)
            await ledger.write(self.clock.now())
            await uow.commit()
        await self.delivery.hand_over(sending)

    async def _buyers(self, uow: UnitOfWork, events: Sequence[AnyEvent]) -> list[Profile | None]:
        """For each event, the profile its strongest known identifier names, now (following
        merges), locked: every event's buyer at once, locked in one order."""
        named = [list(event.customer.identifiers().items()) for event in events]
        found = await uow.profiles.find_many({pair for pairs in named for pair in pairs})
        current = await uow.profiles.current_many({p.id for p in found.values()}, lock=True)
        return [
            next(
                (current[found[p].id] for p in pairs if p in found and found[p].id in current), None
            )
            for pairs in named
        ]

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
