"""The dispatcher service: segment changes and events in, campaign messages out.

Its parts, one job each, built here from the runtime's ports: :mod:`.triggers`
(segment changes and events become messages), :mod:`.programmes` (buyers entering
programmes and walking their steps, woken when a wait ends), :mod:`.scheduled`
(waiting sends woken when due, lost sends recovered), :mod:`.deciding` (the campaign's decision
recorded), :mod:`.composing` (the message written for a channel) and
:mod:`.delivery` (provider calls in the background, their outcomes recorded), over
the campaigns and templates in force (:class:`~services.catalogue.Catalogue`).

Its loops: the segment-changes consumer; the events consumer (in a group of its
own, for the campaigns started by an event or by a moment of the buyer's rhythm;
always running, since a marketer may switch such a campaign on at any time); the
due-sends loop, which wakes the scheduled sends whose moment
came (on the service's clock, every ``timer_interval`` seconds when nothing is
due); and the count of the scheduled-sends table for the queue-depth gauges
(``dispatcher.metrics``).
"""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from services.bootstrap import Runtime, offer_code_key, unsubscribe_key
from services.catalogue import Catalogue, Templates
from services.dispatcher.composing import Composer
from services.dispatcher.deciding import Decider
from services.dispatcher.delivery import Delivery
from services.dispatcher.learning import SplitLearning
from services.dispatcher.metrics import DispatcherMetrics
from services.dispatcher.offering import Offering
from services.dispatcher.outgoing import Providers, Timing
from services.dispatcher.programmes import ProgrammeSteps
from services.dispatcher.scheduled import ScheduledSends
from services.dispatcher.triggers import Triggers
from services.running.loops import Subscription, consume, repeat, shut
from shared.consuming import ConsumerLoop
from shared.ports.bus import Publisher

__all__ = ["QUEUE_DEPTH_INTERVAL", "DispatcherService"]

CHANGES = Subscription(
    "dispatcher.changes", group="dispatcher", topic="segment-changes", max_records=100
)
EVENTS = Subscription(
    "dispatcher.events", group="dispatcher-events", topic="events", max_records=100
)
QUEUE_DEPTH_INTERVAL = 15.0
"""Seconds between two counts of the scheduled-sends table (the queue-depth gauges)."""


class DispatcherService:
    def __init__(self, runtime: Runtime, *, due_batch: int = 100) -> None:
        self.runtime = runtime
        settings, store, clock = runtime.settings, runtime.store, runtime.clock
        self.catalogue = Catalogue(
            runtime.definitions,
            campaigns=runtime.campaigns,
            templates=Templates(email=dict(runtime.templates)),
        )
        self.providers = Providers(runtime.email, runtime.sms, runtime.push)
        self.metrics = DispatcherMetrics()
        self.timing = Timing()
        self.composer = Composer(
            self.catalogue,
            self.providers,
            runtime.renderer,
            unsubscribe_key=unsubscribe_key(settings),
            public_url=settings.public_url,
            sms_max_segments=settings.sms_max_segments,
        )
        self.decider = Decider(
            self.composer,
            self.metrics,
            self.timing,
            policy=runtime.sending_policy,
            offering=Offering(offer_code_key(settings)),
        )
        self.delivery = Delivery(
            store, clock, self.providers, self.composer, self.metrics, self.timing
        )
        self.programmes = ProgrammeSteps(
            store,
            clock,
            self.catalogue,
            self.composer,
            self.decider,
            self.delivery,
            policy=runtime.sending_policy,
            learning=SplitLearning(runtime.results, clock),
        )
        self.triggers = Triggers(
            store,
            clock,
            self.catalogue,
            self.composer,
            self.decider,
            self.delivery,
            programmes=self.programmes,
        )
        self.scheduled = ScheduledSends(
            store,
            clock,
            self.catalogue,
            self.composer,
            self.decider,
            self.delivery,
            self.metrics,
            self.timing,
        )
        self.due_batch = due_batch
        self.stopping = asyncio.Event()
        self._publisher: Publisher | None = None
        self._loop: ConsumerLoop | None = None
        self._events: ConsumerLoop | None = None

    @property
    def metrics_registries(self) -> tuple[CollectorRegistry, ...]:
        """What this service measures: its messages and due table, its providers."""
        return (self.metrics.registry, self.runtime.provider_registry)

    async def start(self) -> None:
        bus, settings = self.runtime.bus, self.runtime.settings
        self._publisher = publisher = bus.publisher()
        self._loop = await consume(bus, settings, CHANGES, self.triggers.handle_changes, publisher)
        # Events start some campaigns (an abandoned cart; a reminder planned from the
        # buyer's rhythm): read them too, in a group of the dispatcher's own, never more at
        # a time than the segmenter (which applies them first); always, since a marketer
        # may switch such a campaign on at any time.
        self._events = await consume(bus, settings, EVENTS, self.triggers.handle_events, publisher)

    async def step(self) -> int:
        """One round of both loops without waiting: for the demo and for tests."""
        assert self._loop is not None, "start() first"
        done = await self._loop.step(0)
        if self._events is not None:
            done += await self._events.step(0)
        done += await self.scheduled.wake_due(self.due_batch)
        done += await self.programmes.wake_due(self.due_batch)
        return done + await self.delivery.drain()

    async def run(self) -> None:
        """Run until :meth:`stop`; the batch in hand is finished and committed first."""
        assert self._loop is not None, "start() first"
        clock, interval = self.runtime.clock, self.runtime.settings.timer_interval
        checked = clock.now()

        async def due_sends() -> bool:
            nonlocal checked
            checked = clock.now()
            sends = await self.scheduled.wake_due(self.due_batch)
            steps = await self.programmes.wake_due(self.due_batch)
            return max(sends, steps) >= self.due_batch

        async def until_next_tick() -> None:
            # As the segmenter's timers: time spent in the last round is not waited again.
            await clock.sleep(interval - (clock.now() - checked).total_seconds())

        async def queue_depth() -> bool:
            await self.scheduled.measure_queue()
            return False

        loops = [self._loop.run()]
        if self._events is not None:
            loops.append(self._events.run())
        try:
            await asyncio.gather(
                *loops,
                repeat("due-sends", due_sends, until_next_tick, self.stopping),
                repeat(
                    "queue-depth",
                    queue_depth,
                    lambda: asyncio.sleep(QUEUE_DEPTH_INTERVAL),
                    self.stopping,
                ),
            )
        finally:
            await self.delivery.drain()  # the sends in flight finish before the close
            await self.close()

    def stop(self) -> None:
        self.stopping.set()
        for loop in (self._loop, self._events):
            if loop is not None:
                loop.stop()

    async def close(self) -> None:
        loops, self._events, self._loop = (self._events, self._loop), None, None
        publisher, self._publisher = self._publisher, None
        await shut(loops, publisher)
