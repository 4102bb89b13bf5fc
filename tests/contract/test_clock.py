"""One contract for the clock port: the system clock and the simulated one."""

from __future__ import annotations

import asyncio
from datetime import UTC, timedelta

import pytest

from shared.adapters.clock import SimulatedClock, SystemClock
from shared.ports.clock import Clock
from tests.conftest import T0


class ClockContract:
    @pytest.fixture
    def clock(self) -> Clock:
        raise NotImplementedError

    def advance(self, clock: Clock, seconds: float) -> None:
        """Let ``seconds`` pass on ``clock`` (nothing to do for a real one)."""

    async def test_now_is_aware_utc(self, clock: Clock) -> None:
        assert clock.now().tzinfo is not None
        assert clock.now().utcoffset() == timedelta(0)

    async def test_time_never_goes_back(self, clock: Clock) -> None:
        first = clock.now()
        self.advance(clock, 0.01)
        assert clock.now() >= first

    async def test_a_sleep_of_no_time_returns_at_once(self, clock: Clock) -> None:
        await asyncio.wait_for(clock.sleep(0), timeout=1)
        await asyncio.wait_for(clock.sleep(-5), timeout=1)

    async def test_sleep_returns_once_the_time_has_passed(self, clock: Clock) -> None:
        before = clock.now()
        sleeper = asyncio.create_task(clock.sleep(0.01))
        await asyncio.sleep(0)
        self.advance(clock, 0.01)
        await asyncio.wait_for(sleeper, timeout=5)
        assert clock.now() - before >= timedelta(seconds=0.01)


class TestSystemClock(ClockContract):
    @pytest.fixture
    def clock(self) -> Clock:
        return SystemClock()


class TestSimulatedClock(ClockContract):
    @pytest.fixture
    def clock(self) -> Clock:
        return SimulatedClock(T0)

    def advance(self, clock: Clock, seconds: float) -> None:
        assert isinstance(clock, SimulatedClock)
        clock.advance(timedelta(seconds=seconds))

    async def test_a_sleeper_waits_for_simulated_time_not_real_time(self) -> None:
        clock = SimulatedClock(T0)
        sleeper = asyncio.create_task(clock.sleep(30 * 86400))
        await asyncio.sleep(0)  # let the sleeper start its sleep
        clock.advance(timedelta(days=29))
        await asyncio.sleep(0)
        assert not sleeper.done()
        clock.advance(timedelta(days=1))
        await asyncio.wait_for(sleeper, timeout=1)
        assert clock.now() == T0 + timedelta(days=30)

    def test_it_refuses_naive_times_and_going_back(self) -> None:
        with pytest.raises(ValueError, match="aware"):
            SimulatedClock(T0.replace(tzinfo=None))
        clock = SimulatedClock(T0)
        with pytest.raises(ValueError, match="backwards"):
            clock.set(T0 - timedelta(seconds=1))
        assert clock.now().tzinfo == UTC
