"""Adaptive variant splits: Thompson sampling on the programme's goal, per send step.

Each variant's conversion rate has a Beta posterior, from a uniform prior and what the
step's buyers did: ``Beta(1 + converted, 1 + buyers - converted)``. Thompson sampling
gives a buyer the variant a draw from the posteriors names best, so each variant's
chance is the posterior probability that it is the best (:func:`chances_best`, worked
out by integration, not by sampling: the same state gives the same numbers in every
process). Here each buyer is placed by their own fixed draw (a hash of programme, step
and buyer) against those chances, so a buyer's variant is deterministic given the
posterior state, and the split is Thompson's in distribution.

Two rules bound it (:class:`Adaptive`):

- **exploration**: every variant keeps at least ``min_share`` of the buyers while no
  variant has won, so a variant unlucky early is still measured;
- **stop**: once every variant has ``min_buyers`` buyers and one is the best with a
  probability of at least ``win_at``, it has won; from then on every buyer gets it, and
  the report names it with that probability (a marketer may promote it: it becomes the
  only variant, as a new version).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats  # type: ignore[import-untyped]

__all__ = ["Adaptive", "Learning", "chances_best", "learn"]

_GRID = 4001
"""Points of the integration grid (spread over where the posteriors have their mass)."""
_SPREAD = 12.0
"""How many posterior standard deviations around each mean the grid covers."""


@dataclass(frozen=True)
class Adaptive:
    """An adaptive split's rules: the least share each variant keeps while exploring, the
    probability of being best at which a variant wins, and how many buyers each variant
    needs before one can."""

    min_share: float = 0.05
    win_at: float = 0.95
    min_buyers: int = 100


@dataclass(frozen=True)
class Learning:
    """An adaptive split's state: per variant (in the step's order) its buyers and
    conversions, the probability that it is the best, and the share of new buyers it
    gets now; the winner, once there is one."""

    names: tuple[str, ...]
    buyers: tuple[int, ...]
    converted: tuple[int, ...]
    best: tuple[float, ...]
    shares: tuple[float, ...]
    winner: str | None = None

    @property
    def winner_probability(self) -> float | None:
        return None if self.winner is None else self.best[self.names.index(self.winner)]


def chances_best(buyers: Sequence[int], converted: Sequence[int]) -> tuple[float, ...]:
    """For each variant, the posterior probability that its conversion rate is the
    highest: ``P(i best) = ∫ pdf_i(x) Π_{j≠i} cdf_j(x) dx`` over the Beta posteriors."""
    if len(buyers) != len(converted) or not buyers:
        raise ValueError("one count of buyers and of conversions per variant")
    if any(n < 0 or not 0 <= c <= n for n, c in zip(buyers, converted, strict=True)):
        raise ValueError("conversions are between 0 and the buyers")
    if len(buyers) == 1:
        return (1.0,)
    a = np.array([1 + c for c in converted], dtype=np.float64)
    b = np.array([1 + n - c for n, c in zip(buyers, converted, strict=True)], dtype=np.float64)
    mean = a / (a + b)
    sd = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    low = float(max(0.0, np.min(mean - _SPREAD * sd)))
    high = float(min(1.0, np.max(mean + _SPREAD * sd)))
    x = np.linspace(low, high, _GRID)
    pdf = stats.beta.pdf(x[None, :], a[:, None], b[:, None])
    cdf = stats.beta.cdf(x[None, :], a[:, None], b[:, None])
    found = []
    for i in range(len(a)):
        others = np.prod(np.delete(cdf, i, axis=0), axis=0)
        found.append(float(np.trapezoid(pdf[i] * others, x)))
    total = sum(found)
    return tuple(p / total for p in found) if total > 0 else tuple(1 / len(a) for _ in a)


def learn(names: Sequence[str], counts: Mapping[str, tuple[int, int]], rules: Adaptive) -> Learning:
    """The split of the variants ``names`` given ``counts`` (per variant: buyers, of them
    converted; a variant not counted has none) under ``rules``."""
    buyers = tuple(counts.get(n, (0, 0))[0] for n in names)
    converted = tuple(counts.get(n, (0, 0))[1] for n in names)
    best = chances_best(buyers, converted)
    top = int(np.argmax(best))
    if min(buyers) >= rules.min_buyers and best[top] >= rules.win_at:
        shares = tuple(1.0 if i == top else 0.0 for i in range(len(names)))
        return Learning(tuple(names), buyers, converted, best, shares, names[top])
    floor = min(rules.min_share, 1 / len(names))
    shares = tuple(floor + (1 - len(names) * floor) * p for p in best)
    return Learning(tuple(names), buyers, converted, best, shares)
