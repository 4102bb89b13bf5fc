"""Retries, a timeout per call and a circuit breaker around any provider.

:class:`ResilientProvider` wraps an email, SMS or push provider and is one
itself. Each call to the provider:

1. goes through the provider's :class:`CircuitBreaker`: after ``threshold``
   consecutive failures worth retrying it opens, and calls fail at once with
   :class:`~shared.errors.CircuitOpen` for ``cool_down`` seconds; then one
   trial call goes through (half-open): success closes it, failure opens it
   again. A dead provider costs nothing but an exception, and the other
   channels, each with its own breaker, never wait for it;
2. is cut after ``call_timeout`` seconds (:class:`~shared.errors.ProviderTimeout`);
3. is retried on :class:`~shared.errors.ProviderUnavailable` (never on a
   rejection, nor on an open circuit) with exponential backoff and jitter,
   waiting at least what the provider asked (``Retry-After``), for at most
   ``attempts`` calls and ``total_seconds`` on the clock from the first.

A retry sends the same message with the same idempotency key, so a provider
that dedupes (the SMS and push APIs) delivers it once even when the first
call did land and only its answer was lost.

Waits and the breaker's cool-down run on the injected clock (a simulated one
in tests); the call timeout is real time, as it guards a real socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_exponential_jitter,
)

from shared.adapters.providers.metrics import BreakerState, ProviderMetrics
from shared.errors import CircuitOpen, ProviderRejected, ProviderTimeout, ProviderUnavailable
from shared.logging import get_logger
from shared.ports.clock import Clock
from shared.ports.providers import Provider, SendReceipt

__all__ = ["BreakerPolicy", "CircuitBreaker", "ResilientProvider", "RetryPolicy"]

log = get_logger(__name__)

MessageT = TypeVar("MessageT")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    """Calls at most, the first included."""
    initial_backoff: float = 0.2
    """Seconds before the first retry; doubling after, up to ``max_backoff``."""
    max_backoff: float = 5.0
    jitter: float = 0.2
    """Up to this many seconds added at random to each wait."""
    total_seconds: float = 30.0
    """No retry whose wait would end later than this after the first call."""
    call_timeout: float = 10.0
    """Seconds one call may take before it counts as a timeout."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a retry policy needs at least one attempt")
        if self.call_timeout <= 0 or self.total_seconds < 0:
            raise ValueError("timeouts must be positive")


@dataclass(frozen=True)
class BreakerPolicy:
    threshold: int = 5
    """Consecutive failures worth retrying that open the breaker."""
    cool_down: float = 30.0
    """Seconds the breaker stays open before one trial call."""

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.cool_down < 0:
            raise ValueError("a breaker needs a threshold of at least 1 and a cool-down >= 0")


class CircuitBreaker:
    """Closed, open after ``threshold`` consecutive failures, half-open after ``cool_down``.

    Half-open lets exactly one trial call through; the others fail fast until it
    ends. Only :class:`ProviderUnavailable` counts as a failure: a rejection means
    the provider answered. A call cut short otherwise (cancelled, or an error of
    ours) gives no verdict, and a trial cut short frees the slot for the next call.
    """

    def __init__(
        self,
        name: str,
        clock: Clock,
        policy: BreakerPolicy | None = None,
        metrics: ProviderMetrics | None = None,
    ) -> None:
        self.name = name
        self.clock = clock
        self.policy = policy or BreakerPolicy()
        self.metrics = metrics
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at: datetime | None = None
        self._trial_running = False
        self._report()

    @property
    def state(self) -> BreakerState:
        """The state as of now: an open breaker whose cool-down is over reads half-open."""
        if self._state == "open" and self._cool_down_over():
            return "half_open"
        return self._state

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Admit one call (or raise :class:`CircuitOpen`), then record how it went."""
        trial = self._admit()
        try:
            yield
        except ProviderUnavailable:
            self._failed(trial)
            raise
        except ProviderRejected:
            self._succeeded()
            raise
        except BaseException:
            if trial:
                self._trial_running = False
            raise
        self._succeeded()

    def _admit(self) -> bool:
        """True when the call is the half-open trial."""
        if self._state == "closed":
            return False
        if self._state == "open":
            if not self._cool_down_over():
                raise CircuitOpen(f"{self.name}: circuit open, {self._remaining():.1f}s left")
            self._move("half_open")
        if self._trial_running:
            raise CircuitOpen(f"{self.name}: circuit half-open, a trial call is running")
        self._trial_running = True
        return True

    def _failed(self, trial: bool) -> None:
        self._failures += 1
        if trial:
            self._trial_running = False
        if trial or (self._state == "closed" and self._failures >= self.policy.threshold):
            self._opened_at = self.clock.now()
            self._move("open")

    def _succeeded(self) -> None:
        self._failures = 0
        self._trial_running = False
        if self._state != "closed":
            self._move("closed")

    def _cool_down_over(self) -> bool:
        return self._remaining() <= 0

    def _remaining(self) -> float:
        assert self._opened_at is not None
        until = self._opened_at + timedelta(seconds=self.policy.cool_down)
        return (until - self.clock.now()).total_seconds()

    def _move(self, state: BreakerState) -> None:
        log.warning("provider circuit breaker", provider=self.name, state=state)
        self._state = state
        self._report()

    def _report(self) -> None:
        if self.metrics is not None:
            self.metrics.breaker(self.name, self._state)


class ResilientProvider(Generic[MessageT]):
    """``inner`` with retries, a call timeout and a breaker; the same port as ``inner``."""

    def __init__(
        self,
        inner: Provider[MessageT],
        *,
        name: str,
        clock: Clock,
        retry: RetryPolicy | None = None,
        breaker: BreakerPolicy | None = None,
        metrics: ProviderMetrics | None = None,
    ) -> None:
        self.inner = inner
        self.name = name
        self.clock = clock
        self.retry = retry or RetryPolicy()
        self.metrics = metrics or ProviderMetrics()
        self.breaker = CircuitBreaker(name, clock, breaker, self.metrics)

    async def aclose(self) -> None:
        """Close the inner provider's connections, if it keeps any."""
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()

    async def send(self, message: MessageT) -> SendReceipt:
        started = self.clock.now()
        policy = self.retry
        backoff = wait_exponential_jitter(
            multiplier=policy.initial_backoff, max=policy.max_backoff, jitter=policy.jitter
        )

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            asked = getattr(error, "retry_after", None) or 0.0
            return max(backoff(state), asked)

        def give_up(state: RetryCallState) -> bool:
            if state.attempt_number >= policy.attempts:
                return True
            spent = (self.clock.now() - started).total_seconds()
            return spent + state.upcoming_sleep > policy.total_seconds

        def count_retry(state: RetryCallState) -> None:
            self.metrics.retries.labels(self.name).inc()

        receipt: SendReceipt | None = None
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_worth_retrying),
            stop=give_up,
            wait=wait,
            sleep=self.clock.sleep,
            before_sleep=count_retry,
            reraise=True,
        ):
            with attempt:
                receipt = await self._call(message)
        assert receipt is not None
        return receipt

    async def _call(self, message: MessageT) -> SendReceipt:
        try:
            with self.breaker.guard():
                receipt = await self._timed(message)
        except CircuitOpen:
            self.metrics.failed(self.name, "circuit_open")
            raise
        except ProviderTimeout:
            self.metrics.failed(self.name, "timeout")
            raise
        except ProviderUnavailable:
            self.metrics.failed(self.name, "unavailable")
            raise
        except ProviderRejected:
            self.metrics.failed(self.name, "rejected")
            raise
        self.metrics.sent.labels(self.name).inc()
        return receipt

    async def _timed(self, message: MessageT) -> SendReceipt:
        """One call to the provider, cut after ``call_timeout`` and measured."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.retry.call_timeout):
                return await self.inner.send(message)
        except TimeoutError as exc:
            raise ProviderTimeout(
                f"{self.name}: no answer within {self.retry.call_timeout}s"
            ) from exc
        finally:
            self.metrics.call_seconds.labels(self.name).observe(time.perf_counter() - started)


def _worth_retrying(error: BaseException) -> bool:
    return isinstance(error, ProviderUnavailable) and not isinstance(error, CircuitOpen)
