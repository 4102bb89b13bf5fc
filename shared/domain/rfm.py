"""RFM: recency, frequency and monetary scores 1-5 from quintiles of the whole base.

What is scored, for a buyer with at least one order:

- **recency**: days since the last order; the more recent, the higher the score;
- **frequency**: the number of orders;
- **monetary**: net revenue (revenue less refunds) over the buyer's whole history,
  the total a buyer is worth so far, not the average check (an average check says
  how big a basket is, which a `stat: avg_check` rule already reads).

Each dimension is cut at the quintile boundaries of the base (:class:`RfmBoundaries`):
the boundary ``k`` (k = 1..4) is the value of the buyer at rank ``ceil(k * n / 5)``
when the base is sorted from worst to best, a value some buyer actually has (numpy's
``inverted_cdf`` quantile). A buyer's score is one plus the number of boundaries the
buyer is strictly better than. So equal values always get equal scores (ties are
decided by the value alone, never by the order of the input), a base of distinct
values splits into five equal fifths, and a value shared by many buyers (most
buyers have one order) gives all of them the lowest score their block reaches.
The boundaries are kept, so a buyer who ordered since the base was scored can be
scored against them live.

The named segments come from the widely published R-vs-FM grid, with FM the mean of
F and M rounded half up; see ``docs/predictions.md`` for the picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "RFM_SEGMENTS",
    "BuyerSummary",
    "RfmBoundaries",
    "RfmScore",
    "rfm_boundaries",
    "rfm_segment",
    "rfm_segment_codes",
    "score_rfm",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

RFM_SEGMENTS: Final[tuple[str, ...]] = (
    "champions",
    "loyal",
    "potential-loyalist",
    "new",
    "promising",
    "need-attention",
    "about-to-sleep",
    "at-risk",
    "cant-lose-them",
    "hibernating",
    "lost",
)
"""Every named RFM segment, best first: the names a rule may use in ``{rfm: name}``."""

_SEGMENT_GRID: Final[tuple[tuple[str, ...], ...]] = (
    # R = 1             R = 2             R = 3              R = 4                 R = 5
    ("lost", "hibernating", "about-to-sleep", "promising", "new"),  # FM = 1
    ("hibernating", "hibernating", "about-to-sleep", "potential-loyalist", "potential-loyalist"),
    ("at-risk", "at-risk", "need-attention", "potential-loyalist", "potential-loyalist"),
    ("at-risk", "at-risk", "loyal", "loyal", "champions"),  # FM = 4
    ("cant-lose-them", "cant-lose-them", "loyal", "loyal", "champions"),  # FM = 5
)
"""Segment by ``[FM - 1][R - 1]``: the picture in ``docs/predictions.md``, upside down."""

_GRID_CODES: Final = np.array(
    [[RFM_SEGMENTS.index(name) for name in row] for row in _SEGMENT_GRID], dtype=np.int8
)


@dataclass(frozen=True, slots=True)
class BuyerSummary:
    """What RFM reads of one buyer with at least one order."""

    recency_days: float
    """Days from the last order to the moment of scoring."""
    orders: int
    monetary: float
    """Net revenue: revenue less refunds, over the buyer's whole history."""


@dataclass(frozen=True, slots=True)
class RfmScore:
    """One buyer's scores, each 1 (worst fifth of the base) to 5 (best fifth)."""

    r: int
    f: int
    m: int

    @property
    def segment(self) -> str:
        """The named segment of these scores (one of :data:`RFM_SEGMENTS`)."""
        return rfm_segment(self.r, self.f, self.m)


@dataclass(frozen=True, slots=True)
class RfmBoundaries:
    """The four quintile boundaries of each dimension, worst to best.

    A buyer scores one plus the number of boundaries they beat strictly: fewer days
    than a recency boundary, more orders or more net revenue than the others.
    """

    recency_days: tuple[float, float, float, float]
    orders: tuple[float, float, float, float]
    monetary: tuple[float, float, float, float]

    def score(self, buyer: BuyerSummary) -> RfmScore:
        """Score one buyer against these boundaries."""
        return RfmScore(
            r=1 + sum(buyer.recency_days < bound for bound in self.recency_days),
            f=1 + sum(buyer.orders > bound for bound in self.orders),
            m=1 + sum(buyer.monetary > bound for bound in self.monetary),
        )

    def score_arrays(
        self, recency_days: FloatArray, orders: FloatArray, monetary: FloatArray
    ) -> tuple[IntArray, IntArray, IntArray]:
        """Score many buyers at once: the R, F and M arrays."""
        return (
            _count_beaten(-recency_days, -np.asarray(self.recency_days)),
            _count_beaten(orders, np.asarray(self.orders, dtype=np.float64)),
            _count_beaten(monetary, np.asarray(self.monetary, dtype=np.float64)),
        )


def rfm_boundaries(
    recency_days: FloatArray, orders: FloatArray, monetary: FloatArray
) -> RfmBoundaries:
    """The quintile boundaries of a base (arrays of its buyers with orders, aligned).

    Raises ``ValueError`` for an empty base: there are no quintiles of nobody.
    """
    if len(recency_days) == 0:
        raise ValueError("RFM needs at least one buyer with an order")
    fifths = np.array([0.2, 0.4, 0.6, 0.8])
    recency = -np.quantile(
        -np.asarray(recency_days, dtype=np.float64), fifths, method="inverted_cdf"
    )
    return RfmBoundaries(
        recency_days=_four(recency),
        orders=_four(np.quantile(np.asarray(orders, np.float64), fifths, method="inverted_cdf")),
        monetary=_four(
            np.quantile(np.asarray(monetary, np.float64), fifths, method="inverted_cdf")
        ),
    )


def score_rfm(buyers: Sequence[BuyerSummary]) -> list[RfmScore]:
    """Score every buyer of a base against the base's own quintiles."""
    recency = np.array([b.recency_days for b in buyers], dtype=np.float64)
    orders = np.array([b.orders for b in buyers], dtype=np.float64)
    monetary = np.array([b.monetary for b in buyers], dtype=np.float64)
    r, f, m = rfm_boundaries(recency, orders, monetary).score_arrays(recency, orders, monetary)
    return [RfmScore(int(ri), int(fi), int(mi)) for ri, fi, mi in zip(r, f, m, strict=True)]


def rfm_segment(r: int, f: int, m: int) -> str:
    """The named segment for one buyer's scores: R against FM, the mean of F and M."""
    for name, score in (("r", r), ("f", f), ("m", m)):
        if not 1 <= score <= 5:
            raise ValueError(f"RFM score {name} must be 1-5, got {score}")
    return _SEGMENT_GRID[(f + m + 1) // 2 - 1][r - 1]


def rfm_segment_codes(r: IntArray, f: IntArray, m: IntArray) -> npt.NDArray[np.int8]:
    """The segments of many buyers, as indexes into :data:`RFM_SEGMENTS`."""
    fm = (f + m + 1) // 2
    codes: npt.NDArray[np.int8] = _GRID_CODES[fm - 1, r - 1]
    return codes


def _count_beaten(values: FloatArray, bounds: FloatArray) -> IntArray:
    """One plus how many of the ascending ``bounds`` each value is strictly above."""
    return (np.searchsorted(bounds, values, side="left") + 1).astype(np.int64)


def _four(values: FloatArray) -> tuple[float, float, float, float]:
    first, second, third, fourth = (float(v) for v in values)
    return (first, second, third, fourth)
