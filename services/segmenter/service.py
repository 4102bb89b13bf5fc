"""The segmenter service: events in, profiles and memberships kept, changes out.

Five loops share one process: the events consumer, the timer loop (wakes the
buyers whose next timer is due, on the service's clock), the outbox relay, the
segments loop (notices stored segments edited, every ``definitions_interval``
seconds, and evaluates the base against a new or changed rule, batch by batch), and
the scoring loop (scores the whole base, RFM, predictions and CLV, once every
``NUDGE_SCORING_INTERVAL_HOURS``, on one replica at a time); and once a day it
records every segment's size, for the console's size-over-time charts.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry

from services.bootstrap import Runtime
from services.catalogue import Catalogue
from services.running.loops import Subscription, consume, repeat, shut
from services.segmenter.attribution import Attribution
from services.segmenter.handlers import RECOMPUTE_BATCH, Segmenter, relay_outbox
from services.segmenter.metrics import ScoringMetrics
from services.segmenter.scoring import (
    Progress,
    ScoringRun,
    policy_from,
    score_the_base,
    scoring_due,
)
from services.segmenter.snapshots import snapshot_daily
from shared.consuming import ConsumerLoop
from shared.errors import BusUnavailable, StoreUnavailable
from shared.logging import get_logger
from shared.ports.bus import Publisher
from shared.ports.definitions import Definitions

__all__ = ["SegmenterService"]

log = get_logger(__name__)

EVENTS = Subscription("segmenter.events", group="segmenter", topic="events")
SCORING_CHECK = timedelta(minutes=10)
"""How often the scoring loop asks whether the base is due for scoring."""


class SegmenterService:
    def __init__(
        self,
        runtime: Runtime,
        *,
        timer_batch: int = 1000,
        definitions: Definitions | None = None,
        definitions_interval: float = 2.0,
        recompute_batch: int = RECOMPUTE_BATCH,
    ) -> None:
        """``definitions`` default to the runtime's; ``definitions_interval`` is
        how often (seconds) ``run`` looks for edited segments."""
        self.runtime = runtime
        settings = runtime.settings
        definitions = definitions or runtime.definitions
        # One catalogue: the segments in force and the campaigns whose messages convert
        # are loaded in one place for both.
        in_force = Catalogue(definitions, segments=runtime.segments)
        self.segmenter = Segmenter(
            store=runtime.store,
            clock=runtime.clock,
            segments=runtime.segments,
            changes_topic=settings.topic("segment-changes"),
            definitions=definitions,
            attribution=Attribution(
                runtime.results, definitions, catalogue=in_force, offers=runtime.database.offers
            ),
            catalogue=in_force,
            recompute_size=recompute_batch,
            default_timezone=settings.default_timezone,
            refund_rules=settings.refund_rules,
        )
        self.definitions_interval = definitions_interval
        self.scoring_base = runtime.scoring_base
        self.scoring_metrics = ScoringMetrics()
        self.timer_batch = timer_batch
        self.stopping = asyncio.Event()
        self._publisher: Publisher | None = None
        self._loop: ConsumerLoop | None = None

    @property
    def metrics_registries(self) -> tuple[CollectorRegistry, ...]:
        """What this service measures: the scoring runs (its lag is Kafka's)."""
        return (self.scoring_metrics.registry,)

    async def start(self) -> None:
        bus, settings = self.runtime.bus, self.runtime.settings
        self._publisher = publisher = bus.publisher()
        self._loop = await consume(bus, settings, EVENTS, self.segmenter.apply_events, publisher)

    async def step(self) -> int:
        """One round of every loop without waiting: for the demo and for tests."""
        assert self._loop is not None, "start() first"
        assert self._publisher is not None
        await self.segmenter.refresh_segments()
        done = await self.segmenter.recompute()
        done += await self._loop.step(0)
        done += await self.segmenter.fire_timers(self.timer_batch)
        done += await relay_outbox(self.runtime.store, self._publisher, self.runtime.clock)
        return done

    async def score(
        self, progress: Progress | None = None, *, as_of: datetime | None = None
    ) -> ScoringRun | None:
        """Score the whole base now (or as it stood at ``as_of``), unless another replica
        is at it (``None`` then)."""
        async with self.scoring_base.exclusive() as mine:
            if not mine:
                return None
            return await score_the_base(
                self.segmenter,
                self.scoring_base,
                self.runtime.clock,
                policy_from(self.runtime.settings),
                progress,
                metrics=self.scoring_metrics,
                as_of=as_of,
                history=self.runtime.order_history,
            )

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

        async def segments() -> bool:
            await self.segmenter.refresh_segments()
            return await self.segmenter.recompute() > 0

        every = timedelta(hours=settings.scoring_interval_hours)

        async def scoring() -> bool:
            if every and await scoring_due(self.scoring_base, clock.now(), every):
                try:
                    await self.score()
                except (BusUnavailable, StoreUnavailable):
                    raise  # the loop backs off and tries again
                except Exception:  # a failed scoring must not stop events being applied
                    log.exception("scoring the base failed; tried again at the next check")
            return False

        try:
            await asyncio.gather(
                self._loop.run(),
                snapshot_daily(self.runtime.database.sizes, clock, self.stopping),
                repeat(
                    "scoring",
                    scoring,
                    lambda: clock.sleep(SCORING_CHECK.total_seconds()),
                    self.stopping,
                ),
                repeat("timers", timers, until_next_tick, self.stopping),
                repeat(
                    "outbox", relay, lambda: asyncio.sleep(settings.relay_interval), self.stopping
                ),
                repeat(
                    "segments",
                    segments,
                    lambda: asyncio.sleep(self.definitions_interval),
                    self.stopping,
                ),
            )
        finally:
            await self.close()

    def stop(self) -> None:
        self.stopping.set()
        if self._loop is not None:
            self._loop.stop()

    async def close(self) -> None:
        loop, self._loop = self._loop, None
        publisher, self._publisher = self._publisher, None
        await shut([loop], publisher)
