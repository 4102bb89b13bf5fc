"""A token bucket per API key, in the memory of one process."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["RateLimiter"]

_MAX_KEYS = 100_000
"""Buckets kept before the full ones are forgotten (keys may be anyone's addresses)."""


class RateLimiter:
    """``rate`` requests a second per key, with bursts of up to ``burst`` requests.

    Each process counts on its own: N ingest replicas let a key make N times the rate.
    """

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("the rate must be positive and the burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        """key id to (tokens left, when they were counted)."""

    def _tokens(self, key: str, now: float) -> float:
        tokens, counted = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - counted) * self.rate)

    def waiting(self, key: str) -> float:
        """The seconds until ``key`` may make a request (0: now), taking nothing."""
        tokens = self._tokens(key, self._clock())
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def drain(self, key: str) -> None:
        """Empty ``key``'s bucket: its next request waits a full ``1 / rate`` seconds."""
        self._buckets[key] = (0.0, self._clock())

    def take(self, key: str) -> float:
        """Take one request from ``key``'s bucket: 0 when it may go, else the seconds to wait."""
        now = self._clock()
        if len(self._buckets) >= _MAX_KEYS and key not in self._buckets:
            self._forget_full(now)
        tokens = self._tokens(key, now)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that refilled: they read the same when they are missing."""
        self._buckets = {
            key: (tokens, counted)
            for key, (tokens, counted) in self._buckets.items()
            if tokens + (now - counted) * self.rate < self.burst
        }
