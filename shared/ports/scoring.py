"""What the base-wide scoring job reads: every buyer's order history, summed up.

The job (``services/segmenter/scoring.py``) reads the whole base through this port,
a page of :class:`~shared.domain.scoring.BuyerFacts` at a time (:class:`BuyerPages`),
scores it (RFM, BG/NBD, Gamma-Gamma, CLV: ``shared/domain/scoring.py``) and writes
the scores back through the segmenter's units of work, so segments that read them
move like after any event.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.domain.scoring import BuyerFacts
from shared.ports.buyers import BuyerPages

__all__ = ["ScoringBase", "ScoringRecord"]


@dataclass(frozen=True)
class ScoringRecord:
    """How one run of the scoring job scored the base: what the console says of it."""

    scored_at: datetime
    """The moment the base was scored at (the clock's, or the ``--as-of`` asked for)."""
    recorded_at: datetime
    """When the run ended, by the clock."""
    buyers: int
    scored: int
    """Buyers with at least one order: those with scores."""
    purchase_model: str | None
    spend_model: str | None
    fallbacks: tuple[str, ...]
    """The models that fell back to the empirical ones (``purchases``, ``spend``)."""
    notes: tuple[str, ...]
    """Why, in words about the base: no buyer is named in them."""


class ScoringBase(BuyerPages[BuyerFacts], Protocol):
    """Each buyer's order totals (:meth:`~BuyerPages.page`), and who may score now."""

    async def last_scored_at(self) -> datetime | None:
        """When the base was last scored (the latest ``scored_at``), or ``None``."""
        ...

    async def record_run(self, run: ScoringRecord) -> None:
        """Keep how a run scored the base (committed at once)."""
        ...

    async def last_run(self) -> ScoringRecord | None:
        """The latest run recorded, or ``None`` before the first."""
        ...

    def exclusive(self) -> AbstractAsyncContextManager[bool]:
        """Whether this process may score the base now: ``True`` for exactly one holder
        at a time across every segmenter replica, until the context ends."""
        ...
