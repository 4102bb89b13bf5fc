"""Several Prometheus registries served as one.

Each part of a process keeps its metrics on a registry of its own (so building it
twice, as tests do, never collides): ingest's requests, the dispatcher's messages
and due table, the providers' latency and breakers. ``/metrics`` and the
standalone services' metrics port serve them together.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

__all__ = ["combined", "serve_metrics"]


class _Together(Collector):
    def __init__(self, registries: Sequence[CollectorRegistry]) -> None:
        self._registries = tuple(registries)

    def collect(self) -> Iterator[Metric]:
        for registry in self._registries:
            yield from registry.collect()


def combined(*registries: CollectorRegistry) -> CollectorRegistry:
    """One registry that reads every one of ``registries`` at each scrape."""
    together = CollectorRegistry(auto_describe=False)
    together.register(_Together(registries))
    return together


def serve_metrics(host: str, port: int, *registries: CollectorRegistry) -> None:
    """Serve ``registries`` at ``http://host:port/metrics`` from a daemon thread."""
    start_http_server(port, addr=host, registry=combined(*registries))
