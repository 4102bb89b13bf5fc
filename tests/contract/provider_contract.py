"""What every HTTP provider does behind ``ResilientProvider``, whatever its API's shape.

Written once, run against the SMS (Twilio-shaped) and push (FCM-shaped)
adapters, each against its fake server on 127.0.0.1: the idempotency key
travels and the provider delivers once per key, failures worth retrying are
retried and rejections are not, the breaker opens, fails fast and closes
again, a hanging provider is cut at the configured timeout.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any, Generic, TypeVar

import pytest

from shared.adapters.providers.metrics import ProviderMetrics
from shared.adapters.providers.resilience import BreakerPolicy, ResilientProvider, RetryPolicy
from shared.errors import CircuitOpen, ProviderRejected, ProviderTimeout, ProviderUnavailable
from tests.conftest import T0
from tests.support.clocks import SleepRecordingClock
from tests.support.ports import free_port
from tests.support.providers import FakeProvider, running
from tests.support.waiting import eventually

M = TypeVar("M")

Build = Callable[..., ResilientProvider[Any]]

NO_WAIT = {"initial_backoff": 0.0, "max_backoff": 0.0, "jitter": 0.0}


class HttpProviderContract(Generic[M]):
    name = ""

    def new_fake(self) -> FakeProvider:
        raise NotImplementedError

    def adapter(
        self, fake: FakeProvider, *, timeout: float, url: str | None = None, connections: int = 16
    ) -> Any:
        raise NotImplementedError

    def message(self, key: str) -> M:
        raise NotImplementedError

    @pytest.fixture
    async def fake(self) -> AsyncIterator[FakeProvider]:
        async with running(self.new_fake()) as fake:
            yield fake

    @pytest.fixture
    def stepping_clock(self) -> SleepRecordingClock:
        return SleepRecordingClock(T0)

    @pytest.fixture
    async def build(
        self, fake: FakeProvider, stepping_clock: SleepRecordingClock
    ) -> AsyncIterator[Build]:
        """Builds the adapter behind a ``ResilientProvider`` with the given policies."""
        built: list[ResilientProvider[Any]] = []

        def build(
            *,
            attempts: int = 3,
            timeout: float = 5.0,
            total_seconds: float = 30.0,
            threshold: int = 5,
            cool_down: float = 30.0,
            url: str | None = None,
            connections: int = 16,
            **backoff: float,
        ) -> ResilientProvider[Any]:
            inner = self.adapter(fake, timeout=timeout, url=url, connections=connections)
            provider: ResilientProvider[Any] = ResilientProvider(
                inner,
                name=self.name,
                clock=stepping_clock,
                retry=RetryPolicy(
                    attempts=attempts,
                    call_timeout=timeout,
                    total_seconds=total_seconds,
                    **(backoff or NO_WAIT),
                ),
                breaker=BreakerPolicy(threshold=threshold, cool_down=cool_down),
                metrics=ProviderMetrics(),
            )
            built.append(provider)
            return provider

        yield build
        for provider in built:
            await provider.aclose()

    async def test_a_send_carries_the_idempotency_key_and_lands_once(
        self, fake: FakeProvider, build: Build
    ) -> None:
        receipt = await build().send(self.message("win-back-1"))
        assert fake.keys_seen() == ["win-back-1"]
        assert list(fake.delivered) == ["win-back-1"]
        assert receipt.provider_message_id

    async def test_sends_share_a_few_kept_alive_connections(
        self, fake: FakeProvider, build: Build
    ) -> None:
        provider = build(connections=3)
        for n in range(4):
            await provider.send(self.message(f"one-after-another-{n}"))
        assert len({seen.peer for seen in fake.requests}) == 1
        await asyncio.gather(*(provider.send(self.message(f"at-once-{n}")) for n in range(12)))
        assert len(fake.delivered) == 16
        assert len({seen.peer for seen in fake.requests}) <= 3

    async def test_the_same_message_sent_again_is_delivered_once(
        self, fake: FakeProvider, build: Build
    ) -> None:
        provider = build()
        first = await provider.send(self.message("win-back-1"))
        again = await provider.send(self.message("win-back-1"))
        assert fake.keys_seen() == ["win-back-1", "win-back-1"]
        assert fake.deliveries("win-back-1") == 1
        assert again == first

    async def test_server_errors_are_retried_until_the_message_is_delivered_once(
        self, fake: FakeProvider, build: Build
    ) -> None:
        fake.fail(2, 503)
        provider = build(attempts=3)
        await provider.send(self.message("win-back-1"))
        assert fake.keys_seen() == ["win-back-1"] * 3
        assert fake.deliveries("win-back-1") == 1
        assert provider.metrics.retries.labels(self.name)._value.get() == 2

    async def test_a_lost_answer_is_retried_and_the_message_still_delivered_once(
        self, fake: FakeProvider, build: Build
    ) -> None:
        fake.lose_answers(1)  # delivered, then a 500: the retry must not send it twice
        await build().send(self.message("win-back-1"))
        assert fake.keys_seen() == ["win-back-1"] * 2
        assert list(fake.delivered) == ["win-back-1"]

    async def test_retries_give_up_after_the_configured_attempts(
        self, fake: FakeProvider, build: Build
    ) -> None:
        fake.fail(10, 500)
        with pytest.raises(ProviderUnavailable):
            await build(attempts=3).send(self.message("win-back-1"))
        assert len(fake.requests) == 3
        assert fake.delivered == {}

    async def test_retries_back_off_exponentially_on_the_clock(
        self, fake: FakeProvider, build: Build, stepping_clock: SleepRecordingClock
    ) -> None:
        fake.fail(3, 502)
        provider = build(attempts=4, initial_backoff=1.0, max_backoff=3.0, jitter=0.0)
        await provider.send(self.message("win-back-1"))
        assert stepping_clock.slept == [1.0, 2.0, 3.0]

    async def test_a_throttled_send_waits_as_long_as_the_provider_asks(
        self, fake: FakeProvider, build: Build, stepping_clock: SleepRecordingClock
    ) -> None:
        fake.fail(1, 429, retry_after="7")
        await build().send(self.message("win-back-1"))
        assert stepping_clock.slept == [7.0]
        assert fake.deliveries("win-back-1") == 1

    async def test_a_retry_after_date_is_read_against_the_provider_s_own_clock(
        self, fake: FakeProvider, build: Build, stepping_clock: SleepRecordingClock
    ) -> None:
        # uvicorn dates its answers with the real time; ask for ten seconds after that.
        fake.fail(1, 503, retry_after=email.utils.formatdate(time.time() + 10, usegmt=True))
        await build().send(self.message("win-back-1"))
        (waited,) = stepping_clock.slept
        assert 8 <= waited <= 11

    async def test_a_wait_past_the_total_time_is_not_taken(
        self, fake: FakeProvider, build: Build, stepping_clock: SleepRecordingClock
    ) -> None:
        fake.fail(1, 429, retry_after="120")
        with pytest.raises(ProviderUnavailable):
            await build(total_seconds=30).send(self.message("win-back-1"))
        assert stepping_clock.slept == []
        assert len(fake.requests) == 1

    async def test_a_rejection_is_not_retried(self, fake: FakeProvider, build: Build) -> None:
        fake.reject()
        with pytest.raises(ProviderRejected):
            await build(attempts=3).send(self.message("win-back-1"))
        assert len(fake.requests) == 1
        assert fake.delivered == {}

    async def test_refused_credentials_are_worth_retrying_not_a_bad_address(
        self, fake: FakeProvider, build: Build
    ) -> None:
        fake.credential = "rotated"
        with pytest.raises(ProviderUnavailable) as failed:
            await build(attempts=1).send(self.message("win-back-1"))
        assert "401" in str(failed.value)

    async def test_an_unreachable_provider_is_worth_retrying(self, build: Build) -> None:
        provider = build(attempts=2, url=f"http://127.0.0.1:{free_port()}")
        with pytest.raises(ProviderUnavailable) as failed:
            await provider.send(self.message("win-back-1"))
        assert not isinstance(failed.value, CircuitOpen)

    async def test_the_breaker_opens_after_consecutive_failures_and_fails_fast(
        self, fake: FakeProvider, build: Build, stepping_clock: SleepRecordingClock
    ) -> None:
        fake.fail(100, 500)
        provider = build(attempts=1, threshold=3, cool_down=30)
        for n in range(3):
            with pytest.raises(ProviderUnavailable):
                await provider.send(self.message(f"m-{n}"))
        assert provider.breaker.state == "open"
        before = stepping_clock.now()
        for n in range(5):
            with pytest.raises(CircuitOpen):
                await provider.send(self.message(f"fast-{n}"))
        assert len(fake.requests) == 3  # the provider was not called while open
        assert stepping_clock.now() == before  # nor waited for
        failures = provider.metrics.failures
        assert failures.labels(self.name, "circuit_open")._value.get() == 5
        assert provider.metrics.breaker_state.labels(self.name)._value.get() == 2

    async def test_a_successful_trial_after_the_cool_down_closes_the_breaker(
        self, fake: FakeProvider, build: Build, stepping_clock: SleepRecordingClock
    ) -> None:
        fake.fail(3, 500)
        provider = build(attempts=1, threshold=3, cool_down=30)
        for n in range(3):
            with pytest.raises(ProviderUnavailable):
                await provider.send(self.message(f"m-{n}"))
        stepping_clock.advance(timedelta(seconds=29))
        with pytest.raises(CircuitOpen):
            await provider.send(self.message("too-early"))
        stepping_clock.advance(timedelta(seconds=1))
        assert provider.breaker.state == "half_open"
        await provider.send(self.message("trial"))
        assert provider.breaker.state == "closed"
        await provider.send(self.message("after"))
        assert list(fake.delivered) == ["trial", "after"]

    async def test_a_failed_trial_opens_the_breaker_for_another_cool_down(
        self, fake: FakeProvider, build: Build, stepping_clock: SleepRecordingClock
    ) -> None:
        fake.fail(4, 500)
        provider = build(attempts=1, threshold=3, cool_down=30)
        for n in range(3):
            with pytest.raises(ProviderUnavailable):
                await provider.send(self.message(f"m-{n}"))
        stepping_clock.advance(timedelta(seconds=30))
        with pytest.raises(ProviderUnavailable):
            await provider.send(self.message("trial"))
        assert provider.breaker.state == "open"
        with pytest.raises(CircuitOpen):
            await provider.send(self.message("fast"))
        stepping_clock.advance(timedelta(seconds=30))
        await provider.send(self.message("second-trial"))
        assert provider.breaker.state == "closed"
        assert len(fake.requests) == 5

    async def test_retries_stop_once_the_breaker_opens(
        self, fake: FakeProvider, build: Build
    ) -> None:
        fake.fail(100, 500)
        with pytest.raises(CircuitOpen):
            await build(attempts=5, threshold=2).send(self.message("win-back-1"))
        assert len(fake.requests) == 2

    async def test_a_hanging_provider_times_out_within_the_configured_timeout(
        self, fake: FakeProvider, build: Build
    ) -> None:
        fake.hang()
        provider = build(attempts=1, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(ProviderTimeout):
            await provider.send(self.message("win-back-1"))
        took = time.monotonic() - started
        assert 0.4 <= took < 1.5, took
        assert fake.keys_seen() == ["win-back-1"]
        assert provider.metrics.failures.labels(self.name, "timeout")._value.get() == 1

    async def test_half_open_lets_one_trial_through_at_a_time(
        self, fake: FakeProvider, build: Build, stepping_clock: SleepRecordingClock
    ) -> None:
        fake.fail(2, 500)
        provider = build(attempts=1, threshold=2, cool_down=30)
        for n in range(2):
            with pytest.raises(ProviderUnavailable):
                await provider.send(self.message(f"m-{n}"))
        stepping_clock.advance(timedelta(seconds=30))
        fake.hang()
        trial = asyncio.ensure_future(provider.send(self.message("trial")))

        async def trial_is_held() -> bool:
            return fake.keys_seen()[-1:] == ["trial"]

        await eventually(trial_is_held, what="the trial call to reach the provider")
        with pytest.raises(CircuitOpen, match="trial"):
            await provider.send(self.message("while-trying"))
        fake.release()
        await trial
        assert provider.breaker.state == "closed"
        assert "while-trying" not in fake.keys_seen()

    async def test_rejections_do_not_open_the_breaker(
        self, fake: FakeProvider, build: Build
    ) -> None:
        fake.reject()
        provider = build(attempts=1, threshold=2)
        for n in range(4):
            with pytest.raises(ProviderRejected):
                await provider.send(self.message(f"bad-{n}"))
        assert provider.breaker.state == "closed"
        assert len(fake.requests) == 4
