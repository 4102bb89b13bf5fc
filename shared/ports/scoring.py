"""What the base-wide scoring job reads: every buyer's order history, summed up.

The job (``services/segmenter/scoring.py``) reads the whole base through this port,
scores it (RFM, BG/NBD, Gamma-Gamma, CLV: ``shared/domain/scoring.py``) and writes
the scores back through the segmenter's units of work, so segments that read them
move like after any event.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from shared.domain.scoring import BuyerFacts

__all__ = ["ScoringBase"]


class ScoringBase(Protocol):
    async def facts(self, *, after: str | None, limit: int) -> list[BuyerFacts]:
        """Up to ``limit`` buyers (merged profiles left out) in id order after ``after``."""
        ...

    async def last_scored_at(self) -> datetime | None:
        """When the base was last scored (the latest ``scored_at``), or ``None``."""
        ...

    def exclusive(self) -> AbstractAsyncContextManager[bool]:
        """Whether this process may score the base now: ``True`` for exactly one holder
        at a time across every segmenter replica, until the context ends."""
        ...
