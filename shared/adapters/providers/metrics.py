"""Provider metrics: how long each call takes, how calls fail, what each breaker says.

One :class:`ProviderMetrics` per process, shared by all its providers (each
series is labelled by provider), on a registry of its own by default: building
it twice, as tests do, never collides in prometheus-client's global registry.
The service that exposes ``/metrics`` serves ``metrics.registry``.
"""

from __future__ import annotations

from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["BREAKER_STATES", "BreakerState", "FailureKind", "ProviderMetrics"]

BreakerState = Literal["closed", "half_open", "open"]
BREAKER_STATES: dict[BreakerState, int] = {"closed": 0, "half_open": 1, "open": 2}
"""The breaker gauge's values."""

FailureKind = Literal["unavailable", "timeout", "rejected", "circuit_open"]


class ProviderMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.call_seconds = Histogram(
            "nudge_provider_call_seconds",
            "Time one provider call took, whatever its outcome",
            ["provider"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.sent = Counter(
            "nudge_provider_sent",
            "Messages a provider accepted",
            ["provider"],
            registry=self.registry,
        )
        self.failures = Counter(
            "nudge_provider_failures",
            "Failed provider calls, by kind: unavailable, timeout, rejected, circuit_open",
            ["provider", "kind"],
            registry=self.registry,
        )
        self.retries = Counter(
            "nudge_provider_retries",
            "Calls made again after a failure worth retrying",
            ["provider"],
            registry=self.registry,
        )
        self.breaker_state = Gauge(
            "nudge_provider_breaker_state",
            "The provider's circuit breaker: 0 closed, 1 half-open, 2 open",
            ["provider"],
            registry=self.registry,
        )

    def failed(self, provider: str, kind: FailureKind) -> None:
        self.failures.labels(provider, kind).inc()

    def breaker(self, provider: str, state: BreakerState) -> None:
        self.breaker_state.labels(provider).set(BREAKER_STATES[state])
