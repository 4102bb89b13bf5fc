"""Buyers in id order, a page at a time: the one way to read the whole base.

A reader of every buyer (a segment's recompute, the scoring job, the export) asks
for the page after the last id it holds (keyset paging), so a page costs the same
however far it has come, and the base is never held in memory by the port. Read
only, outside any unit of work: a buyer who changes meanwhile is read as they are
when their page is read.

The ports that read the base this way say what a page holds by extending
:class:`BuyerPages`: whole profiles (``Definitions.buyers``), order facts
(:class:`~shared.ports.scoring.ScoringBase`), profiles with their identifiers and
segments (:class:`~shared.ports.exports.ProfileExport`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

__all__ = ["BuyerPages"]

T_co = TypeVar("T_co", covariant=True)


class BuyerPages(Protocol[T_co]):
    async def page(self, *, after: str | None, limit: int) -> Sequence[T_co]:
        """Up to ``limit`` buyers whose id sorts after ``after`` (from the first when
        ``None``), in id order; empty past the last. Profiles merged into another buyer
        are left out: their orders and identifiers are the survivor's now."""
        ...
