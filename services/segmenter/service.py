"""The segmenter service: events in, profiles and memberships kept, changes out.

Three loops share one process: the events consumer, the timer loop (wakes the
buyers whose next timer is due, on the service's clock) and the outbox relay.
"""

from __future__ import annotations

import asyncio

from services.bootstrap import Runtime
from services.loops import repeat
from services.segmenter.handlers import Segmenter, relay_outbox
from shared.consuming import ConsumerLoop
from shared.ports.bus import Publisher

__all__ = ["SegmenterService"]


class SegmenterService:
    def __init__(self, runtime: Runtime, *, timer_batch: int = 1000) -> None:
        self.runtime = runtime
        settings = runtime.settings
        self.segmenter = Segmenter(
            store=runtime.store,
            clock=runtime.clock,
            segments=runtime.segments,
            changes_topic=settings.topic("segment-changes"),
        )
        self.timer_batch = timer_batch
        self.stopping = asyncio.Event()
        self._publisher: Publisher | None = None
        self._loop: ConsumerLoop | None = None

    async def start(self) -> None:
        settings = self.runtime.settings
        self._publisher = self.runtime.bus.publisher()
        consumer = await self.runtime.bus.consumer(
            settings.group("segmenter"), [settings.topic("events")]
        )
        self._loop = ConsumerLoop(
            "segmenter.events",
            consumer,
            self.segmenter.apply_events,
            self._publisher,
            max_records=settings.batch_size,
            poll_timeout=settings.poll_timeout,
        )

    async def step(self) -> int:
        """One round of every loop without waiting: for the demo and for tests."""
        assert self._loop is not None, "start() first"
        assert self._publisher is not None
        done = await self._loop.step(0)
        done += await self.segmenter.fire_timers(self.timer_batch)
        done += await relay_outbox(self.runtime.store, self._publisher, self.runtime.clock)
        return done

    async def run(self) -> None:
        """Run until :meth:`stop`; the batch in hand is finished and committed first."""
        assert self._loop is not None, "start() first"
        assert self._publisher is not None
        publisher, settings, clock = self._publisher, self.runtime.settings, self.runtime.clock

        checked = clock.now()

        async def timers() -> bool:
            nonlocal checked
            checked = clock.now()
            return await self.segmenter.fire_timers(self.timer_batch) >= self.timer_batch

        async def until_next_tick() -> None:
            # Count the interval from when the last round looked, not from now: time that
            # passed while it ran (a simulated clock moved, a slow database) is not waited
            # for again, so a timer that fell due meanwhile is not left for a whole interval.
            elapsed = (clock.now() - checked).total_seconds()
            await clock.sleep(settings.timer_interval - elapsed)

        async def relay() -> bool:
            return await relay_outbox(self.runtime.store, publisher, clock) > 0

        try:
            await asyncio.gather(
                self._loop.run(),
                repeat("timers", timers, until_next_tick, self.stopping),
                repeat(
                    "outbox", relay, lambda: asyncio.sleep(settings.relay_interval), self.stopping
                ),
            )
        finally:
            await self.close()

    def stop(self) -> None:
        self.stopping.set()
        if self._loop is not None:
            self._loop.stop()

    async def close(self) -> None:
        if self._loop is not None:
            loop, self._loop = self._loop, None
            await loop.consumer.close()
        if self._publisher is not None:
            publisher, self._publisher = self._publisher, None
            await publisher.close()
