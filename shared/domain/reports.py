"""What a campaign earned against its holdout: conversion, revenue per buyer, uplift, verdict.

Pure statistics over plain counts and per-buyer revenue arrays (docs/reports.md has
the formulas):

- a conversion rate's interval is Wilson's score interval;
- the absolute uplift (treatment rate minus holdout rate) is Newcombe's hybrid
  score interval (his method 10), built from the two Wilson intervals;
- the relative uplift (treatment rate over holdout rate, minus one) is the Katz
  log risk-ratio interval;
- the uplift in revenue per buyer is Welch's t interval (unequal variances) over
  every buyer of each group, those who spent nothing included;
- incremental revenue is that uplift times the treatment group's size.

A campaign that holds no one out (a holdout share of 0) has no control group: its
report gives the treatment's own figures, and no uplift, interval or verdict of
significance, since there is nothing to compare with.

Everything is intention to treat: a buyer of the treatment group counts whether
or not a message reached them, so the comparison with the holdout stays fair.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise
from typing import Final

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats  # type: ignore[import-untyped]

__all__ = [
    "MIN_CONVERSIONS",
    "MIN_GROUP_SIZE",
    "CampaignReport",
    "Estimate",
    "Funnel",
    "Verdict",
    "campaign_report",
    "newcombe_difference",
    "relative_uplift",
    "verdict",
    "welch_difference",
    "wilson_interval",
]

MIN_GROUP_SIZE: Final = 30
"""Fewer buyers than this in the treatment or the holdout: too few to judge."""
MIN_CONVERSIONS: Final = 5
"""Fewer conversions than this in both groups together: too few to judge."""


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError("the confidence level is between 0 and 1, e.g. 0.95")
    return float(stats.norm.ppf(0.5 + confidence / 2))


def _check_proportion(successes: int, trials: int) -> None:
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"{successes} successes out of {trials} trials is not a proportion")


@dataclass(frozen=True)
class Estimate:
    """A value with its confidence interval (``low`` <= ``value`` <= ``high``)."""

    value: float
    low: float
    high: float


def wilson_interval(successes: int, trials: int, *, confidence: float = 0.95) -> Estimate | None:
    """The rate ``successes / trials`` with Wilson's score interval; ``None`` with no trial."""
    _check_proportion(successes, trials)
    if trials == 0:
        return None
    z = _z(confidence)
    p = successes / trials
    z2n = z * z / trials
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / trials + z2n / (4 * trials))
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half))


def newcombe_difference(
    successes_a: int,
    trials_a: int,
    successes_b: int,
    trials_b: int,
    *,
    confidence: float = 0.95,
) -> Estimate | None:
    """Rate a minus rate b, with Newcombe's hybrid score interval (method 10, 1998).

    ``None`` when either group is empty.
    """
    a = wilson_interval(successes_a, trials_a, confidence=confidence)
    b = wilson_interval(successes_b, trials_b, confidence=confidence)
    if a is None or b is None:
        return None
    difference = a.value - b.value
    low = difference - math.hypot(a.value - a.low, b.high - b.value)
    high = difference + math.hypot(a.high - a.value, b.value - b.low)
    return Estimate(difference, low, high)


def relative_uplift(
    successes_a: int,
    trials_a: int,
    successes_b: int,
    trials_b: int,
    *,
    confidence: float = 0.95,
) -> Estimate | None:
    """Rate a over rate b, minus one (+0.25 reads "25% more"), with Katz's log interval.

    The interval is exp(ln RR +- z * sqrt(1/a - 1/n_a + 1/b - 1/n_b)) - 1. ``None``
    when either group is empty or has no success at all: then the ratio says nothing.
    """
    _check_proportion(successes_a, trials_a)
    _check_proportion(successes_b, trials_b)
    if successes_a == 0 or successes_b == 0:
        return None
    z = _z(confidence)
    ratio = (successes_a / trials_a) / (successes_b / trials_b)
    se = math.sqrt(1 / successes_a - 1 / trials_a + 1 / successes_b - 1 / trials_b)
    log_ratio = math.log(ratio)
    return Estimate(ratio - 1, math.exp(log_ratio - z * se) - 1, math.exp(log_ratio + z * se) - 1)


def welch_difference(a: ArrayLike, b: ArrayLike, *, confidence: float = 0.95) -> Estimate | None:
    """Mean of ``a`` minus mean of ``b``, with Welch's t interval (variances not assumed equal).

    ``None`` when a group has fewer than two values. Two groups with no spread at
    all give an interval of width zero.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.size < 2 or y.size < 2:
        return None
    difference = float(x.mean() - y.mean())
    va = float(x.var(ddof=1)) / x.size
    vb = float(y.var(ddof=1)) / y.size
    se = math.sqrt(va + vb)
    if se == 0:
        return Estimate(difference, difference, difference)
    df = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
    t = float(stats.t.ppf(0.5 + confidence / 2, df))
    return Estimate(difference, difference - t * se, difference + t * se)


class Verdict(StrEnum):
    """What the marketer reads first, in plain words."""

    TREATMENT_AHEAD = "treatment ahead, significant at {level}%"
    HOLDOUT_AHEAD = "holdout ahead, significant at {level}%"
    NOT_YET_SIGNIFICANT = "not yet significant"
    TOO_FEW_BUYERS = "too few buyers"
    NO_CONTROL_GROUP = "no control group"

    def words(self, confidence: float = 0.95) -> str:
        return self.value.format(level=f"{confidence * 100:g}")


def verdict(uplift: Estimate | None, *, enough_buyers: bool) -> Verdict:
    """Treatment or holdout ahead when the uplift's interval excludes zero; else not yet."""
    if not enough_buyers or uplift is None:
        return Verdict.TOO_FEW_BUYERS
    if uplift.low > 0:
        return Verdict.TREATMENT_AHEAD
    if uplift.high < 0:
        return Verdict.HOLDOUT_AHEAD
    return Verdict.NOT_YET_SIGNIFICANT


@dataclass(frozen=True)
class Funnel:
    """The treatment group's way from audience to purchase (counts of buyers)."""

    audience: int
    sent: int
    delivered: int
    opened: int
    clicked: int
    converted: int

    def __post_init__(self) -> None:
        steps = (self.audience, self.sent, self.delivered, self.opened, self.clicked)
        if any(n < 0 for n in (*steps, self.converted)):
            raise ValueError("funnel counts are never negative")
        if any(later > earlier for earlier, later in pairwise(steps)):
            raise ValueError("each funnel step counts at most the buyers of the step before")
        if self.converted > self.audience:
            raise ValueError("more buyers converted than the audience holds")


@dataclass(frozen=True)
class CampaignReport:
    """Treatment against holdout for one campaign; ``None`` where a figure cannot be had."""

    funnel: Funnel
    holdout_size: int
    holdout_converted: int
    confidence: float
    treatment_conversion: Estimate | None
    holdout_conversion: Estimate | None
    conversion_uplift: Estimate | None
    """Treatment rate minus holdout rate (Newcombe)."""
    relative_uplift: Estimate | None
    """Treatment rate over holdout rate, minus one (Katz)."""
    treatment_revenue_per_buyer: float | None
    holdout_revenue_per_buyer: float | None
    revenue_per_buyer_uplift: Estimate | None
    """Treatment mean minus holdout mean, per buyer (Welch)."""
    incremental_revenue: Estimate | None
    """The revenue per buyer uplift times the treatment group's size."""
    verdict: Verdict
    """On conversion, the campaign's goal."""
    revenue_verdict: Verdict

    @property
    def verdict_words(self) -> str:
        return self.verdict.words(self.confidence)


def _per_buyer(revenues: ArrayLike, group_size: int, group: str) -> np.ndarray:
    values = np.asarray(revenues, dtype=np.float64).ravel()
    if values.size > group_size:
        raise ValueError(f"{values.size} revenues for a {group} of {group_size} buyers")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"the {group}'s revenues hold a value that is not a number")
    return np.concatenate([values, np.zeros(group_size - values.size)])


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def campaign_report(
    funnel: Funnel,
    *,
    holdout_size: int,
    holdout_converted: int,
    treatment_revenues: ArrayLike | Sequence[float] = (),
    holdout_revenues: ArrayLike | Sequence[float] = (),
    confidence: float = 0.95,
    holdout_share: float | None = None,
) -> CampaignReport:
    """The report of a campaign from its counts and its buyers' revenues.

    ``treatment_revenues`` and ``holdout_revenues`` hold what each buyer of the group
    spent in the attribution window; buyers not listed spent nothing (so a list of the
    buyers who bought is enough). The treatment group is ``funnel.audience``. A campaign
    whose ``holdout_share`` is 0 and that holds no buyer out has no control group.
    """
    if holdout_size < 0 or not 0 <= holdout_converted <= holdout_size:
        raise ValueError(f"{holdout_converted} of a holdout of {holdout_size} is not a proportion")
    treated = _per_buyer(treatment_revenues, funnel.audience, "treatment group")
    held = _per_buyer(holdout_revenues, holdout_size, "holdout")
    if holdout_share == 0 and holdout_size == 0:
        return CampaignReport(
            funnel=funnel,
            holdout_size=0,
            holdout_converted=0,
            confidence=confidence,
            treatment_conversion=wilson_interval(
                funnel.converted, funnel.audience, confidence=confidence
            ),
            holdout_conversion=None,
            conversion_uplift=None,
            relative_uplift=None,
            treatment_revenue_per_buyer=_mean(treated),
            holdout_revenue_per_buyer=None,
            revenue_per_buyer_uplift=None,
            incremental_revenue=None,
            verdict=Verdict.NO_CONTROL_GROUP,
            revenue_verdict=Verdict.NO_CONTROL_GROUP,
        )
    uplift = newcombe_difference(
        funnel.converted, funnel.audience, holdout_converted, holdout_size, confidence=confidence
    )
    revenue_uplift = welch_difference(treated, held, confidence=confidence)
    enough_buyers = (
        min(funnel.audience, holdout_size) >= MIN_GROUP_SIZE
        and funnel.converted + holdout_converted >= MIN_CONVERSIONS
    )
    incremental = (
        None
        if revenue_uplift is None
        else Estimate(
            revenue_uplift.value * funnel.audience,
            revenue_uplift.low * funnel.audience,
            revenue_uplift.high * funnel.audience,
        )
    )
    return CampaignReport(
        funnel=funnel,
        holdout_size=holdout_size,
        holdout_converted=holdout_converted,
        confidence=confidence,
        treatment_conversion=wilson_interval(
            funnel.converted, funnel.audience, confidence=confidence
        ),
        holdout_conversion=wilson_interval(holdout_converted, holdout_size, confidence=confidence),
        conversion_uplift=uplift,
        relative_uplift=relative_uplift(
            funnel.converted,
            funnel.audience,
            holdout_converted,
            holdout_size,
            confidence=confidence,
        ),
        treatment_revenue_per_buyer=_mean(treated),
        holdout_revenue_per_buyer=_mean(held),
        revenue_per_buyer_uplift=revenue_uplift,
        incremental_revenue=incremental,
        verdict=verdict(uplift, enough_buyers=enough_buyers),
        revenue_verdict=verdict(revenue_uplift, enough_buyers=enough_buyers),
    )
