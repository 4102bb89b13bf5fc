"""Deciding a message: the campaign's decision (:func:`shared.domain.decisions.decide`:
consent and suppression, holdout, frequency caps, sunset, quiet hours, best hour, best
channel) run for a buyer and recorded on the message row, keyed by campaign, buyer and
trigger occurrence. Decisions read and write through their batch's
:class:`~services.dispatcher.ledger.Ledger`, written in the batch's unit of work.

A buyer who gets nothing has a row that says why (``reason``, ``holdout``, every step's
say in ``decision``); its status is that reason. A message that must wait (the
campaign's delay, room under the caps, the end of quiet hours, the buyer's best hour) is
``scheduled`` and sits in the scheduled-sends table. A message that goes out is composed
on the chosen channel (or a fallback) and committed ``sending`` with its guard row (see
:mod:`services.dispatcher.delivery`) before any provider is called.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from services.dispatcher.composing import Composer
from services.dispatcher.ledger import Ledger
from services.dispatcher.metrics import DispatcherMetrics
from services.dispatcher.offering import Offering
from services.dispatcher.outgoing import Draft, Outgoing, Timing, first_record
from shared.domain.channels import fallbacks_after
from shared.domain.decisions import (
    DEFAULT_POLICY,
    Decision,
    Reason,
    ScheduledSend,
    SendingPolicy,
    decide,
)
from shared.errors import RendererUnavailable
from shared.logging import get_logger
from shared.ports.store import MessageOutcome, ScheduledRecord, UnitOfWork

__all__ = ["BASE_HOURS_EVERY", "BASE_HOURS_SAMPLE", "Decided", "Decider"]

BASE_HOURS_EVERY = timedelta(hours=1)
BASE_HOURS_SAMPLE = 5_000
"""Buyers whose email opens make the base's open hours (a best hour for buyers with
few opens of their own): enough for 24 shares, cheap to read once an hour."""

log = get_logger(__name__)

_WEEK = timedelta(days=7)

Decided = tuple[str, Outgoing | None]
"""A message's status once decided, and what is left to hand to a provider, if anything."""


@dataclass
class Decider:
    composer: Composer
    metrics: DispatcherMetrics
    timing: Timing
    policy: SendingPolicy = DEFAULT_POLICY
    rng: random.Random = field(default_factory=random.Random)
    """Draws for the best channel (Thompson sampling); seeded in tests."""
    offering: Offering | None = None
    """Gives a message its offer's promo code; without it, a campaign that names an offer
    sends nothing (``offer_unavailable``)."""

    def __post_init__(self) -> None:
        self._base_hours: tuple[datetime, Sequence[int]] | None = None
        # Not self.rng (tests seed it for channel draws); sampling, not cryptography.
        self._sampling = random.Random()  # noqa: S311

    async def read(
        self, ledger: Ledger, buyers: Collection[str], keys: Collection[str], now: datetime
    ) -> None:
        """Read into ``ledger`` what deciding the messages of ``keys`` for ``buyers`` needs,
        for all of them at once: their rows, the buyers' recent messages and waiting sends."""
        since = now - _WEEK
        await ledger.read(buyers, keys, since=since, at_least=self.policy.sunset.stop_after)

    async def trigger(self, ledger: Ledger, draft: Draft, now: datetime) -> Decided:
        """A trigger's message: none if its key exists, else scheduled (a delay) or decided."""
        existing = ledger.message(draft.send.key)
        if existing is not None:
            return existing.status, None
        if draft.send.due_at > now:
            why = f"the campaign waits until {draft.send.due_at.isoformat()}"
            delay = Reason("delay", "delay", why)
            ledger.begin(first_record(draft.campaign, draft.send, "scheduled", now, delay))
            return self.wait(ledger, draft, now, (delay,)), None
        return await self.decide(ledger, draft, now, new=True)

    async def decide(self, ledger: Ledger, draft: Draft, now: datetime, *, new: bool) -> Decided:
        """Run the campaign's decision for ``draft`` and record it: skip, wait or send. A
        ``new`` message's row is written first; a woken one's exists. The buyer's recent
        messages and waiting sends must have been read (:meth:`read`)."""
        profile, send = draft.profile, draft.send
        sent = ledger.recent(profile.id, now - _WEEK, at_least=self.policy.sunset.stop_after)
        in_flight = {m.key for m in sent}  # their guard rows are not plans
        scheduled = [s for s in ledger.pending(profile.id) if s.key not in in_flight]
        own_hours = profile.open_hours.get("email")
        base_hours = None
        if sum(own_hours or ()) < self.policy.best_hour_min_opens:
            base_hours = await self._base_open_hours(ledger.uow, now)
        decision = decide(
            draft.campaign,
            profile,
            now,
            rng=self.rng,
            policy=self.policy,
            sent=sent,
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
            record = first_record(
                draft.campaign, send, status, now, decision.reason, trail=decision.trail
            )
            ledger.begin(record)
        if decision.action == "skip":
            if not new and draft.campaign.offer is not None:
                # A woken message may have been given its code before it had to wait.
                await ledger.uow.offer_codes.release([send.key])
            return self.skip(ledger, send, decision.reason, decision.trail, now), None
        if decision.action == "send_at":
            assert decision.at is not None
            moved = replace(draft, send=send.deferred_to(decision.at, decision.channel))
            return self.wait(ledger, moved, now, decision.trail), None
        return await self._start(ledger, draft, decision, now)

    async def _start(
        self, ledger: Ledger, draft: Draft, decision: Decision, now: datetime
    ) -> Decided:
        """Compose the message on the chosen channel (or a fallback); commit it ``sending``."""
        assert decision.channel is not None
        channels = (decision.channel, *decision.fallbacks)
        attached = await self.attach_offer(ledger.uow, draft, now)
        if isinstance(attached, Reason):
            return self.skip(ledger, draft.send, attached, (*decision.trail, attached), now), None
        draft = attached
        try:
            composed = await self.composer.compose(draft, channels)
        except RendererUnavailable as exc:
            # No fault of the template's: tried again later, like a provider outage.
            why = Reason("render", "renderer_unavailable", str(exc))
            later = draft.send.deferred_to(now + self.timing.retry_after, decision.channel)
            log.warning("no render worker; the send is tried again", key=draft.send.key)
            moved = replace(draft, send=later)
            return self.wait(ledger, moved, now, (*decision.trail, why)), None
        if isinstance(composed, Reason):
            trail = (*decision.trail, composed)
            await ledger.uow.offer_codes.release([draft.send.key])  # never sent: back it goes
            return self.skip(ledger, draft.send, composed, trail, now), None
        channel, outbound = composed
        ledger.finish(
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
        self.guard(ledger, draft, now)
        return "sending", Outgoing(draft, channel, outbound, fallbacks_after(channels, channel))

    async def attach_offer(self, uow: UnitOfWork, draft: Draft, now: datetime) -> Draft | Reason:
        """``draft`` with the promo code of its campaign's offer (the one it has, or a new
        one, in ``uow``), or why it cannot have one; as it is when the campaign names none."""
        if draft.campaign.offer is None:
            return draft
        if self.offering is None:
            return Reason("offer", "offer_unavailable", "no offer-code key is configured")
        return await self.offering.attach(uow, draft, now)

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

    def guard(self, ledger: Ledger, draft: Draft, now: datetime) -> None:
        """Keep a due row while the send is in flight: it wakes only if the outcome is lost."""
        guard = draft.send.deferred_to(now + self.timing.in_flight_timeout)
        ledger.schedule([ScheduledRecord(guard, dict(draft.context))])

    def skip(
        self,
        ledger: Ledger,
        send: ScheduledSend,
        reason: Reason,
        trail: Sequence[Reason],
        now: datetime,
    ) -> str:
        """Record that nothing goes out, and why: the status is the reason's code."""
        ledger.finish(
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

    def wait(self, ledger: Ledger, draft: Draft, now: datetime, trail: Sequence[Reason]) -> str:
        """Put the message in the scheduled-sends table, due at ``draft.send.due_at``."""
        send = draft.send
        reason = next(r for r in reversed(trail) if r.step != "channel").code
        ledger.finish(
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
        ledger.schedule([ScheduledRecord(send, dict(draft.context))])
        self.metrics.scheduled.labels(send.campaign, reason).inc()
        return "scheduled"
