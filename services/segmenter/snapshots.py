"""The daily snapshot of segment sizes, which the console draws as "size over time".

:func:`record_segment_sizes` records every segment's size now as today's (UTC); a second
call on the same day replaces the first, so calling it on demand is harmless.
:func:`snapshot_daily` is the loop a service runs: one snapshot at start, then one just
after each midnight UTC, until ``stopping`` is set.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta

from shared.errors import StoreUnavailable
from shared.logging import get_logger
from shared.ports.clock import Clock
from shared.ports.console import SegmentSizeHistory

__all__ = ["record_segment_sizes", "seconds_to_next_snapshot", "snapshot_daily"]

log = get_logger(__name__)

RETRY_SECONDS = 60.0
"""How long to wait before trying again when the database did not answer."""


async def record_segment_sizes(history: SegmentSizeHistory, clock: Clock) -> int:
    """Record today's size of every segment; how many segments were recorded."""
    now = clock.now()
    return await history.snapshot_segment_sizes(now.date(), now)


def seconds_to_next_snapshot(now: datetime) -> float:
    """Seconds from ``now`` to five minutes past the next midnight UTC."""
    tomorrow = datetime.combine(now.date() + timedelta(days=1), time(0, 5), tzinfo=now.tzinfo)
    return max(1.0, (tomorrow - now).total_seconds())


async def snapshot_daily(
    history: SegmentSizeHistory, clock: Clock, stopping: asyncio.Event
) -> None:
    """Snapshot segment sizes now and once a day after, until ``stopping`` is set."""
    while not stopping.is_set():
        try:
            recorded = await record_segment_sizes(history, clock)
        except StoreUnavailable as exc:
            log.warning("segment sizes not recorded", error=str(exc))
            wait = RETRY_SECONDS
        else:
            log.info("segment sizes recorded", segments=recorded)
            wait = seconds_to_next_snapshot(clock.now())
        sleeping = asyncio.ensure_future(clock.sleep(wait))
        stopped = asyncio.ensure_future(stopping.wait())
        await asyncio.wait({sleeping, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for task in (sleeping, stopped):
            task.cancel()
