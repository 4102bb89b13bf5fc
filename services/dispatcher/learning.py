"""What the adaptive variant splits have learnt, for the dispatcher's walks.

An adaptive send step's shares follow its variants' conversions
(:func:`shared.domain.programmes.split_shares`, over the programme's rows read by the
campaign results store). They are read again at most every ``every`` on the service's
clock, per programme version: between two reads every walk sees the same posterior
state, so a buyer's variant is fixed by it, and a replica or a walk retried after a
crash draws with the same rule (the message key holds no variant: a step is still sent
at most once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.domain.programmes import Programme, split_shares
from shared.logging import get_logger
from shared.ports.clock import Clock
from shared.ports.reports import CampaignResultsStore

__all__ = ["SplitLearning"]

log = get_logger(__name__)


@dataclass
class SplitLearning:
    results: CampaignResultsStore
    clock: Clock
    every: timedelta = timedelta(minutes=5)
    _known: dict[tuple[str, int], tuple[datetime, dict[str, tuple[float, ...]]]] = field(
        default_factory=dict, init=False
    )

    async def splits(self, programme: Programme) -> dict[str, tuple[float, ...]]:
        """Per adaptive send step of ``programme``, its variants' shares now (none for a
        programme without one)."""
        if not any(step.adaptive is not None for step in programme.sends):
            return {}
        now, at = self.clock.now(), (programme.key, programme.version)
        known = self._known.get(at)
        if known is not None and now - known[0] < self.every:
            return known[1]
        shares = split_shares(programme, await self.results.programme_facts(programme.key))
        self._known[at] = (now, shares)
        log.info("adaptive split learnt", programme=programme.key, steps=len(shares))
        return shares
