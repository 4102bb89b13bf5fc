"""Scheduled sends: the messages waiting in the scheduled-sends table, woken when due.

:meth:`ScheduledSends.wake_due` wakes a message when due, drops it if the buyer
converted or left the audience meanwhile (the reason recorded), and decides it again
(:mod:`services.dispatcher.deciding`). A due row that guards a send in flight is one
whose outcome was lost (the process died during the send): it is recovered as
:mod:`services.dispatcher.delivery` says.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from services.catalogue import Catalogue
from services.dispatcher.composing import Composer
from services.dispatcher.deciding import Decider
from services.dispatcher.delivery import Delivery
from services.dispatcher.ledger import Ledger
from services.dispatcher.metrics import DispatcherMetrics
from services.dispatcher.outgoing import Draft, Outgoing, Timing
from shared.domain.channels import can_send_again
from shared.domain.decisions import Reason, check_at_wake
from shared.errors import RendererUnavailable
from shared.logging import get_logger
from shared.ports.clock import Clock
from shared.ports.store import MessageOutcome, MessageRecord, ScheduledRecord, Store

__all__ = ["ScheduledSends"]

log = get_logger(__name__)


@dataclass
class ScheduledSends:
    store: Store
    clock: Clock
    catalogue: Catalogue
    composer: Composer
    decider: Decider
    delivery: Delivery
    metrics: DispatcherMetrics
    timing: Timing

    async def wake_due(self, limit: int = 100) -> int:
        """Wake up to ``limit`` due sends: drop, defer, skip or send each; return how many.

        One unit of work per send: it claims the earliest due row (skipping rows another
        replica holds), locks its buyer (caps are counted by one transaction at a time),
        wakes it and commits, before the next is claimed. A send's render runs inside its
        own unit of work, so the database is held for one render at most, never for a
        batch of them (on SQLite every unit of work of the process waits for the open one).
        """
        await self.catalogue.refresh_programmes()  # a programme's step may be due too
        woken = 0
        while woken < limit:
            async with self.store.unit_of_work() as uow:
                now = self.clock.now()
                due = await uow.schedule.due(now, 1)
                if not due:
                    break
                (record,) = due
                await uow.profiles.get_many({record.send.profile_id}, lock=True)
                ledger = Ledger(uow)
                sending = await self._wake(ledger, record, now)
                await ledger.write(now)
                await uow.commit()
            woken += 1
            if sending is not None:
                await self.delivery.hand_over([sending])
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

    async def _wake(self, ledger: Ledger, due: ScheduledRecord, now: datetime) -> Outgoing | None:
        send, uow = due.send, ledger.uow
        message = await uow.messages.get(send.key)
        await uow.schedule.remove([send.key])
        if message is None or message.status not in ("scheduled", "sending", "failed"):
            return None  # a guard outliving its send: nothing to do
        ledger.know(message)
        campaign = self.catalogue.campaign(send.campaign)
        profile = await uow.profiles.current(send.profile_id)
        if campaign is None or profile is None:
            why = Reason("wake", "campaign_not_live", "the campaign or the buyer is gone")
            if message.status != "sending":  # never sent: a code it had goes back
                await uow.offer_codes.release([send.key])
            self.decider.skip(ledger, send, why, (why,), now)
            return None
        draft = Draft(
            campaign,
            profile,
            replace(send, profile_id=profile.id),
            due.context,
            message.decision,
            await self.composer.push_address(uow, profile),
        )
        if message.status == "sending":
            return await self._recover(ledger, draft, message, now)
        memberships = (await uow.memberships.of([profile.id]))[profile.id]
        dropped = check_at_wake(draft.send, campaign, profile, set(memberships), now)
        if dropped is not None:
            if campaign.offer is not None:  # never sent: a code it had goes back
                await uow.offer_codes.release([send.key])
            self.decider.skip(ledger, send, dropped, (*message.decision, dropped), now)
            log.info("scheduled message dropped", key=send.key, reason=dropped.code)
            return None
        await self.decider.read(ledger, [profile.id], (), now)
        _status, outgoing = await self.decider.decide(ledger, draft, now, new=False)
        return outgoing

    async def _recover(
        self, ledger: Ledger, draft: Draft, message: MessageRecord, now: datetime
    ) -> Outgoing | None:
        """A send whose outcome was never recorded (the process died): SMS and push go again
        with the same idempotency key; an email is not sent twice (SMTP has no such key)."""
        channel = can_send_again(message.channel)
        if channel is None:
            ledger.finish(
                message.key,
                MessageOutcome(
                    "sending",
                    now,
                    reason="outcome_unknown",
                    error="the dispatcher stopped during the send: not sent again",
                ),
            )
            return None
        attached = await self.decider.attach_offer(ledger.uow, draft, now)  # the one it has
        if isinstance(attached, Reason):
            self.decider.skip(ledger, draft.send, attached, (*message.decision, attached), now)
            return None
        draft = attached
        try:
            composed = await self.composer.compose(draft, (channel,))
        except RendererUnavailable:  # still sending: its guard wakes it again later
            later = draft.send.deferred_to(now + self.timing.retry_after)
            ledger.schedule([ScheduledRecord(later, dict(draft.context))])
            log.warning("no render worker; the resend is tried again", key=message.key)
            return None
        if isinstance(composed, Reason):
            self.decider.skip(ledger, draft.send, composed, (*message.decision, composed), now)
            return None
        self.decider.guard(ledger, draft, now)
        log.info("resending after a crash", key=message.key, channel=channel)
        return Outgoing(draft, channel, composed[1], ())
