"""What the base-wide scoring job reads: every buyer's order history, summed up.

The job (``services/segmenter/scoring.py``) reads the whole base through this port,
a page of :class:`~shared.domain.scoring.BuyerFacts` at a time (:class:`BuyerPages`),
scores it (RFM, BG/NBD, Gamma-Gamma, CLV: ``shared/domain/scoring.py``) and writes
the scores back through the segmenter's units of work, so segments that read them
move like after any event.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from shared.domain.scoring import BuyerFacts
from shared.ports.buyers import BuyerPages

__all__ = ["ScoringBase"]


class ScoringBase(BuyerPages[BuyerFacts], Protocol):
    """Each buyer's order totals (:meth:`~BuyerPages.page`), and who may score now."""

    async def last_scored_at(self) -> datetime | None:
        """When the base was last scored (the latest ``scored_at``), or ``None``."""
        ...

    def exclusive(self) -> AbstractAsyncContextManager[bool]:
        """Whether this process may score the base now: ``True`` for exactly one holder
        at a time across every segmenter replica, until the context ends."""
        ...
