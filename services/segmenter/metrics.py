"""The scoring job's metrics: runs by the purchase model used, fallbacks by model.

On a registry of its own (building it twice, as tests do, never collides in
prometheus-client's global registry); the segmenter serves ``metrics.registry``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

__all__ = ["ScoringMetrics"]


class ScoringMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.runs = Counter(
            "nudge_scoring_runs",
            "Base scoring runs finished, by the purchase model they scored orders with "
            "(BG/NBD, MBG/NBD, empirical, none for a base without orders)",
            ["purchase_model"],
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "nudge_scoring_fallback",
            "Scoring runs whose purchase or spend model fell back to its empirical model "
            "(a base too small to fit, a fit that did not converge or is degenerate)",
            ["model"],
            registry=self.registry,
        )
        # Every label seen from the first scrape on, at zero until it happens.
        for model in ("purchases", "spend"):
            self.fallbacks.labels(model)
