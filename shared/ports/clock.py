"""The clock port: what time it is, and waiting for a moment to come; and simulated time,
which a tool moves by hand (``nudge demo``, an embedded ``nudge replay``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "SimulatedTime"]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current moment, timezone-aware (UTC)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait until ``seconds`` have passed on this clock; at once for zero or less."""
        ...


class SimulatedTime(Clock, Protocol):
    """A clock that moves only when told: its sleeps return once it was moved far enough."""

    def advance(self, delta: timedelta) -> None:
        """Move the clock ``delta`` forward."""
        ...

    def set(self, moment: datetime) -> None:
        """Move the clock to ``moment``."""
        ...
