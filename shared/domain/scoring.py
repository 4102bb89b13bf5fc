"""Scoring a whole base: RFM, probability alive, expected orders and spend, CLV.

The scheduled job hands in every buyer's order facts and the moment of scoring;
out come the RFM scores and segment, the predictions and each buyer's CLV rank in
the base, plus the base's customer equity and the fitted models. The work is
columnar (numpy) and split into batches of ``policy.batch_size`` buyers, with a
progress callback after each, so a million buyers take seconds.

How buyers turn into model inputs (times in days, money as given):

- a buyer counts as having orders when ``orders_count >= 1`` and both order
  moments are known; the others get no scores at all (``None``);
- BG/NBD: ``x = orders_count - 1`` repeat orders, ``t_x`` = days from the first
  order to the last, ``T`` = days from the first order to now. Orders are counted
  as placed, so two orders on one day are two;
- Gamma-Gamma: the mean order value is net revenue over orders; the model is fitted
  on buyers with a repeat order and a positive mean (an average over one order
  says too little), and predicts for everyone with orders, a non-positive mean
  counting as zero (a fully refunded buyer is worth the base's prior, shrunk);
- RFM monetary is the net revenue.

When the base holds fewer than ``policy.min_repeat_buyers`` buyers with a repeat
order, or a model cannot be fitted or its fit is degenerate
(:func:`~shared.domain.predictions.degenerate_fit`), that model falls back to its
empirical one (a shrunk rate, a shrunk mean spend) and a note says why; a buyer
whose prediction is not finite under the fitted models gets the fallbacks'. No
score is ever NaN or infinite.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Final

import numpy as np
import numpy.typing as npt

from shared.domain.predictions import (
    BgNbdParams,
    FitDiagnostics,
    FittedModels,
    GammaGammaParams,
    MbgNbdParams,
    ModelFitError,
    PurchaseModel,
    SpendModel,
    bgnbd_log_likelihood,
    customer_equity,
    customer_lifetime_value,
    degenerate_fit,
    empirical_purchases,
    empirical_spend,
    expected_average_spend,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_mbgnbd,
    gamma_gamma_log_likelihood,
    mbgnbd_log_likelihood,
    p_alive,
)
from shared.domain.rfm import RFM_SEGMENTS, RfmBoundaries, rfm_boundaries, rfm_segment_codes
from shared.domain.validation import BuyerOrders, log_covariance

__all__ = [
    "DAYS_PER_MONTH",
    "PURCHASE_MODELS",
    "BaseFacts",
    "BaseScores",
    "BuyerFacts",
    "BuyerScore",
    "Progress",
    "ScoringPolicy",
    "facts_as_of",
    "score_base",
    "score_buyers",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DAYS_PER_MONTH: Final = 365.25 / 12
SECONDS_PER_DAY: Final = 86_400.0

PURCHASE_MODELS: Final = ("BG/NBD", "MBG/NBD")
"""The purchase models a base can be scored with (the empirical fallback aside)."""

Progress = Callable[[int, int], None]
"""Called after each batch with (buyers scored so far, buyers in the base)."""


@dataclass(frozen=True, slots=True)
class ScoringPolicy:
    """The knobs of a scoring run."""

    purchases_horizon_days: int = 90
    """``expected_purchases`` counts the orders expected in this many days from now."""
    clv_months: int = 12
    """CLV sums this many months ahead."""
    monthly_discount_rate: float = 0.01
    """Each month's margin is discounted by ``(1 + rate)`` per month from now."""
    margin: float = 1.0
    """Share of net revenue that is margin; 1.0 makes CLV a revenue figure."""
    min_repeat_buyers: int = 20
    """Below this many buyers with a repeat order, the models are not fitted."""
    fit_sample: int | None = 250_000
    """Fit the models on at most this many buyers with orders, a seeded random sample;
    None fits on all. A quarter of a million pins the parameters down far closer than
    the models fit any real base, and keeps the fit under a second for any base."""
    batch_size: int = 100_000
    clv_interval: float = 0.9
    """The level of the CLV interval (delta method on the fitted parameters); 0 for none."""
    purchase_model: str = "BG/NBD"
    """``BG/NBD`` or ``MBG/NBD``: the scoring job sets the one that won on the shop's own
    holdout (:func:`~shared.domain.validation.choose_purchase_model`)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.clv_interval < 1.0:
            raise ValueError("the CLV interval's level must be from 0 up to (not) 1")
        if self.purchase_model not in PURCHASE_MODELS:
            raise ValueError(f"the purchase model must be one of {', '.join(PURCHASE_MODELS)}")
        if self.purchases_horizon_days < 0 or self.clv_months < 0:
            raise ValueError("horizons must not be negative")
        if self.monthly_discount_rate <= -1.0:
            raise ValueError("the monthly discount rate must be above -1")
        if self.margin < 0:
            raise ValueError("the margin must not be negative")
        if self.batch_size < 1 or (self.fit_sample is not None and self.fit_sample < 1):
            raise ValueError("batch size and fit sample must be positive")


@dataclass(frozen=True, slots=True)
class BuyerFacts:
    """One buyer's order history, summed up (all a base scoring reads)."""

    buyer_id: str
    orders_count: int
    net_revenue: float | Decimal
    """Revenue less refunds."""
    first_order_at: datetime | None
    last_order_at: datetime | None


@dataclass(frozen=True)
class BaseFacts:
    """A base's facts in columns, one row per buyer; order moments as Unix seconds.

    The fast path for a job that reads columns from the store; :meth:`of` builds
    it from :class:`BuyerFacts`.
    """

    buyer_ids: Sequence[str]
    orders_count: IntArray
    net_revenue: FloatArray
    first_order_at: FloatArray
    """Unix seconds, NaN when unknown."""
    last_order_at: FloatArray

    def __post_init__(self) -> None:
        size = len(self.buyer_ids)
        columns = (self.orders_count, self.net_revenue, self.first_order_at, self.last_order_at)
        if any(len(column) != size for column in columns):
            raise ValueError("every column of a base needs one value per buyer")

    def __len__(self) -> int:
        return len(self.buyer_ids)

    @classmethod
    def of(cls, buyers: Sequence[BuyerFacts]) -> BaseFacts:
        """Columns from one record per buyer."""
        nan = float("nan")
        return cls(
            buyer_ids=[b.buyer_id for b in buyers],
            orders_count=np.fromiter((b.orders_count for b in buyers), np.int64, len(buyers)),
            net_revenue=np.fromiter(
                (float(b.net_revenue) for b in buyers), np.float64, len(buyers)
            ),
            first_order_at=np.fromiter(
                (b.first_order_at.timestamp() if b.first_order_at else nan for b in buyers),
                np.float64,
                len(buyers),
            ),
            last_order_at=np.fromiter(
                (b.last_order_at.timestamp() if b.last_order_at else nan for b in buyers),
                np.float64,
                len(buyers),
            ),
        )


def facts_as_of(
    buyer_ids: Sequence[str], histories: Sequence[BuyerOrders], at: datetime
) -> BaseFacts:
    """The base as it stood at ``at``: each of ``buyer_ids`` with only the orders placed
    before ``at`` (from their histories; a buyer with none then has no order).

    Net revenue is the placed orders' totals: refunds carry no moment of their own in
    the history, so a base as of a past moment is scored gross of refunds.
    """
    if at.tzinfo is None:
        raise ValueError("at must be an aware datetime")
    cut = at.timestamp()
    index = {buyer: i for i, buyer in enumerate(buyer_ids)}
    size = len(buyer_ids)
    count = np.zeros(size, np.int64)
    revenue = np.zeros(size)
    first = np.full(size, np.nan)
    last = np.full(size, np.nan)
    for history in histories:
        i = index.get(history.buyer_id)
        if i is None:
            continue
        moments = np.fromiter((m.timestamp() for m in history.placed_at), np.float64)
        totals = np.fromiter((float(v) for v in history.totals), np.float64, len(moments))
        before = moments < cut
        if not np.any(before):
            continue
        count[i] = int(np.count_nonzero(before))
        revenue[i] = float(totals[before].sum())
        first[i], last[i] = float(moments[before].min()), float(moments[before].max())
    return BaseFacts(list(buyer_ids), count, revenue, first, last)


@dataclass(frozen=True, slots=True)
class BuyerScore:
    """One buyer's scores; all ``None`` for a buyer with no order, predictions ``None``
    when the base could not fit the models."""

    buyer_id: str
    rfm_r: int | None
    rfm_f: int | None
    rfm_m: int | None
    rfm_segment: str | None
    p_alive: float | None
    expected_purchases: float | None
    """Orders expected in the policy's ``purchases_horizon_days``."""
    expected_spend: float | None
    """Expected value of one future order."""
    clv: float | None
    clv_share: float | None
    """Share of scored buyers with a strictly higher CLV: 0 for the top buyer, so
    ``clv_share < 0.1`` is the top tenth."""
    clv_low: float | None = None
    """The low end of the CLV's interval at ``policy.clv_interval``; ``None`` under a
    fallback model (no parameters to be uncertain about)."""
    clv_high: float | None = None


@dataclass(frozen=True)
class BaseScores:
    """A scored base, in columns (NaN, 0 or -1 where a buyer has no score)."""

    scored_at: datetime
    policy: ScoringPolicy
    buyer_ids: Sequence[str]
    has_orders: npt.NDArray[np.bool_]
    rfm_r: npt.NDArray[np.int8]
    """1-5, 0 for a buyer with no order; likewise ``rfm_f`` and ``rfm_m``."""
    rfm_f: npt.NDArray[np.int8]
    rfm_m: npt.NDArray[np.int8]
    rfm_segment: npt.NDArray[np.int8]
    """Index into :data:`~shared.domain.rfm.RFM_SEGMENTS`, -1 for a buyer with no order."""
    p_alive: FloatArray
    expected_purchases: FloatArray
    expected_spend: FloatArray
    clv: FloatArray
    clv_share: FloatArray
    clv_low: FloatArray
    clv_high: FloatArray
    customer_equity: float
    """The sum of every scored buyer's CLV; 0 when the models were not fitted."""
    rfm_boundaries: RfmBoundaries | None
    """The base's quintile boundaries, to score a new buyer live; None for no orders."""
    models: FittedModels | None
    """None when the base could not fit the models (see the module's docstring)."""
    notes: tuple[str, ...] = field(default=())
    """Why predictions are missing, if they are."""

    def __len__(self) -> int:
        return len(self.buyer_ids)

    def row(self, index: int) -> BuyerScore:
        """The scores of the buyer at ``index``, as plain values."""
        if not self.has_orders[index]:
            return BuyerScore(self.buyer_ids[index], *(None,) * 11)
        return BuyerScore(
            buyer_id=self.buyer_ids[index],
            rfm_r=int(self.rfm_r[index]),
            rfm_f=int(self.rfm_f[index]),
            rfm_m=int(self.rfm_m[index]),
            rfm_segment=RFM_SEGMENTS[self.rfm_segment[index]],
            p_alive=_maybe(self.p_alive[index]),
            expected_purchases=_maybe(self.expected_purchases[index]),
            expected_spend=_maybe(self.expected_spend[index]),
            clv=_maybe(self.clv[index]),
            clv_share=_maybe(self.clv_share[index]),
            clv_low=_maybe(self.clv_low[index]),
            clv_high=_maybe(self.clv_high[index]),
        )

    def rows(self) -> Iterator[BuyerScore]:
        """Every buyer's scores, in the order of the input."""
        return (self.row(index) for index in range(len(self)))

    def batches(self, size: int) -> Iterator[list[BuyerScore]]:
        """Every buyer's scores in lists of ``size``, for writing back in batches."""
        for start in range(0, len(self), size):
            yield [self.row(index) for index in range(start, min(start + size, len(self)))]


def score_buyers(
    buyers: Sequence[BuyerFacts],
    now: datetime,
    policy: ScoringPolicy | None = None,
    progress: Progress | None = None,
) -> BaseScores:
    """Score every buyer of a base at ``now`` (see :func:`score_base`)."""
    return score_base(BaseFacts.of(buyers), now, policy, progress)


def score_base(
    base: BaseFacts,
    now: datetime,
    policy: ScoringPolicy | None = None,
    progress: Progress | None = None,
) -> BaseScores:
    """Score every buyer of a base at ``now``, an aware moment.

    RFM quintiles and the models come from the whole base (or the policy's fit
    sample); the per-buyer predictions are computed in batches, ``progress`` called
    after each.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    policy = policy or ScoringPolicy()
    size = len(base)
    has_orders = (
        (base.orders_count >= 1)
        & np.isfinite(base.first_order_at)
        & np.isfinite(base.last_order_at)
    )
    buyers = _ModelInputs.of(base, now.timestamp(), has_orders)

    rfm_r = np.zeros(size, np.int8)
    rfm_f = np.zeros(size, np.int8)
    rfm_m = np.zeros(size, np.int8)
    segment = np.full(size, -1, np.int8)
    boundaries = None
    if buyers.size:
        boundaries = rfm_boundaries(buyers.recency, buyers.orders, buyers.net_revenue)
        r, f, m = boundaries.score_arrays(buyers.recency, buyers.orders, buyers.net_revenue)
        rfm_r[has_orders], rfm_f[has_orders], rfm_m[has_orders] = r, f, m
        segment[has_orders] = rfm_segment_codes(r, f, m)

    models, fallback, notes = _fit(buyers, policy)
    alive, purchases, spend, clv, low, high = (np.full(size, np.nan) for _ in range(6))
    rows = np.flatnonzero(has_orders)
    # Each batch covers a range of the base; its buyers with orders are predicted.
    cursor = 0
    replaced = 0
    for start in range(0, size, policy.batch_size):
        stop = min(start + policy.batch_size, size)
        end = cursor + int(np.count_nonzero(has_orders[start:stop]))
        if models is not None and fallback is not None and end > cursor:
            part = slice(cursor, end)
            predicted = np.vstack(_predict(models, buyers, part, policy))
            # A buyer the fitted models cannot predict (an overflow at an extreme
            # history) gets the fallback's scores rather than none.
            bad = ~np.all(np.isfinite(predicted), axis=0)
            if np.any(bad):
                replaced += int(np.count_nonzero(bad))
                predicted[:, bad] = np.vstack(_predict(fallback, buyers, part, policy))[:, bad]
            target = rows[part]
            alive[target], purchases[target], spend[target], clv[target] = predicted
            if policy.clv_interval > 0:
                low[target], high[target] = _clv_interval(models, buyers, part, policy, predicted)
        cursor = end
        if progress is not None:
            progress(stop, size)
    if replaced:
        notes += (
            f"{replaced} buyers' predictions were not finite under the fitted models: "
            "those buyers scored with the fallbacks",
        )
    share = np.full(size, np.nan)
    if models is not None and buyers.size:
        share[has_orders] = _share_above(clv[has_orders])

    return BaseScores(
        scored_at=now,
        policy=policy,
        buyer_ids=base.buyer_ids,
        has_orders=has_orders,
        rfm_r=rfm_r,
        rfm_f=rfm_f,
        rfm_m=rfm_m,
        rfm_segment=segment,
        p_alive=alive,
        expected_purchases=purchases,
        expected_spend=spend,
        clv=clv,
        clv_share=share,
        clv_low=low,
        clv_high=high,
        customer_equity=customer_equity(clv) if models is not None else 0.0,
        rfm_boundaries=boundaries,
        models=models,
        notes=notes,
    )


@dataclass(frozen=True)
class _ModelInputs:
    """The buyers with orders, as model inputs (days and money)."""

    recency: FloatArray
    orders: FloatArray
    net_revenue: FloatArray
    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    mean_value: FloatArray

    @property
    def size(self) -> int:
        return len(self.x)

    @classmethod
    def of(cls, base: BaseFacts, now: float, has_orders: npt.NDArray[np.bool_]) -> _ModelInputs:
        first = base.first_order_at[has_orders]
        last = np.maximum(base.last_order_at[has_orders], first)
        orders = base.orders_count[has_orders].astype(np.float64)
        net = base.net_revenue[has_orders].astype(np.float64)
        age = np.maximum(now - first, 0.0) / SECONDS_PER_DAY
        t_x = np.minimum((last - first) / SECONDS_PER_DAY, age)
        return cls(
            recency=age - t_x,
            orders=orders,
            net_revenue=net,
            x=orders - 1.0,
            t_x=t_x,
            T=age,
            mean_value=net / orders,
        )


def _fit(
    buyers: _ModelInputs, policy: ScoringPolicy
) -> tuple[FittedModels | None, FittedModels | None, tuple[str, ...]]:
    """Fit BG/NBD and Gamma-Gamma, each falling back to its empirical model (and saying
    why) where the base is too small or the fit degenerate; the models used, the
    fallbacks, and the notes; ``None`` for no buyers."""
    if buyers.size == 0:
        return None, None, ()
    chosen = np.arange(buyers.size)
    if policy.fit_sample is not None and buyers.size > policy.fit_sample:
        # A fixed seed: the same base gives the same models.
        chosen = np.sort(np.random.default_rng(0).choice(buyers.size, policy.fit_sample, False))
    x, t_x, T = buyers.x[chosen], buyers.t_x[chosen], buyers.T[chosen]
    mean_value = buyers.mean_value[chosen]
    fallback = FittedModels(
        empirical_purchases(x, T), None, empirical_spend(x + 1.0, mean_value), None
    )
    repeaters = int(np.count_nonzero(x > 0))
    if repeaters < policy.min_repeat_buyers:
        return (
            fallback,
            fallback,
            (
                f"{repeaters} of {len(x)} buyers have a repeat order; fitting the models needs "
                f"{policy.min_repeat_buyers} buyers with a repeat order: orders scored with the "
                "empirical rate and spend with the shrunk mean (fallbacks)",
            ),
        )
    notes = []
    purchases: PurchaseModel = fallback.purchases
    purchases_fit: FitDiagnostics | None = None
    fitted, purchases_fit = _fitted_purchases(x, t_x, T, policy)
    if isinstance(fitted, str):
        notes.append(
            f"{policy.purchase_model} not used: {fitted}; orders scored with the empirical rate"
        )
    else:
        purchases = fitted
    spend: SpendModel = fallback.spend
    spenders = (x > 0) & (mean_value > 0)
    fitted_spend, spend_fit = _fitted_spend(x[spenders] + 1.0, mean_value[spenders])
    if isinstance(fitted_spend, str):
        notes.append(f"Gamma-Gamma not used: {fitted_spend}; spend scored with the shrunk mean")
    else:
        spend = fitted_spend
    purchases_cov = spend_cov = None
    if policy.clv_interval > 0 and isinstance(purchases, BgNbdParams | MbgNbdParams):
        likelihood = (
            bgnbd_log_likelihood if isinstance(purchases, BgNbdParams) else mbgnbd_log_likelihood
        )
        kind = type(purchases)
        purchases_cov = _covariance(
            lambda p: float(likelihood(kind(*p), x, t_x, T).sum()),  # type: ignore[arg-type]
            (purchases.r, purchases.alpha, purchases.a, purchases.b),
        )
    if policy.clv_interval > 0 and isinstance(spend, GammaGammaParams):
        n, m = x[spenders] + 1.0, mean_value[spenders]
        spend_cov = _covariance(
            lambda p: float(gamma_gamma_log_likelihood(GammaGammaParams(*p), n, m).sum()),
            (spend.p, spend.q, spend.v),
        )
    models = FittedModels(purchases, purchases_fit, spend, spend_fit, purchases_cov, spend_cov)
    return models, fallback, tuple(notes)


def _covariance(
    log_likelihood: Callable[[tuple[float, ...]], float], at: tuple[float, ...]
) -> tuple[tuple[float, ...], ...] | None:
    with np.errstate(all="ignore"):
        found = log_covariance(log_likelihood, at)
    return None if found is None else tuple(tuple(float(v) for v in row) for row in found)


_Z: Final = {0.8: 1.2816, 0.9: 1.6449, 0.95: 1.96, 0.99: 2.5758}


def _z(level: float) -> float:
    """The standard normal quantile of a two-sided interval at ``level``."""
    if level in _Z:
        return _Z[level]
    # Acklam-free: a bisection on erf is plenty for a handful of levels.
    lo, hi = 0.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if math.erf(mid / math.sqrt(2.0)) < level else (lo, mid)
    return (lo + hi) / 2


def _clv_interval(
    models: FittedModels,
    buyers: _ModelInputs,
    part: slice,
    policy: ScoringPolicy,
    predicted: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Each buyer's CLV interval by the delta method on the fitted parameters.

    ``log CLV = log spend(spend params) + log PV(purchase params)`` (the margin is a
    constant); its variance is ``g_p' S_p g_p + g_s' S_s g_s``, each ``g`` the gradient
    of that log in the model's log-parameters (forward differences), each ``S`` their
    covariance at the fit (the models are fitted apart). The interval is
    ``CLV exp(-+ z sd)``: positive, and wider the less the data pin the models down.
    NaN under a fallback model.
    """
    size = part.stop - part.start
    nan = np.full(size, np.nan)
    purchases, spend = models.purchases, models.spend
    if (
        models.purchases_covariance is None
        or models.spend_covariance is None
        or not isinstance(purchases, BgNbdParams | MbgNbdParams)
        or not isinstance(spend, GammaGammaParams)
    ):
        return nan, nan
    x, t_x, T = buyers.x[part], buyers.t_x[part], buyers.T[part]
    orders, mean = buyers.orders[part], np.maximum(buyers.mean_value[part], 0.0)

    def log_pv(params: BgNbdParams | MbgNbdParams) -> FloatArray:
        value = customer_lifetime_value(
            params, x, t_x, T, np.ones(size),
            months=policy.clv_months,
            monthly_discount_rate=policy.monthly_discount_rate,
            margin=1.0,
            month_length=DAYS_PER_MONTH,
        )  # fmt: skip
        return np.log(value)

    def log_spend(params: GammaGammaParams) -> FloatArray:
        return np.log(expected_average_spend(params, orders, mean))

    step = 1e-4
    with np.errstate(all="ignore"):
        variance = np.zeros(size)
        # Both centres come from the scores already computed: CLV = margin spend PV.
        centre_spend = np.log(predicted[2])
        if policy.margin > 0:
            centre_pv = np.log(predicted[3]) - np.log(policy.margin) - centre_spend
        else:
            centre_pv = log_pv(purchases)
        for params, covariance, log_value, centre in (
            (purchases, models.purchases_covariance, log_pv, centre_pv),
            (spend, models.spend_covariance, log_spend, centre_spend),
        ):
            theta = np.log(np.array([getattr(params, n) for n in params.__slots__]))
            gradient = np.vstack([
                (log_value(type(params)(*np.exp(theta + step * np.eye(len(theta))[j])))  # type: ignore[arg-type]
                 - centre) / step
                for j in range(len(theta))
            ])  # fmt: skip
            variance += np.einsum("ib,ij,jb->b", gradient, np.asarray(covariance), gradient)
        spread = _z(policy.clv_interval) * np.sqrt(np.maximum(variance, 0.0))
        clv = predicted[3]
        low, high = clv * np.exp(-spread), clv * np.exp(spread)
    zero = clv == 0
    low[zero], high[zero] = 0.0, 0.0
    return low, high


def _fitted_purchases(
    x: FloatArray, t_x: FloatArray, T: FloatArray, policy: ScoringPolicy
) -> tuple[BgNbdParams | MbgNbdParams | str, FitDiagnostics | None]:
    """The policy's purchase model fitted, or why it cannot be used."""
    try:
        params: BgNbdParams | MbgNbdParams
        if policy.purchase_model == "MBG/NBD":
            params, fit = fit_mbgnbd(x, t_x, T)
        else:
            params, fit = fit_bgnbd(x, t_x, T)
    except ModelFitError as error:
        return str(error), None
    if reason := degenerate_fit(params, fit):
        return reason, None
    with np.errstate(all="ignore"):
        ahead = expected_purchases(params, float(policy.purchases_horizon_days), x, t_x, T)
    if not np.all(np.isfinite(ahead)):
        return "its predictions are not finite on the buyers it was fitted on", None
    return params, fit


def _fitted_spend(
    n: FloatArray, mean_value: FloatArray
) -> tuple[GammaGammaParams | str, FitDiagnostics | None]:
    """The Gamma-Gamma fit, or why it cannot be used."""
    try:
        params, fit = fit_gamma_gamma(n, mean_value)
    except ModelFitError as error:
        return str(error), None
    if reason := degenerate_fit(params, fit):
        return reason, None
    return params, fit


def _predict(
    models: FittedModels, buyers: _ModelInputs, part: slice, policy: ScoringPolicy
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    x, t_x, T = buyers.x[part], buyers.t_x[part], buyers.T[part]
    with np.errstate(all="ignore"):
        alive = p_alive(models.purchases, x, t_x, T)
        purchases = expected_purchases(
            models.purchases, float(policy.purchases_horizon_days), x, t_x, T
        )
        spend = expected_average_spend(
            models.spend, buyers.orders[part], np.maximum(buyers.mean_value[part], 0.0)
        )
        clv = customer_lifetime_value(
            models.purchases,
            x,
            t_x,
            T,
            spend,
            months=policy.clv_months,
            monthly_discount_rate=policy.monthly_discount_rate,
            margin=policy.margin,
            month_length=DAYS_PER_MONTH,
        )
    return alive, purchases, spend, clv


def _share_above(values: FloatArray) -> FloatArray:
    """For each value, the share of values strictly above it (ties share a rank)."""
    order = np.argsort(-values, kind="stable")
    descending = values[order]
    # In descending order a buyer's rank is where their value first appears.
    starts = np.r_[True, descending[1:] != descending[:-1]]
    first_at = np.maximum.accumulate(np.where(starts, np.arange(len(values)), 0))
    share = np.empty(len(values))
    share[order] = first_at / len(values)
    return share


def _maybe(value: np.float64) -> float | None:
    """A score as stored: never NaN nor infinite (``None`` then)."""
    return float(value) if np.isfinite(value) else None
