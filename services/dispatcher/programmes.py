"""Programmes in the dispatcher: buyers entering them, walking their steps, woken when
a wait ends.

A trigger (a segment change, an event, a purchase that moves a buyer's moment) enters
the buyer into each active programme it starts: one position row per programme, buyer
and entry, written in the trigger batch's unit of work with the messages of the steps
the walk reaches at once (:func:`~shared.domain.programmes.walk`). A send step's
message is decided and sent like a campaign's (:mod:`.deciding`), under the campaign
key ``programme.step.variant`` and a key of its own per step, so a step is sent at
most once whatever is delivered again. :meth:`ProgrammeSteps.wake_due` wakes the
positions whose wait ended; :meth:`ProgrammeSteps.handle_events` moves those of the
buyers whose event ends a wait (or reaches the goal). In each unit of work the
positions move and the messages are written together, then committed once: a crash
before the commit repeats the walk from where it was, after it nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from services.catalogue import Catalogue
from services.dispatcher.composing import Composer
from services.dispatcher.deciding import Decider
from services.dispatcher.delivery import Delivery
from services.dispatcher.learning import SplitLearning
from services.dispatcher.ledger import Ledger
from services.dispatcher.outgoing import Draft, Outgoing
from shared.domain.campaigns import EventTrigger, MomentTrigger, SegmentTrigger, message_key
from shared.domain.decisions import DEFAULT_POLICY, ScheduledSend, SendingPolicy, buyer_zone
from shared.domain.events import AnyEvent, PurchaseEvent
from shared.domain.profile import Profile
from shared.domain.programmes import (
    ACTIVATION_ENTRY,
    Branch,
    EveryoneIn,
    OnResponse,
    Programme,
    Response,
    Wait,
    WaitForEvent,
    Walk,
    enter,
    step_campaign,
    step_occurrence,
    walk,
)
from shared.domain.segments import MembershipChange
from shared.logging import get_logger
from shared.ports.clock import Clock
from shared.ports.store import Activation, PositionRecord, Store, UnitOfWork

__all__ = ["BuyersOf", "Entering", "ProgrammeSteps"]

BuyersOf = Callable[[UnitOfWork, Sequence[AnyEvent]], Awaitable[list[Profile | None]]]
"""For each event, its buyer now (following merges), locked, in the given unit of work."""

log = get_logger(__name__)


@dataclass(frozen=True)
class Entering:
    """A buyer entering a programme by one trigger occurrence, at ``at`` (later than now
    for a moment ahead)."""

    programme: Programme
    profile_id: str
    occurrence: str
    at: datetime


@dataclass
class ProgrammeSteps:
    store: Store
    clock: Clock
    catalogue: Catalogue
    composer: Composer
    decider: Decider
    delivery: Delivery
    policy: SendingPolicy = DEFAULT_POLICY
    learning: SplitLearning | None = None
    """What the adaptive variant splits learnt; without it a split keeps its written shares."""
    _activated: set[str] = field(default_factory=set, init=False, repr=False)
    """Programmes whose activation finished (read once, then never asked again)."""

    # --- what starts a programme --------------------------------------------------------

    def live(self) -> tuple[Programme, ...]:
        """The active programmes (loaded by :meth:`Catalogue.refresh_programmes`)."""
        return tuple(p for p in self.catalogue.programmes if p.status == "active")

    def entered_by_change(self, change: MembershipChange) -> list[Entering]:
        """The active programmes a segment change starts, one entry each."""
        return [
            Entering(p, change.profile_id, change.occurrence_id, change.at)
            for p in self.live()
            if isinstance(p.trigger, SegmentTrigger)
            and p.trigger.segment == change.segment
            and p.trigger.on == change.kind
        ]

    def entered_by_event(self, event: AnyEvent, profile: Profile) -> list[Entering]:
        """The active programmes an event starts: an event trigger it matches (the event
        is the occurrence), and for a purchase every moment trigger (the buyer's moment as
        it is now, which the purchase moved)."""
        found: list[Entering] = []
        for p in self.live():
            trigger = p.trigger
            if isinstance(trigger, EventTrigger) and trigger.matches(event):
                found.append(Entering(p, profile.id, event.dedupe_id, event.occurred_at))
            elif isinstance(trigger, MomentTrigger) and isinstance(event, PurchaseEvent):
                fires_at = trigger.fires_at(profile)
                occurrence = trigger.occurrence_id(profile)
                if fires_at is not None and occurrence is not None:
                    found.append(Entering(p, profile.id, occurrence, fires_at))
        return found

    def waits_on_events(self) -> bool:
        """Whether an active programme has a step an event can end early (an event wait)."""
        return any(isinstance(step, WaitForEvent) for p in self.live() for step in _waits(p))

    # --- entering and walking, in the caller's unit of work -------------------------------

    async def enter(self, ledger: Ledger, entering: Sequence[Entering]) -> list[Outgoing]:
        """Write the new entries and walk them as far as they go now; an entry delivered
        again (its row exists) does nothing. Held-out buyers are written, exited
        ``holdout``, and sent nothing."""
        if not entering:
            return []
        uow, now = ledger.uow, self.clock.now()
        profiles = await uow.profiles.current_many({e.profile_id for e in entering}, lock=True)
        records: list[PositionRecord] = []
        programmes: dict[tuple[str, int], Programme] = {}
        for e in entering:
            profile = profiles.get(e.profile_id)
            if profile is None:
                continue
            entry = enter(e.programme, profile.id, e.occurrence, e.at)
            held = entry.holdout
            records.append(
                PositionRecord(
                    entry.position,
                    held,
                    exited_at=now if held else None,
                    exit_reason="holdout" if held else None,
                )
            )
            programmes[(e.programme.key, e.programme.version)] = e.programme
        written = await uow.positions.enter(records, now)
        fresh = [r for r in records if r.position in written and not r.holdout]
        return await self._walk(ledger, fresh, programmes, profiles, now)

    async def _walk(
        self,
        ledger: Ledger,
        records: Sequence[PositionRecord],
        programmes: Mapping[tuple[str, int], Programme],
        profiles: Mapping[str, Profile],
        now: datetime,
    ) -> list[Outgoing]:
        """Walk ``records`` (their buyers locked), decide the messages their walks hand
        over, and save where each is now."""
        uow = ledger.uow
        responses = await self._responses(uow, records, programmes)
        splits: dict[tuple[str, int], dict[str, tuple[float, ...]]] = {}
        if self.learning is not None:
            for at, learnt in programmes.items():
                splits[at] = await self.learning.splits(learnt)
        walked: list[tuple[PositionRecord, Programme, Profile, Walk]] = []
        for record in records:
            p = record.position
            programme = programmes.get((p.programme, p.version))
            profile = profiles.get(p.profile_id)
            if programme is None or profile is None:
                gone = "programme_gone" if programme is None else "buyer_gone"
                await uow.positions.save([replace(record, exited_at=now, exit_reason=gone)], now)
                continue
            done = walk(
                programme,
                p,
                profile,
                now,
                zone=buyer_zone(profile, self.policy),
                responses=responses.get(p, {}),
                open_hours=profile.open_hours.get("email"),
                splits=splits.get((p.programme, p.version)),
            )
            walked.append((record, programme, profile, done))
        buyers = {profile.id for _, _, profile, _ in walked}
        keys = {send.key for *_, done in walked for send in done.sends}
        await self.decider.read(ledger, buyers, keys, now)
        push = await self.composer.push_addresses(uow, buyers)
        sending: list[Outgoing] = []
        moved: list[PositionRecord] = []
        for record, programme, profile, done in walked:
            for send in done.sends:
                campaign = step_campaign(programme, send.step, send.variant)
                planned = ScheduledSend(
                    key=send.key,
                    campaign=campaign.key,
                    profile_id=profile.id,
                    occurrence_id=send.occurrence,
                    triggered_at=record.position.entered_at,
                    due_at=now,
                    priority=programme.priority,
                )
                context: dict[str, Any] = {"programme": programme.key, "step": send.step.id}
                draft = Draft(
                    campaign, profile, planned, context, push_address=push.get(profile.id)
                )
                _status, outgoing = await self.decider.trigger(ledger, draft, now)
                if outgoing is not None:
                    sending.append(outgoing)
            if done.position is not None:
                moved.append(replace(record, position=done.position))
            else:
                moved.append(replace(record, exited_at=now, exit_reason=done.exited))
            if done.moved:
                log.info(
                    "programme step",
                    programme=programme.key,
                    passed=list(done.passed),
                    exited=done.exited,
                )
        await uow.positions.save(moved, now)
        return sending

    async def _responses(
        self,
        uow: UnitOfWork,
        records: Sequence[PositionRecord],
        programmes: Mapping[tuple[str, int], Programme],
    ) -> dict[Any, dict[str, set[Response]]]:
        """For each position whose programme branches on a response, what the buyer did
        with each of its send steps' messages (the delivery reports; ``converted`` for a
        purchase after the send)."""
        wanted: dict[str, tuple[Any, str]] = {}
        for record in records:
            p = record.position
            programme = programmes.get((p.programme, p.version))
            if programme is None or not _branches_on_responses(programme):
                continue
            for step in programme.sends:
                key = message_key(p.programme, p.profile_id, step_occurrence(p.entry, step.id))
                wanted[key] = (p, step.id)
        if not wanted:
            return {}
        reported = await uow.messages.responses(wanted)
        messages = await uow.messages.get_many(wanted)
        buyers = await uow.profiles.current_many({p.profile_id for p, _ in wanted.values()})
        found: dict[Any, dict[str, set[Response]]] = {}
        for key, (position, step_id) in wanted.items():
            did: set[Response] = {
                r for r in ("delivered", "opened", "clicked") if r in reported.get(key, set())
            }
            message, buyer = messages.get(key), buyers.get(position.profile_id)
            if (
                message is not None
                and message.sent_at is not None
                and buyer is not None
                and buyer.last_order_at is not None
                and buyer.last_order_at > message.sent_at
            ):
                did.add("converted")
            found.setdefault(position, {})[step_id] = did
        return found

    # --- everyone in a segment, once, at activation ---------------------------------------

    async def activate(self, batch: int = 1000) -> int:
        """Enter one more batch of the members of each active "everyone in segment S"
        programme not yet fully entered; return how many entered.

        The first time a programme is seen active its activation is written (its moment:
        who was in the segment then enters). Each batch is one unit of work: the next
        members in id order (one statement), their entries (one statement, an entry that
        exists writes nothing) and how far the activation went, committed together. A
        crash before the commit repeats the batch, after it goes on from there; once every
        member entered the activation is finished, and activating again enters no one.
        Entries wait until the activation's moment, so the due loop walks them, a batch
        at a time, like any wait that ended."""
        entered = 0
        for programme in self.live():
            trigger = programme.trigger
            if not isinstance(trigger, EveryoneIn) or programme.key in self._activated:
                continue
            async with self.store.unit_of_work() as uow:
                activation = await uow.positions.activation(programme.key, self.clock.now())
                if activation is None:  # another replica is entering this batch
                    continue
                if activation.finished_at is not None:
                    self._activated.add(programme.key)
                    continue
                members = await uow.memberships.members(
                    trigger.segment,
                    entered_by=activation.activated_at,
                    after=activation.after,
                    limit=batch,
                )
                done = await self._enter_members(uow, programme, activation, members, batch)
                await uow.commit()
            entered += len(members)
            if done.finished_at is not None:
                self._activated.add(programme.key)
                log.info("programme activated", programme=programme.key, entered=done.entered)
        return entered

    async def _enter_members(
        self,
        uow: UnitOfWork,
        programme: Programme,
        activation: Activation,
        members: Sequence[str],
        batch: int,
    ) -> Activation:
        now, at = self.clock.now(), activation.activated_at
        records = []
        for profile_id in members:
            entry = enter(programme, profile_id, ACTIVATION_ENTRY, at)
            held = entry.holdout
            records.append(
                PositionRecord(
                    entry.position,
                    held,
                    exited_at=now if held else None,
                    exit_reason="holdout" if held else None,
                )
            )
        written = await uow.positions.enter(records, now)
        done = replace(
            activation,
            after=members[-1] if members else activation.after,
            entered=activation.entered + len(written),
            finished_at=now if len(members) < batch else None,
        )
        await uow.positions.advance(done)
        return done

    # --- the loops ------------------------------------------------------------------------

    async def wake_due(self, limit: int = 100) -> int:
        """Enter the next batch of an activation (:meth:`activate`), then walk up to
        ``limit`` positions whose wait ended, in one unit of work; return how many of
        both. The positions are claimed first (skipping those another replica holds),
        then their buyers locked, as the scheduled sends are."""
        await self.catalogue.refresh_programmes()
        activated = await self.activate(max(limit, 1000))
        return activated + await self._wake_due(limit)

    async def _wake_due(self, limit: int) -> int:
        async with self.store.unit_of_work() as uow:
            now = self.clock.now()
            due = await uow.positions.due(now, limit)
            if not due:
                return 0
            ledger = Ledger(uow)
            sending = await self._walk_existing(ledger, due, now)
            await ledger.write(now)
            await uow.commit()
        await self.delivery.hand_over(sending)
        return len(due)

    async def _walk_existing(
        self, ledger: Ledger, records: Sequence[PositionRecord], now: datetime
    ) -> list[Outgoing]:
        uow = ledger.uow
        profiles = await uow.profiles.current_many(
            {r.position.profile_id for r in records}, lock=True
        )
        programmes: dict[tuple[str, int], Programme] = {}
        for r in records:
            at = (r.position.programme, r.position.version)
            if at not in programmes:
                found = await self.catalogue.programme_at(*at)
                if found is not None:
                    programmes[at] = found
        return await self._walk(ledger, records, programmes, profiles, now)

    async def handle_events(self, events: Sequence[AnyEvent], find: BuyersOf) -> None:
        """The programmes ``events`` start, and the positions of their buyers that wait for
        an event: walked now, in one unit of work (``find`` names each event's buyer in it,
        locked)."""
        if not events:
            return
        sending: list[Outgoing] = []
        async with self.store.unit_of_work() as uow:
            found = await find(uow, events)
            known = [(e, b) for e, b in zip(events, found, strict=True) if b is not None]
            entering = [e for event, buyer in known for e in self.entered_by_event(event, buyer)]
            waiting_for = {b.id for _, b in known} if self.waits_on_events() else set()
            if not entering and not waiting_for:
                return
            ledger, now = Ledger(uow), self.clock.now()
            sending += await self.enter(ledger, entering)
            if waiting_for:
                waiting = await _waiting(uow, waiting_for)
                sending += await self._walk_existing(ledger, waiting, now)
            await ledger.write(now)
            await uow.commit()
        await self.delivery.hand_over(sending)


async def _waiting(uow: UnitOfWork, buyers: Collection[str]) -> list[PositionRecord]:
    return [r for r in await uow.positions.waiting(buyers) if r.position.due_at is not None]


def _waits(programme: Programme) -> list[Any]:
    return [s.until for s in programme.steps.values() if isinstance(s, Wait)]


def _branches_on_responses(programme: Programme) -> bool:
    return any(
        isinstance(s, Branch) and isinstance(s.condition, OnResponse)
        for s in programme.steps.values()
    )
