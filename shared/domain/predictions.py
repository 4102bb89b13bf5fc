"""How many more orders a buyer will place, and what they are worth: BG/NBD, Gamma-Gamma, CLV.

**Purchases: BG/NBD** (Fader, Hardie & Lee 2005, "Counting your customers the easy
way"). While alive, a buyer orders as a Poisson process with rate ``lambda``; after
each repeat order the buyer leaves for good with probability ``p``. Across the base,
``lambda ~ Gamma(shape r, rate alpha)`` and ``p ~ Beta(a, b)``. A buyer is summed up
by three numbers counted from their first order:

- ``x``: repeat orders (every order after the first);
- ``t_x``: time from the first order to the last one (0 for one order);
- ``T``: time from the first order to now (the buyer's age).

The functions are unit-free: times may be in days or weeks as long as ``t_x``,
``T`` and the horizon share the unit, and ``alpha`` comes out in that unit.
``shared.domain.scoring`` uses **days**.

**Spend: Gamma-Gamma** (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value
curves for customer base analysis"; Colombo & Jiang 1999). Each order's value is
``Gamma(shape p, rate nu)`` for the buyer's own ``nu``, and across the base
``nu ~ Gamma(shape q, rate v)``. A buyer is summed up by ``n``, the number of orders
averaged, and their mean order value; spend is assumed independent of how often
the buyer orders.

**CLV**: the expected orders in each month of the horizon (BG/NBD), times the
expected order value (Gamma-Gamma), times the margin, discounted month by month:
``CLV = margin * spend * sum_{i=1..H} (E[Y(i m)] - E[Y((i-1) m)]) / (1 + d)^i``, with
``m`` a month in the data's unit. Customer equity is the CLV of the whole base.

Fitting is maximum likelihood with ``scipy.optimize.minimize`` (L-BFGS-B) on the log
of each parameter, within bounds, with the gradient worked out analytically. Terms
that depend only on the integer count (``x`` or ``n``) are computed once per
distinct count, so a base of a million buyers costs a handful of array passes per
iteration. Times are rescaled to a mean age of one (and spend to a mean of one)
while fitting, so one start point serves any base; ``alpha`` and ``v`` are scaled
back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
import numpy.typing as npt

# scipy ships no type hints; with scipy-stubs installed mypy checks these calls too.
from scipy.optimize import minimize  # type: ignore[import-untyped,unused-ignore]
from scipy.special import (  # type: ignore[import-untyped,unused-ignore]
    betaln,
    digamma,
    gammaln,
    hyp2f1,
)

__all__ = [
    "BgNbdParams",
    "EmpiricalPurchases",
    "EmpiricalSpend",
    "FitDiagnostics",
    "FittedModels",
    "GammaGammaParams",
    "MbgNbdParams",
    "ModelFitError",
    "PurchaseModel",
    "SpendModel",
    "bgnbd_log_likelihood",
    "customer_equity",
    "customer_lifetime_value",
    "degenerate_fit",
    "empirical_purchases",
    "empirical_spend",
    "expected_average_spend",
    "expected_purchases",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "fit_mbgnbd",
    "gamma_gamma_log_likelihood",
    "mbgnbd_log_likelihood",
    "model_name",
    "p_alive",
]

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

_LOG_BOUND: Final = 12.0
"""Each parameter is fitted within ``[e^-12, e^12]`` of its start scale."""
_MAX_ITERATIONS: Final = 500


class ModelFitError(ValueError):
    """The data cannot identify the model: too few buyers, no repeat orders, no spread."""


@dataclass(frozen=True, slots=True)
class BgNbdParams:
    """BG/NBD parameters: purchase rate ``Gamma(r, alpha)``, dropout ``Beta(a, b)``.

    ``alpha`` is in the time unit of the data it was fitted on.
    """

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True, slots=True)
class MbgNbdParams:
    """MBG/NBD parameters (Batislam, Denizel & Filiztekin 2007): as BG/NBD, but a buyer
    may also leave right after their first order, so a one-order buyer is not sure alive.

    ``alpha`` is in the time unit of the data it was fitted on.
    """

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True, slots=True)
class GammaGammaParams:
    """Gamma-Gamma parameters: order value ``Gamma(p, nu)``, ``nu ~ Gamma(q, v)``.

    ``v`` is in the money unit of the data it was fitted on.
    """

    p: float
    q: float
    v: float

    @property
    def mean_order_value(self) -> float:
        """The base's expected order value, ``p v / (q - 1)``; infinite for ``q <= 1``."""
        return self.p * self.v / (self.q - 1.0) if self.q > 1.0 else float("inf")


@dataclass(frozen=True, slots=True)
class FitDiagnostics:
    """How a maximum-likelihood fit went."""

    log_likelihood: float
    """The total log-likelihood of the data at the fitted parameters."""
    iterations: int
    converged: bool
    buyers: int
    """How many buyers the model was fitted on."""
    message: str
    """The optimiser's own word on why it stopped."""
    at_bound: bool = False
    """Whether a parameter ended within ``e^1`` of the bounds it was fitted in
    (``e^+-12`` times its start): the data did not pin it down."""


@dataclass(frozen=True, slots=True)
class EmpiricalPurchases:
    """The fallback purchase model: each buyer's own repeat-order rate, shrunk to the base's.

    A buyer with ``x`` repeat orders in an age of ``T`` days orders at
    ``lambda = (x + rate * weight) / (T + weight)``: their own rate where they have
    a long history, the base's ``rate`` (repeat orders per day of age, all told)
    where they have little, as a Gamma-Poisson posterior mean with ``weight`` days of
    prior evidence. It has no dropout: the probability alive is the chance that a
    buyer still ordering at ``lambda`` would have stayed silent since their last
    order, ``exp(-lambda (T - t_x))``.
    """

    rate: float
    weight: float


@dataclass(frozen=True, slots=True)
class EmpiricalSpend:
    """The fallback spend model: each buyer's mean order value shrunk to the base's,
    ``(n m + weight * mean) / (n + weight)``."""

    mean: float
    weight: float


PurchaseModel = BgNbdParams | MbgNbdParams | EmpiricalPurchases
"""What predicts orders: a fitted BG/NBD or MBG/NBD, or the empirical fallback."""
SpendModel = GammaGammaParams | EmpiricalSpend
"""What predicts an order's value: a fitted Gamma-Gamma, or the shrunk mean."""


def model_name(model: PurchaseModel | SpendModel) -> str:
    """The model's name as summaries and reports say it."""
    if isinstance(model, BgNbdParams):
        return "BG/NBD"
    if isinstance(model, MbgNbdParams):
        return "MBG/NBD"
    if isinstance(model, EmpiricalPurchases):
        return "empirical rate (fallback)"
    if isinstance(model, GammaGammaParams):
        return "Gamma-Gamma"
    return "shrunk mean spend (fallback)"


@dataclass(frozen=True, slots=True)
class FittedModels:
    """The purchase and spend models of one base, with how each fit went (``None`` for
    a fallback, which is not fitted)."""

    purchases: PurchaseModel
    purchases_fit: FitDiagnostics | None
    spend: SpendModel
    spend_fit: FitDiagnostics | None
    purchases_covariance: tuple[tuple[float, ...], ...] | None = None
    """Of the purchase model's log-parameters, at the fit (the inverse Hessian of the
    negative log-likelihood); ``None`` for a fallback or a singular Hessian."""
    spend_covariance: tuple[tuple[float, ...], ...] | None = None

    @property
    def purchase_model(self) -> str:
        return model_name(self.purchases)

    @property
    def spend_model(self) -> str:
        return model_name(self.spend)

    @property
    def fallbacks(self) -> tuple[str, ...]:
        """Which of ``purchases`` and ``spend`` fell back to the empirical model."""
        return tuple(
            kind
            for kind, model in (("purchases", self.purchases), ("spend", self.spend))
            if isinstance(model, EmpiricalPurchases | EmpiricalSpend)
        )


# --- BG/NBD -----------------------------------------------------------------------------


def bgnbd_log_likelihood(
    params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> FloatArray:
    """Each buyer's BG/NBD log-likelihood, as in Fader, Hardie & Lee (2005).

    ``L = B(a, b+x)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
    + [x > 0] B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x))``.
    """
    data = _BgNbdData.of(x, t_x, T)
    terms = _bgnbd_terms(data, params, gradient=False)
    value = np.empty(data.size)
    value[data.once] = terms.once
    value[~data.once] = terms.repeat
    return value


def fit_bgnbd(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> tuple[BgNbdParams, FitDiagnostics]:
    """BG/NBD parameters by maximum likelihood.

    Raises :class:`ModelFitError` when no buyer has a repeat order or every buyer is
    of age zero: the dropout or the rate cannot be told apart then.
    """
    data = _BgNbdData.of(x, t_x, T)
    if len(data.x) == 0:
        raise ModelFitError("BG/NBD needs buyers with repeat orders")
    scale = float(np.sum(data.T_once) + np.sum(data.T)) / data.size
    if not scale > 0.0:
        raise ModelFitError("BG/NBD needs buyers older than their first order")
    scaled = replace(data, T_once=data.T_once / scale, t_x=data.t_x / scale, T=data.T / scale)

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        r, alpha, a, b = np.exp(theta)
        terms = _bgnbd_terms(scaled, BgNbdParams(r, alpha, a, b), gradient=True)
        # The gradient in log-parameters is the parameter times the gradient in it.
        return -terms.total / data.size, -terms.gradient * np.exp(theta) / data.size

    theta, diagnostics = _maximise(objective, np.zeros(4), data.size)
    r, alpha, a, b = (float(v) for v in np.exp(theta))
    # The likelihood is a density in t_x, so it moves with the time unit by scale^-x:
    # report it in the data's own unit.
    return BgNbdParams(r=r, alpha=alpha * scale, a=a, b=b), _rescaled(
        diagnostics, -float(np.sum(data.x) * np.log(scale))
    )


def p_alive(params: PurchaseModel, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
    """The probability each buyer is still alive now.

    For the empirical fallback see :class:`EmpiricalPurchases`; for BG/NBD:

    ``1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))`` (Fader, Hardie & Lee,
    "Computing P(alive) using the BG/NBD model"): exactly 1 for a buyer with no repeat
    order (BG/NBD lets a buyer leave only right after a repeat order), and falling as
    the silence since the last order grows.
    """
    xs, t_xs, Ts = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    if isinstance(params, EmpiricalPurchases):
        silence = np.maximum(Ts - t_xs, 0.0)
        quiet: FloatArray = np.exp(-_empirical_rate(params, xs, Ts) * silence)
        return quiet
    alive: FloatArray = 1.0 / (1.0 + _dropout_odds(params, xs, t_xs, Ts))
    return alive


def expected_purchases(
    params: PurchaseModel, t: float, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> FloatArray:
    """Each buyer's expected number of orders in the next ``t`` (Fader, Hardie & Lee 2005).

    The probability the buyer is alive times the orders expected of them if alive.
    """
    xs, t_xs, Ts = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    expected: FloatArray = p_alive(params, xs, t_xs, Ts) * _purchases_if_alive(params, t, xs, Ts)
    return expected


def _purchases_if_alive(
    params: PurchaseModel, t: float, x: FloatArray, T: FloatArray
) -> FloatArray:
    if isinstance(params, EmpiricalPurchases):
        ahead: FloatArray = _empirical_rate(params, x, T) * t
        return ahead
    return _bgnbd_purchases_if_alive(params, t, x, T)


def _shift(params: BgNbdParams | MbgNbdParams) -> float:
    """MBG/NBD's formulas are BG/NBD's with ``b + x - 1`` read as ``b + x``."""
    return 1.0 if isinstance(params, MbgNbdParams) else 0.0


def _empirical_rate(params: EmpiricalPurchases, x: FloatArray, T: FloatArray) -> FloatArray:
    rate: FloatArray = (x + params.rate * params.weight) / (T + params.weight)
    return rate


def _bgnbd_purchases_if_alive(
    params: BgNbdParams | MbgNbdParams, t: float, x: FloatArray, T: FloatArray
) -> FloatArray:
    """Orders expected in the next ``t`` of a buyer alive now.

    ``(a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)]``,
    ``z = t/(alpha+T+t)``, with the power and the 2F1 taken through Euler's
    transformation to ``(1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)``: the same number,
    without the huge and tiny factors that overflow for buyers with hundreds of orders;
    the paper's own form where Euler's overflows instead (very large ``a`` and ``b``).
    """
    r, alpha, b = params.r, params.alpha, params.b
    a = params.a if abs(params.a - 1.0) > 1e-9 else 1.0 + 1e-9  # a = 1 is a removable 0/0
    s = _shift(params)
    c = a + b + x - 1.0 + s
    z = t / (alpha + T + t)
    with np.errstate(invalid="ignore", over="ignore"):
        euler = (
            c
            / (a - 1.0)
            * (1.0 - np.power(1.0 - z, a - 1.0) * hyp2f1(a + b - 1.0 + s - r, a - 1.0, c, z))
        )
        # Where a and b are large (dropout much the same for everyone), Euler's form
        # overflows while the paper's own converges at once: take that one there.
        direct = (
            c
            / (a - 1.0)
            * (
                1.0
                - np.power((alpha + T) / (alpha + T + t), r + x) * hyp2f1(r + x, b + x + s, c, z)
            )
        )
    expected: FloatArray = np.where(np.isfinite(euler), euler, direct)
    return expected


def _dropout_odds(
    params: BgNbdParams | MbgNbdParams, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """``[x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)``, the odds of having left
    (MBG/NBD: ``a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x)`` for every buyer)."""
    s = _shift(params)
    repeat = (x > 0) | (s > 0)
    safe_x = np.where(x > 0, x, 1.0 - s)
    log_odds = (
        np.log(params.a)
        - np.log(params.b + safe_x - 1.0 + s)
        + (params.r + safe_x) * (np.log(params.alpha + T) - np.log(params.alpha + t_x))
    )
    odds: FloatArray = np.where(repeat, np.exp(np.minimum(log_odds, 700.0)), 0.0)
    return odds


@dataclass(frozen=True, slots=True)
class _ByCount:
    """Buyers grouped by a whole count of orders, so that the terms that depend on the
    count alone are computed once per count."""

    counts: FloatArray
    """The distinct counts, ascending."""
    index: npt.NDArray[np.intp]
    """``counts[index]`` is each buyer's count."""
    per_count: FloatArray
    """How many buyers have each count."""


def _by_count(values: FloatArray) -> dict[str, Any]:
    """The :class:`_ByCount` fields of ``values``, to build a subclass with."""
    counts, index, per_count = np.unique(values, return_inverse=True, return_counts=True)
    return {"counts": counts, "index": index, "per_count": per_count.astype(np.float64)}


@dataclass(frozen=True, slots=True)
class _BgNbdData(_ByCount):
    """Buyers' (x, t_x, T), split: the ages of one-order buyers, and the repeat buyers
    grouped by their repeat count ``x``."""

    once: npt.NDArray[np.bool_]
    """Which buyers, in the input's order, have no repeat order."""
    T_once: FloatArray
    x: FloatArray
    t_x: FloatArray
    T: FloatArray

    @property
    def size(self) -> int:
        return len(self.once)

    @classmethod
    def of(cls, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> _BgNbdData:
        xs, t_xs, Ts = (np.asarray(v, dtype=np.float64).ravel() for v in (x, t_x, T))
        if not len(xs) == len(t_xs) == len(Ts):
            raise ValueError("x, t_x and T must have one value per buyer")
        if np.any(xs < 0) or np.any(xs != np.floor(xs)):
            raise ValueError("x counts repeat orders: whole numbers from 0")
        if np.any(t_xs < 0) or np.any(Ts < t_xs):
            raise ValueError("need 0 <= t_x <= T for every buyer")
        once = xs == 0
        repeat = ~once
        return cls(
            once=once,
            T_once=Ts[once],
            x=xs[repeat],
            t_x=t_xs[repeat],
            T=Ts[repeat],
            **_by_count(xs[repeat]),
        )


@dataclass(frozen=True, slots=True)
class _BgNbdTerms:
    once: FloatArray
    """Log-likelihood of each one-order buyer."""
    repeat: FloatArray
    """Log-likelihood of each repeat buyer."""
    gradient: FloatArray
    """Of the total, in (r, alpha, a, b); empty when not asked for."""

    @property
    def total(self) -> float:
        return float(self.once.sum() + self.repeat.sum())


def _bgnbd_terms(data: _BgNbdData, params: BgNbdParams, *, gradient: bool) -> _BgNbdTerms:
    """Per-buyer log-likelihood and, if asked, the gradient of its total.

    One-order buyers: ``r log alpha - r log(alpha+T)``. Repeat buyers:
    ``log G(r+x) - log G(r) + r log alpha + logaddexp(A2, A3)`` with
    ``A2 = log B(a, b+x) - log B(a, b) - (r+x) log(alpha+T)`` (alive at T) and
    ``A3 = log B(a+1, b+x-1) - log B(a, b) - (r+x) log(alpha+t_x)`` (left at t_x).
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_alpha = np.log(alpha)
    log_age_once = np.log(alpha + data.T_once)
    once = r * (log_alpha - log_age_once)

    k, i = data.counts, data.index
    base = betaln(a, b)
    head_k = gammaln(r + k) - gammaln(r) + r * log_alpha
    stay_k = betaln(a, b + k) - base
    leave_k = betaln(a + 1.0, b + k - 1.0) - base
    shape = r + data.x
    log_age = np.log(alpha + data.T)
    log_last = np.log(alpha + data.t_x)
    stay = stay_k[i] - shape * log_age
    leave = leave_k[i] - shape * log_last
    mix = np.logaddexp(stay, leave)
    repeat = head_k[i] + mix
    if not gradient:
        return _BgNbdTerms(once, repeat, np.zeros(0))

    n_repeat = len(data.x)
    # Posterior weight of "left right after t_x" (against "alive at T"), and its sum
    # per count: the a and b terms depend on the count alone.
    w_leave = np.exp(leave - mix)
    w_stay = 1.0 - w_leave
    leave_per_k = np.bincount(i, weights=w_leave, minlength=len(k))
    stay_per_k = data.per_count - leave_per_k
    d_r = (
        float(digamma(r + k) @ data.per_count)
        - n_repeat * digamma(r)
        + data.size * log_alpha
        - np.sum(log_age_once)
        - np.sum(w_stay * log_age + w_leave * log_last)
    )
    d_alpha = (
        data.size * r / alpha
        - r * np.sum(1.0 / (alpha + data.T_once))
        - np.sum(shape * (w_stay / (alpha + data.T) + w_leave / (alpha + data.t_x)))
    )
    # d/da and d/db of log B(a, b+k) and log B(a+1, b+k-1), less those of log B(a, b).
    psi_k = digamma(a + b + k)
    d_a = float(
        (digamma(a) - psi_k) @ stay_per_k + (digamma(a + 1.0) - psi_k) @ leave_per_k
    ) - n_repeat * (digamma(a) - digamma(a + b))
    d_b = float(
        (digamma(b + k) - psi_k) @ stay_per_k + (digamma(b + k - 1.0) - psi_k) @ leave_per_k
    ) - n_repeat * (digamma(b) - digamma(a + b))
    return _BgNbdTerms(once, repeat, np.array([d_r, d_alpha, d_a, d_b]))


# --- MBG/NBD ----------------------------------------------------------------------------


def mbgnbd_log_likelihood(
    params: MbgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> FloatArray:
    """Each buyer's MBG/NBD log-likelihood (Batislam, Denizel & Filiztekin 2007).

    ``L = G(r+x) alpha^r / G(r) [B(a, b+x+1)/B(a, b) (alpha+T)^-(r+x)
    + B(a+1, b+x)/B(a, b) (alpha+t_x)^-(r+x)]``, the second term for every buyer: one
    may leave right after the first order.
    """
    xs, t_xs, Ts = (np.asarray(v, dtype=np.float64).ravel() for v in (x, t_x, T))
    _BgNbdData.of(xs, t_xs, Ts)  # the same checks
    counts, index = np.unique(xs, return_inverse=True)
    return _mbgnbd_terms(params, counts, index, x=xs, t_x=t_xs, T=Ts)


def _mbgnbd_terms(
    params: MbgNbdParams,
    counts: FloatArray,
    index: npt.NDArray[np.intp],
    *,
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,
) -> FloatArray:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    base = betaln(a, b)
    head_k = gammaln(r + counts) - gammaln(r) + r * np.log(alpha)
    stay_k = betaln(a, b + counts + 1.0) - base
    leave_k = betaln(a + 1.0, b + counts) - base
    shape = r + x
    value: FloatArray = head_k[index] + np.logaddexp(
        stay_k[index] - shape * np.log(alpha + T), leave_k[index] - shape * np.log(alpha + t_x)
    )
    return value


def fit_mbgnbd(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> tuple[MbgNbdParams, FitDiagnostics]:
    """MBG/NBD parameters by maximum likelihood: ``scipy.optimize.minimize`` (L-BFGS-B) on
    log-parameters within the same bounds as BG/NBD, on the same rescaled times, its
    gradient by scipy's finite differences. Raises :class:`ModelFitError` as
    :func:`fit_bgnbd` does."""
    xs, t_xs, Ts = (np.asarray(v, dtype=np.float64).ravel() for v in (x, t_x, T))
    _BgNbdData.of(xs, t_xs, Ts)
    if not np.any(xs > 0):
        raise ModelFitError("MBG/NBD needs buyers with repeat orders")
    scale = float(np.mean(Ts)) if len(Ts) else 0.0
    if not scale > 0.0:
        raise ModelFitError("MBG/NBD needs buyers older than their first order")
    counts, index = np.unique(xs, return_inverse=True)
    t_scaled, T_scaled = t_xs / scale, Ts / scale
    size = len(xs)

    def objective(theta: FloatArray) -> float:
        r, alpha, a, b = np.exp(theta)
        terms = _mbgnbd_terms(
            MbgNbdParams(r, alpha, a, b), counts, index, x=xs, t_x=t_scaled, T=T_scaled
        )
        total = float(terms.sum())
        return -total / size if math.isfinite(total) else 1e300

    start = np.zeros(4)
    result = minimize(
        objective,
        start,
        method="L-BFGS-B",
        bounds=[(v - _LOG_BOUND, v + _LOG_BOUND) for v in start],
        options={"maxiter": _MAX_ITERATIONS},
    )
    theta = np.asarray(result.x, dtype=np.float64)
    r, alpha, a, b = (float(v) for v in np.exp(theta))
    diagnostics = FitDiagnostics(
        log_likelihood=-float(result.fun) * size - float(np.sum(xs)) * math.log(scale),
        iterations=int(result.nit),
        converged=bool(result.success) and bool(np.isfinite(result.fun)),
        buyers=size,
        message=str(result.message),
        at_bound=bool(np.any(np.abs(theta - start) > _LOG_BOUND - 1.0)),
    )
    return MbgNbdParams(r=r, alpha=alpha * scale, a=a, b=b), diagnostics


# --- Gamma-Gamma ------------------------------------------------------------------------


def gamma_gamma_log_likelihood(
    params: GammaGammaParams, n: ArrayLike, mean_value: ArrayLike
) -> FloatArray:
    """Each buyer's log-likelihood of their mean order value over ``n`` orders.

    ``f(m | n) = G(pn+q) / (G(pn) G(q)) * v^q m^(pn-1) n^(pn) / (v + m n)^(pn+q)``.
    """
    data = _SpendData.of(n, mean_value)
    value, _ = _gamma_gamma_terms(data, params, gradient=False)
    return value


def fit_gamma_gamma(n: ArrayLike, mean_value: ArrayLike) -> tuple[GammaGammaParams, FitDiagnostics]:
    """Gamma-Gamma parameters by maximum likelihood.

    Pass the buyers the model should learn from; the usual choice (and the scoring's)
    is buyers with a repeat order, whose mean is an average over more than one order.
    Raises :class:`ModelFitError` for fewer than two buyers.
    """
    data = _SpendData.of(n, mean_value)
    if data.size < 2:
        raise ModelFitError("Gamma-Gamma needs at least two buyers with orders")
    scale = float(np.mean(data.mean_value))
    scaled = replace(data, mean_value=data.mean_value / scale)

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        p, q, v = np.exp(theta)
        value, grad = _gamma_gamma_terms(scaled, GammaGammaParams(p, q, v), gradient=True)
        return -float(value.sum()) / data.size, -grad * np.exp(theta) / data.size

    # Start at p = 1, q = 2, v = 1: a mean order value of one, the scaled data's mean.
    theta, diagnostics = _maximise(objective, np.array([0.0, np.log(2.0), 0.0]), data.size)
    p, q, v = (float(value) for value in np.exp(theta))
    # A density in m, so it moves with the money unit: report it in the data's own unit.
    return GammaGammaParams(p=p, q=q, v=v * scale), _rescaled(
        diagnostics, -data.size * float(np.log(scale))
    )


def expected_average_spend(params: SpendModel, n: ArrayLike, mean_value: ArrayLike) -> FloatArray:
    """Each buyer's expected value of a future order, given ``n`` orders averaging ``m``.

    ``E[M | n, m] = p (v + n m) / (p n + q - 1)``: the buyer's own mean, shrunk toward
    the base's mean the fewer orders it rests on. A buyer with no order gets the
    base's mean, ``p v / (q - 1)``.
    """
    ns = np.asarray(n, dtype=np.float64)
    ms = np.asarray(mean_value, dtype=np.float64)
    if isinstance(params, EmpiricalSpend):
        shrunk: FloatArray = (ns * ms + params.weight * params.mean) / (ns + params.weight)
        return shrunk
    denominator = params.p * ns + params.q - 1.0
    spend: FloatArray = np.where(
        denominator > 0,
        params.p * (params.v + ns * ms) / np.where(denominator > 0, denominator, 1.0),
        np.inf,
    )
    return spend


@dataclass(frozen=True, slots=True)
class _SpendData(_ByCount):
    """Buyers' order counts ``n`` and mean order values, grouped by ``n``."""

    n: FloatArray
    mean_value: FloatArray

    @property
    def size(self) -> int:
        return len(self.n)

    @classmethod
    def of(cls, n: ArrayLike, mean_value: ArrayLike) -> _SpendData:
        ns = np.asarray(n, dtype=np.float64).ravel()
        ms = np.asarray(mean_value, dtype=np.float64).ravel()
        if len(ns) != len(ms):
            raise ValueError("n and mean_value must have one value per buyer")
        if np.any(ns < 1) or np.any(ns != np.floor(ns)):
            raise ValueError("n counts orders: whole numbers from 1")
        if np.any(~(ms > 0)):
            raise ValueError("Gamma-Gamma needs a positive mean order value for every buyer")
        return cls(n=ns, mean_value=ms, **_by_count(ns))


def _gamma_gamma_terms(
    data: _SpendData, params: GammaGammaParams, *, gradient: bool
) -> tuple[FloatArray, FloatArray]:
    p, q, v = params.p, params.q, params.v
    k = data.counts
    pk = p * k
    head_k = gammaln(pk + q) - gammaln(pk) - gammaln(q) + q * np.log(v) + pk * np.log(k)
    i = data.index
    shape = p * data.n + q
    log_m = np.log(data.mean_value)
    log_total = np.log(v + data.mean_value * data.n)
    value: FloatArray = head_k[i] + (p * data.n - 1.0) * log_m - shape * log_total
    if not gradient:
        return value, np.zeros(0)
    psi_k = digamma(pk + q)
    d_p_k = k * (psi_k - digamma(pk) + np.log(k))
    d_p = float(d_p_k @ data.per_count) + np.sum(data.n * (log_m - log_total))
    d_q = float(psi_k @ data.per_count) + data.size * (np.log(v) - digamma(q)) - np.sum(log_total)
    d_v = data.size * q / v - np.sum(shape / (v + data.mean_value * data.n))
    return value, np.array([d_p, d_q, d_v])


# --- CLV --------------------------------------------------------------------------------


def customer_lifetime_value(
    purchases: PurchaseModel,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    expected_spend: ArrayLike,
    *,
    months: int,
    monthly_discount_rate: float,
    margin: float,
    month_length: float,
) -> FloatArray:
    """Each buyer's discounted margin over the next ``months``.

    ``margin * spend * sum_{i=1..months} (E[Y(i m)] - E[Y((i-1) m)]) / (1 + d)^i``,
    ``m`` the ``month_length`` in the data's time unit (30.4375 for days).
    """
    if months < 0 or monthly_discount_rate <= -1.0 or month_length <= 0:
        raise ValueError("CLV needs months >= 0, a discount rate above -1 and a month > 0")
    xs, t_xs, Ts = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    discounted = np.zeros_like(Ts)
    before = np.zeros_like(Ts)
    for month in range(1, months + 1):
        upto = _purchases_if_alive(purchases, month * month_length, xs, Ts)
        discounted += (upto - before) / (1.0 + monthly_discount_rate) ** month
        before = upto
    alive = p_alive(purchases, xs, t_xs, Ts)
    clv: FloatArray = margin * np.asarray(expected_spend, dtype=np.float64) * alive * discounted
    return clv


def customer_equity(clv: ArrayLike) -> float:
    """The base's customer equity: the sum of its buyers' CLV (missing ones left out)."""
    values = np.asarray(clv, dtype=np.float64)
    return float(np.sum(values[np.isfinite(values)]))


# --- The fallback and when to take it ----------------------------------------------------

EMPIRICAL_SPEND_WEIGHT: Final = 1.0
"""The base's mean order value counts as this many of a buyer's own orders."""


def empirical_purchases(x: ArrayLike, T: ArrayLike) -> EmpiricalPurchases:
    """The fallback purchase model of a base: its repeat orders per day of age, all told,
    with the base's mean age as the weight of that prior (one buyer's worth of history)."""
    xs, Ts = (np.asarray(v, dtype=np.float64).ravel() for v in (x, T))
    age = float(np.sum(Ts))
    mean_age = age / len(Ts) if len(Ts) else 0.0
    return EmpiricalPurchases(
        rate=float(np.sum(xs)) / age if age > 0 else 0.0,
        weight=mean_age if mean_age > 0 else 1.0,
    )


def empirical_spend(n: ArrayLike, mean_value: ArrayLike) -> EmpiricalSpend:
    """The fallback spend model: the base's mean order value over the buyers with a
    positive mean (zero when there are none)."""
    ns, ms = (np.asarray(v, dtype=np.float64).ravel() for v in (n, mean_value))
    positive = ms > 0
    orders = float(np.sum(ns[positive]))
    mean = float(np.sum(ns[positive] * ms[positive])) / orders if orders > 0 else 0.0
    return EmpiricalSpend(mean=mean, weight=EMPIRICAL_SPEND_WEIGHT)


def degenerate_fit(
    params: BgNbdParams | MbgNbdParams | GammaGammaParams, diagnostics: FitDiagnostics
) -> str | None:
    """Why a fit cannot be trusted, in a few words, or ``None`` if it can.

    A fit is degenerate when the optimiser did not converge, a parameter is not a
    finite positive number, a parameter ended at its bounds (within ``e^1`` of
    ``e^+-12`` times its start: the data do not pin it down), or Gamma-Gamma's ``q`` is
    at most 1 (an infinite mean order value).
    """
    values = {name: getattr(params, name) for name in params.__slots__}
    if not all(math.isfinite(v) and v > 0 for v in values.values()):
        return "a parameter is not a finite positive number"
    if not diagnostics.converged:
        return f"the fit did not converge ({diagnostics.message})"
    if diagnostics.at_bound:
        shown = ", ".join(f"{name} = {value:.4g}" for name, value in values.items())
        return f"a parameter ended at its bound ({shown})"
    if isinstance(params, GammaGammaParams) and params.q <= 1.0:
        return f"q = {params.q:.4g} is at most 1 (an infinite mean order value)"
    return None


# --- Fitting ----------------------------------------------------------------------------


def _maximise(
    objective: Callable[[FloatArray], tuple[float, FloatArray]],
    start: FloatArray,
    buyers: int,
) -> tuple[FloatArray, FitDiagnostics]:
    """Minimise a mean negative log-likelihood over log-parameters, within bounds."""
    bounds = [(value - _LOG_BOUND, value + _LOG_BOUND) for value in start]
    result = minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": _MAX_ITERATIONS},
    )
    theta = np.asarray(result.x, dtype=np.float64)
    return theta, FitDiagnostics(
        log_likelihood=-float(result.fun) * buyers,
        iterations=int(result.nit),
        converged=bool(result.success) and bool(np.isfinite(result.fun)),
        buyers=buyers,
        message=str(result.message),
        at_bound=bool(np.any(np.abs(theta - start) > _LOG_BOUND - 1.0)),
    )


def _rescaled(diagnostics: FitDiagnostics, shift: float) -> FitDiagnostics:
    """The same fit, its log-likelihood moved back from the rescaled data's units."""
    return replace(diagnostics, log_likelihood=float(diagnostics.log_likelihood + shift))
