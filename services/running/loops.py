"""Small helpers the services share to run their loops and stop them cleanly."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

from shared.consuming import BatchHandler, ConsumerLoop
from shared.errors import BusUnavailable, StoreUnavailable
from shared.logging import get_logger
from shared.ports.bus import Bus, Publisher
from shared.settings import Settings

__all__ = ["consume", "repeat", "wait_or_stop"]

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


async def consume(
    name: str,
    bus: Bus,
    *,
    group: str,
    topics: Sequence[str],
    handle: BatchHandler,
    dead_letters: Publisher,
    settings: Settings,
    max_records: int | None = None,
) -> ConsumerLoop:
    """A consumer loop of ``group`` on ``topics``, ``handle`` applying each batch (of at
    most ``max_records``, else ``NUDGE_BATCH_SIZE``), what it cannot apply sent to the
    dead letters through ``dead_letters``."""
    consumer = await bus.consumer(group, topics)
    return ConsumerLoop(
        name,
        consumer,
        handle,
        dead_letters,
        max_records=settings.batch_size if max_records is None else max_records,
        poll_timeout=settings.poll_timeout,
    )
