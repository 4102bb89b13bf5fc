"""The dispatcher's metrics: messages by outcome, messages not sent by reason, the queue of
scheduled sends.

On a registry of its own (building it twice, as tests do, never collides in
prometheus-client's global registry); the process that serves ``/metrics``
serves ``metrics.registry`` beside the others.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["DispatcherMetrics"]

SENT_STATUSES = frozenset({"sent", "failed", "rejected"})
"""Outcomes of a provider call; any other final status is a reason nothing was sent."""


class DispatcherMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.messages = Counter(
            "nudge_messages",
            "Messages handed to a provider, by campaign, channel and outcome "
            "(sent, failed, rejected)",
            ["campaign", "channel", "status"],
            registry=self.registry,
        )
        self.not_sent = Counter(
            "nudge_messages_not_sent",
            "Messages decided against or dropped, by campaign and reason "
            "(holdout, capped, sunset, unsubscribed, suppressed, converted, ...)",
            ["campaign", "reason"],
            registry=self.registry,
        )
        self.scheduled = Counter(
            "nudge_messages_scheduled",
            "Messages put in the scheduled-sends table, by campaign and reason "
            "(delay, quiet_hours, best_hour, capped_deferred)",
            ["campaign", "reason"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "nudge_scheduled_sends",
            "Sends waiting in the scheduled-sends table (in-flight guards included)",
            registry=self.registry,
        )
        self.queue_due = Gauge(
            "nudge_scheduled_sends_due",
            "Sends in the scheduled-sends table already due when the loop last looked",
            registry=self.registry,
        )

    def outcome(self, campaign: str, channel: str, status: str) -> None:
        """Count a message's outcome (a provider's answer, or why it was not sent)."""
        if status in SENT_STATUSES:
            self.messages.labels(campaign, channel, status).inc()
        else:
            self.not_sent.labels(campaign, status).inc()
