"""Delivery: a message committed ``sending`` handed to its channel's provider, in the
background, and its outcome recorded.

Exactly once: the message row is committed ``sending`` *before* the provider is
called, its outcome after (with the outcomes of the sends that end meanwhile, in one
transaction). A guard row in the scheduled-sends table, due
``in_flight_timeout`` later, is committed with it and removed with the outcome.
If the process dies in between, the guard wakes
(:mod:`services.dispatcher.scheduled`): an SMS or push message is sent again with
the same idempotency key (those providers deliver one message per key); an email
is not (SMTP has no such key: at most once), and the row keeps ``sending`` with
the reason ``outcome_unknown``.

Retries have one home: each provider is wrapped, when it is built, in its retries,
call timeout and circuit breaker
(:class:`~shared.adapters.providers.resilience.ResilientProvider`); what is still
down after them comes back here as ``failed``. Such a message is tried again
``retry_after`` later on SMS and push, for up to ``retry_for`` after its trigger;
a rejection sends it on the next fallback channel it can be written for, the move
committed before the next call (the channel rules are
:mod:`shared.domain.channels`'s).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from services.dispatcher.composing import Composer
from services.dispatcher.metrics import DispatcherMetrics
from services.dispatcher.outgoing import Outbound, Outgoing, Providers, Timing
from shared.domain.channels import fallbacks_after, falls_back, tried_again_later
from shared.domain.decisions import Reason
from shared.errors import ProviderRejected, ProviderUnavailable, RendererUnavailable
from shared.logging import get_logger
from shared.ports.clock import Clock
from shared.ports.providers import EmailMessage, SmsMessage
from shared.ports.store import NOT_SENT, MessageOutcome, ScheduledRecord, Store

__all__ = ["Delivery"]

log = get_logger(__name__)


@dataclass
class Delivery:
    store: Store
    clock: Clock
    providers: Providers
    composer: Composer
    metrics: DispatcherMetrics
    timing: Timing
    concurrent_sends: int = 16
    """Provider calls in flight at once per channel: a slow provider holds up its own
    channel's sends, not the others'."""
    max_in_flight: int = 256
    """Deliveries under way (or waiting for a slot) before the consumers wait."""

    def __post_init__(self) -> None:
        self._outcomes = _Outcomes(self.store, self.clock)
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._in_flight: set[asyncio.Task[str]] = set()
        self._fatal: BaseException | None = None

    async def hand_over(self, outgoing: Sequence[Outgoing]) -> None:
        """Deliver ``outgoing`` in the background. Each row is committed ``sending`` with
        its guard already, so a crash before the outcome is recorded loses nothing. With
        ``max_in_flight`` deliveries under way, wait for one to end first: a slow
        provider slows the consumer down rather than piling sends up in memory."""
        for sending in outgoing:
            while len(self._in_flight) >= self.max_in_flight:
                await asyncio.wait(set(self._in_flight), return_when=asyncio.FIRST_COMPLETED)
            task = asyncio.create_task(self._deliver_in_turn(sending))
            self._in_flight.add(task)
            task.add_done_callback(self._delivered)

    def _delivered(self, task: asyncio.Task[str]) -> None:
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

    async def _deliver_in_turn(self, sending: Outgoing) -> str:
        """Deliver ``sending`` once its channel has a free slot (``concurrent_sends`` each)."""
        slots = self._slots.setdefault(sending.channel, asyncio.Semaphore(self.concurrent_sends))
        async with slots:  # per channel: a slow SMS API leaves email its own slots
            return await self._deliver(sending)

    async def _deliver(self, outgoing: Outgoing) -> str:
        """Call the provider; on a rejection, fall back to the next channel; record the outcome."""
        draft, key = outgoing.draft, outgoing.draft.send.key
        channel, message, rest = outgoing.channel, outgoing.message, outgoing.fallbacks
        rejections: list[str] = []
        while True:
            outcome, provider_id, error = await self._call(message)
            if not falls_back(outcome, rest):
                break
            try:
                composed = await self.composer.compose(draft, rest)
            except RendererUnavailable:  # no fallback written now: the rejection stands
                break
            if isinstance(composed, Reason):
                break
            rejections.append(f"{channel} rejected: {error}")
            channel, message = composed
            rest = fallbacks_after(rest, channel)
            async with self.store.unit_of_work() as uow:
                # Committed before the next call: a crash now is recovered on this channel.
                moved = MessageOutcome(
                    "sending", self.clock.now(), error="; ".join(rejections), channel=channel
                )
                await uow.messages.finish(key, moved)
                await uow.commit()
        notes = "; ".join([*rejections, *([error] if error else [])]) or None
        now = self.clock.now()
        retry_at = now + self.timing.retry_after
        retrying = tried_again_later(
            outcome, channel, at=retry_at, until=draft.send.triggered_at + self.timing.retry_for
        )
        ended = MessageOutcome(
            outcome,
            now,
            provider_id,
            notes,
            channel=channel,
            reason="provider_unavailable" if retrying else None,
            scheduled_for=retry_at if retrying else None,
        )
        # Tried again once the provider may be back (its breaker closed); else the guard goes.
        again = draft.send.deferred_to(retry_at, channel) if retrying else None
        await self._outcomes.record(
            key, ended, None if again is None else ScheduledRecord(again, dict(draft.context))
        )
        self.metrics.outcome(draft.campaign.key, channel, outcome)
        log.info("message", campaign=draft.campaign.key, key=key, channel=channel, status=outcome)
        return outcome

    async def _call(self, message: Outbound) -> tuple[str, str | None, str | None]:
        """Hand ``message`` to its channel's provider: the outcome, provider id and error."""
        providers = self.providers
        try:
            if isinstance(message, EmailMessage):
                receipt = await providers.email.send(message)
            elif isinstance(message, SmsMessage):
                assert providers.sms is not None
                receipt = await providers.sms.send(message)
            else:
                assert providers.push is not None
                receipt = await providers.push.send(message)
        except ProviderRejected as exc:
            return "rejected", None, str(exc)
        except ProviderUnavailable as exc:
            return "failed", None, str(exc)
        return "sent", receipt.provider_message_id, None


@dataclass(frozen=True)
class _Ended:
    """A send's outcome to record, and its guard's fate: moved to the retry (``again``) or
    removed."""

    key: str
    outcome: MessageOutcome
    again: ScheduledRecord | None


@dataclass
class _Outcomes:
    """The outcomes of sends, recorded together: each delivery waits until its own is
    committed, in one unit of work with those of the deliveries that ended while the
    last one was being written (a group commit: one that ends alone waits for nothing).
    A write that fails fails every delivery in it: their guards wake and settle them."""

    store: Store
    clock: Clock

    def __post_init__(self) -> None:
        self._waiting: list[tuple[_Ended, asyncio.Future[None]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def record(
        self, key: str, outcome: MessageOutcome, again: ScheduledRecord | None
    ) -> None:
        """Record ``outcome`` for the message ``key``, its guard moved to ``again`` or removed;
        return once committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((_Ended(key, outcome, again), done))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write())
        await done

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await self._commit([ended for ended, _ in batch])
            except Exception as exc:  # handed to each delivery in the batch
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            except BaseException:  # cancelled: no delivery waits for ever
                for _, done in (*batch, *self._waiting):
                    done.cancel()
                self._waiting = []
                raise
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def _commit(self, batch: Sequence[_Ended]) -> None:
        async with self.store.unit_of_work() as uow:
            await uow.messages.finish_many([(ended.key, ended.outcome) for ended in batch])
            again = [ended.again for ended in batch if ended.again is not None]
            if again:
                await uow.schedule.add(again, self.clock.now())
            settled = [ended.key for ended in batch if ended.again is None]
            if settled:
                await uow.schedule.remove(settled)
            # Never sent, and not tried again: a promo code it carried goes back to its pool.
            unsent = [
                ended.key
                for ended in batch
                if ended.again is None and ended.outcome.status in NOT_SENT
            ]
            if unsent:
                await uow.offer_codes.release(unsent)
            await uow.commit()
