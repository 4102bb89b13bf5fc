"""A simulated clock that moves when someone sleeps on it, and remembers each sleep."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from shared.adapters.clock import SimulatedClock


class SleepRecordingClock(SimulatedClock):
    """Every ``sleep(s)`` moves the clock ``s`` on at once and is kept in ``slept``.

    For retries and backoff: the waits are asserted as numbers, and no test waits
    for them in real time.
    """

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.slept.append(seconds)
            self.advance(timedelta(seconds=seconds))
        await asyncio.sleep(0)
