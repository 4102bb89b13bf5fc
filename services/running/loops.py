"""Small helpers the services share to run their loops and stop them cleanly."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from shared.consuming import BatchHandler, ConsumerLoop
from shared.errors import BusUnavailable, StoreUnavailable
from shared.logging import get_logger
from shared.ports.bus import Bus, Publisher
from shared.settings import Settings

__all__ = ["Subscription", "consume", "repeat", "shut", "wait_or_stop"]

log = get_logger(__name__)


async def wait_or_stop(waiting: Awaitable[object], stopping: asyncio.Event) -> None:
    """Wait for ``waiting`` unless ``stopping`` is set first."""
    waiter = asyncio.ensure_future(waiting)
    stopper = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiter, stopper):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def repeat(
    name: str,
    work: Callable[[], Awaitable[bool]],
    idle: Callable[[], Awaitable[object]],
    stopping: asyncio.Event,
) -> None:
    """Run ``work`` until stopped; after a round that found nothing to do, await ``idle``."""
    while not stopping.is_set():
        try:
            busy = await work()
        except (BusUnavailable, StoreUnavailable) as exc:
            log.warning("dependency unavailable, backing off", loop=name, error=str(exc))
            await wait_or_stop(asyncio.sleep(1.0), stopping)
            continue
        if not busy:
            await wait_or_stop(idle(), stopping)


@dataclass(frozen=True)
class Subscription:
    """What a consumer loop reads: ``topic`` (by its short name) in consumer group
    ``group``, at most ``max_records`` at a time (default ``NUDGE_BATCH_SIZE``); ``name``
    is how the logs call the loop."""

    name: str
    group: str
    topic: str
    max_records: int | None = None


async def consume(
    bus: Bus,
    settings: Settings,
    subscription: Subscription,
    handle: BatchHandler,
    dead_letters: Publisher,
) -> ConsumerLoop:
    """A consumer loop of ``subscription``, ``handle`` applying each batch, what it
    cannot apply sent to the dead letters through ``dead_letters``."""
    consumer = await bus.consumer(
        settings.group(subscription.group), [settings.topic(subscription.topic)]
    )
    batch = subscription.max_records
    return ConsumerLoop(
        subscription.name,
        consumer,
        handle,
        dead_letters,
        max_records=settings.batch_size if batch is None else min(settings.batch_size, batch),
        poll_timeout=settings.poll_timeout,
    )


async def shut(loops: Sequence[ConsumerLoop | None], publisher: Publisher | None) -> None:
    """Close the consumers of ``loops``, then ``publisher`` (each one not ``None``)."""
    for loop in loops:
        if loop is not None:
            await loop.consumer.close()
    if publisher is not None:
        await publisher.close()
