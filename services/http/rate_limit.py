"""A token bucket per key (an API key, a client address, a username), in the memory of
one process."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["MAX_KEYS", "RateLimiter"]

MAX_KEYS = 100_000
"""Buckets kept by default (keys may be anyone's addresses): past it, the bucket used
longest ago is forgotten, and reads full if its key comes back."""


class RateLimiter:
    """``rate`` requests a second per key, with bursts of up to ``burst`` requests.

    Each process counts on its own: N ingest replicas let a key make N times the rate.
    At most ``max_keys`` buckets are kept, least recently used first out, so that a
    flood of new keys costs constant memory and constant time per request.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("the rate must be positive, the burst and the key cap at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        """key to (tokens left, when they were counted), the key used longest ago first."""

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, key: str, now: float) -> float:
        tokens, counted = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - counted) * self.rate)

    def _keep(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)

    def waiting(self, key: str) -> float:
        """The seconds until ``key`` may make a request (0: now), taking nothing."""
        tokens = self._tokens(key, self._clock())
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def drain(self, key: str) -> None:
        """Empty ``key``'s bucket: its next request waits a full ``1 / rate`` seconds."""
        self._keep(key, 0.0, self._clock())

    def give_back(self, key: str) -> None:
        """Return one request to ``key``'s bucket (never past the burst): it did not count."""
        now = self._clock()
        self._keep(key, min(float(self.burst), self._tokens(key, now) + 1), now)

    def take(self, key: str) -> float:
        """Take one request from ``key``'s bucket: 0 when it may go, else the seconds to wait."""
        now = self._clock()
        tokens = self._tokens(key, now)
        if tokens >= 1:
            self._keep(key, tokens - 1, now)
            return 0.0
        self._keep(key, tokens, now)
        return (1 - tokens) / self.rate
