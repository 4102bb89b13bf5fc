"""Does the model predict this shop's buyers? BG/NBD and Gamma-Gamma checked on held-out orders.

The shop's order history is cut at the end of a **calibration** period: the models are
fitted on the orders up to it, exactly as scoring fits them (times in days, Gamma-Gamma
on buyers with a repeat order), and each buyer who had ordered by then is predicted for
the **holdout** period after it. The report sets the predictions beside what the buyers
did, and beside a **naive baseline**: each buyer's own repeat-order rate in the
calibration period (``x / T``, per day) carried on over the holdout, times their own
mean order value. A model that does not beat that has not earned its keep.

What the report holds, the numbers an analyst checks:

- the fitted parameters, each with a standard error from the inverse Hessian of the
  negative log-likelihood at the fit (central differences in log-parameters, turned
  back by the delta method: exact at a maximum), and each model's log-likelihood;
- the calibration/holdout table (Fader, Hardie & Lee 2005, figure 3): buyers grouped
  by their calibration repeat orders, 0 to :data:`FREQUENCY_GROUPS` - 1 and the rest
  together, mean actual holdout orders against mean predicted (model and baseline),
  and the same as an SVG plot (:func:`calibration_holdout_svg`);
- per buyer, for holdout orders and for holdout spend: mean absolute error and
  Pearson correlation, model and baseline side by side;
- the share of the actual top decile correctly ranked: of the buyers in the top tenth
  by actual holdout spend (those who spent anything), how many are in the top tenth by
  predicted holdout spend (the model's CLV over the holdout, undiscounted).

Orders count as placed (refunds aside) and a buyer's holdout spend is the sum of their
holdout orders' totals. Buyers whose first order is after the calibration end are new
in the holdout: no model predicts them, and they are counted apart.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

import numpy as np
import numpy.typing as npt

from shared.domain.predictions import (
    BgNbdParams,
    FitDiagnostics,
    GammaGammaParams,
    MbgNbdParams,
    ModelFitError,
    bgnbd_log_likelihood,
    expected_average_spend,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_mbgnbd,
    gamma_gamma_log_likelihood,
    mbgnbd_log_likelihood,
)

__all__ = [
    "FREQUENCY_GROUPS",
    "BuyerOrders",
    "CannotValidate",
    "FrequencyGroup",
    "ModelScore",
    "OrderLog",
    "ParameterEstimate",
    "PurchaseCandidate",
    "ValidationReport",
    "calibration_holdout_svg",
    "choose_purchase_model",
    "log_covariance",
    "standard_errors",
    "validate_models",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

SECONDS_PER_DAY: Final = 86_400.0
FREQUENCY_GROUPS: Final = 7
"""Calibration repeat orders 0..6 each a group of the table, 7 and more one group."""
MIN_REPEAT_BUYERS: Final = 20
"""Below this many buyers with a repeat order in the calibration period, no fit."""
_STEP: Final = 1e-3
"""The central-difference step of the Hessian, in log-parameters."""


class CannotValidate(ValueError):
    """The history cannot be validated as asked: say what to change."""


@dataclass(frozen=True, slots=True)
class BuyerOrders:
    """One buyer's orders: when each was placed and its total, in any order."""

    buyer_id: str
    placed_at: tuple[datetime, ...]
    totals: tuple[float | Decimal, ...]


@dataclass(frozen=True)
class OrderLog:
    """Every order of a shop in columns: its buyer (an index), when (Unix seconds), its total."""

    buyer: IntArray
    at: FloatArray
    total: FloatArray
    buyers: int
    """How many buyers ``buyer`` indexes (``0 .. buyers - 1``)."""

    def __post_init__(self) -> None:
        if not len(self.buyer) == len(self.at) == len(self.total):
            raise ValueError("every order needs a buyer, a moment and a total")

    @classmethod
    def of(cls, histories: Sequence[BuyerOrders]) -> OrderLog:
        """Columns from one record per buyer."""
        sizes = np.fromiter((len(h.placed_at) for h in histories), np.intp, len(histories))
        if any(len(h.totals) != len(h.placed_at) for h in histories):
            raise ValueError("every order needs a moment and a total")
        count = int(sizes.sum())
        return cls(
            buyer=np.repeat(np.arange(len(histories), dtype=np.intp), sizes),
            at=np.fromiter(
                (at.timestamp() for h in histories for at in h.placed_at), np.float64, count
            ),
            total=np.fromiter((float(v) for h in histories for v in h.totals), np.float64, count),
            buyers=len(histories),
        )


@dataclass(frozen=True, slots=True)
class ParameterEstimate:
    name: str
    value: float
    standard_error: float
    """NaN where the likelihood is flat in that direction (the Hessian is singular)."""


@dataclass(frozen=True, slots=True)
class FittedModel:
    """One model's fit: its parameters with standard errors, log-likelihood, buyers."""

    name: str
    parameters: tuple[ParameterEstimate, ...]
    log_likelihood: float
    buyers: int
    converged: bool


@dataclass(frozen=True, slots=True)
class PurchaseCandidate:
    """One purchase model fitted on the calibration period and scored on the holdout."""

    fitted: FittedModel
    purchases_mae: float
    """Mean absolute error of holdout orders per buyer: the lower wins."""
    purchases_correlation: float
    predicted_purchases: float
    """Holdout orders predicted, all told."""


@dataclass(frozen=True, slots=True)
class FrequencyGroup:
    """One row of the calibration/holdout table."""

    label: str
    """Calibration repeat orders: ``"0"`` .. ``"6"``, ``"7+"``."""
    buyers: int
    actual: float
    """Mean actual holdout orders of the group's buyers."""
    model: float
    """Mean predicted by the model."""
    baseline: float
    """Mean predicted by the naive baseline."""


@dataclass(frozen=True, slots=True)
class ModelScore:
    """How one predictor did on the holdout, per buyer."""

    name: str
    purchases_mae: float
    purchases_correlation: float
    """Pearson; NaN where either side does not vary."""
    spend_mae: float
    spend_correlation: float
    top_decile_share: float
    """Of the actual top tenth by holdout spend, the share also in the predicted top tenth."""


@dataclass(frozen=True)
class ValidationReport:
    calibration_end: datetime
    holdout_end: datetime
    holdout_days: float
    buyers: int
    """Buyers who had ordered by the calibration end: the ones predicted."""
    repeat_buyers: int
    new_in_holdout: int
    """Buyers whose first order fell in the holdout: no prediction, left out."""
    purchases: FittedModel
    spend: FittedModel
    groups: tuple[FrequencyGroup, ...]
    model: ModelScore
    baseline: ModelScore
    actual_purchases: float
    """Holdout orders of the predicted buyers, all told (repeat orders; first orders in
    the holdout are the new buyers')."""
    predicted_purchases: float
    candidates: tuple[PurchaseCandidate, ...] = ()
    """Every purchase model tried (BG/NBD, MBG/NBD), the winner among them: the one
    with the lower held-out mean absolute error on orders per buyer is ``purchases``."""

    @property
    def fitted(self) -> tuple[FittedModel, ...]:
        """Every model fitted: each purchase model tried, then the spend model."""
        return (*(c.fitted for c in self.candidates), self.spend)

    @property
    def chosen(self) -> str:
        """The purchase model that won on the holdout (and scores the base)."""
        return self.purchases.name

    @property
    def choice(self) -> str:
        """One sentence on which purchase model won, with both figures."""
        if len(self.candidates) < 2:
            return f"{self.chosen} is the only purchase model that could be fitted."
        ranked = sorted(self.candidates, key=lambda c: c.purchases_mae)
        return (
            f"{ranked[0].fitted.name} wins on held-out orders per buyer: "
            + ", ".join(
                f"{c.fitted.name} mean absolute error {c.purchases_mae:.4f}" for c in ranked
            )
            + "."
        )

    @property
    def model_wins(self) -> bool:
        """Whether the model's held-out error on orders per buyer is below the baseline's."""
        return self.model.purchases_mae < self.baseline.purchases_mae

    @property
    def verdict(self) -> str:
        """One sentence an analyst reads first."""
        mae, naive = self.model.purchases_mae, self.baseline.purchases_mae
        if self.model_wins:
            return (
                f"{self.purchases.name} beats the naive baseline on held-out orders per buyer: "
                f"mean absolute error {mae:.3f} against {naive:.3f}."
            )
        return (
            f"{self.purchases.name} does not beat the naive baseline on held-out orders per "
            f"buyer: mean absolute error {mae:.3f} against {naive:.3f}."
        )


def validate_models(
    orders: OrderLog, calibration_end: datetime, holdout_end: datetime
) -> ValidationReport:
    """Fit on the orders up to ``calibration_end``, predict ``(calibration_end, holdout_end]``.

    Raises :class:`CannotValidate` for a holdout that does not follow the calibration,
    or a calibration period with too few repeat buyers to fit.
    """
    if calibration_end.tzinfo is None or holdout_end.tzinfo is None:
        raise ValueError("the calibration and holdout ends must be aware datetimes")
    if holdout_end <= calibration_end:
        raise CannotValidate("the holdout end must be after the calibration end")
    cut, end = calibration_end.timestamp(), holdout_end.timestamp()
    periods = _Periods.of(orders, cut, end)
    if periods.size == 0:
        raise CannotValidate("no buyer ordered by the calibration end: pick a later one")
    repeat_buyers = int(np.count_nonzero(periods.x > 0))
    if repeat_buyers < MIN_REPEAT_BUYERS:
        raise CannotValidate(
            f"{repeat_buyers} buyers with a repeat order by the calibration end; "
            f"the models need {MIN_REPEAT_BUYERS}: pick a later calibration end"
        )
    horizon = (end - cut) / SECONDS_PER_DAY
    try:
        spenders = (periods.x > 0) & (periods.mean_value > 0)
        n, mean = periods.x[spenders] + 1.0, periods.mean_value[spenders]
        spend, spend_fit = fit_gamma_gamma(n, mean)
    except ModelFitError as error:
        raise CannotValidate(f"the models cannot be fitted on this history: {error}") from error
    tried = _purchase_candidates(periods, horizon)
    if not tried:
        raise CannotValidate("no purchase model can be fitted on this history")
    winner = min(tried, key=lambda t: t[0].purchases_mae)
    chosen, model_orders = winner[0].fitted, winner[1]

    gg_se = standard_errors(
        lambda p: float(gamma_gamma_log_likelihood(GammaGammaParams(*p), n, mean).sum()),
        (spend.p, spend.q, spend.v),
    )
    order_value = expected_average_spend(
        spend, periods.x + 1.0, np.maximum(periods.mean_value, 0.0)
    )
    model_spend = model_orders * order_value
    rate = np.divide(periods.x, periods.T, out=np.zeros(periods.size), where=periods.T > 0)
    naive_orders = rate * horizon
    naive_spend = naive_orders * periods.mean_value

    return ValidationReport(
        calibration_end=calibration_end,
        holdout_end=holdout_end,
        holdout_days=horizon,
        buyers=periods.size,
        repeat_buyers=repeat_buyers,
        new_in_holdout=periods.new_in_holdout,
        purchases=chosen,
        spend=FittedModel(
            "Gamma-Gamma",
            _estimates(("p", "q", "v"), (spend.p, spend.q, spend.v), gg_se),
            spend_fit.log_likelihood,
            spend_fit.buyers,
            spend_fit.converged,
        ),
        groups=_groups(periods.x, periods.future_orders, model_orders, naive_orders),
        model=_score(f"{chosen.name} + Gamma-Gamma", periods, model_orders, model_spend),
        baseline=_score("naive: calibration rate carried on", periods, naive_orders, naive_spend),
        actual_purchases=float(periods.future_orders.sum()),
        predicted_purchases=float(model_orders.sum()),
        candidates=tuple(candidate for candidate, _ in tried),
    )


def _purchase_log_likelihood(
    name: str, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> Callable[[tuple[float, ...]], float]:
    def total(p: tuple[float, ...]) -> float:
        if name == "BG/NBD":
            return float(bgnbd_log_likelihood(BgNbdParams(*p), x, t_x, T).sum())
        return float(mbgnbd_log_likelihood(MbgNbdParams(*p), x, t_x, T).sum())

    return total


def _purchase_candidates(
    periods: _Periods, horizon: float
) -> list[tuple[PurchaseCandidate, FloatArray]]:
    """BG/NBD and MBG/NBD fitted on the calibration period, each with its holdout
    predictions; a model that cannot be fitted is left out."""
    x, t_x, T = periods.x, periods.t_x, periods.T
    found: list[tuple[PurchaseCandidate, FloatArray]] = []
    fits: list[tuple[str, BgNbdParams | MbgNbdParams, FitDiagnostics]] = []
    with contextlib.suppress(ModelFitError):
        fits.append(("BG/NBD", *fit_bgnbd(x, t_x, T)))
    with contextlib.suppress(ModelFitError):
        fits.append(("MBG/NBD", *fit_mbgnbd(x, t_x, T)))
    for name, params, fit in fits:
        values = (params.r, params.alpha, params.a, params.b)
        errors = standard_errors(_purchase_log_likelihood(name, x, t_x, T), values)
        with np.errstate(all="ignore"):
            orders = expected_purchases(params, horizon, x, t_x, T)
        if not np.all(np.isfinite(orders)):
            continue
        fitted = FittedModel(
            name,
            _estimates(("r", "alpha", "a", "b"), values, errors),
            fit.log_likelihood,
            fit.buyers,
            fit.converged,
        )
        candidate = PurchaseCandidate(
            fitted=fitted,
            purchases_mae=float(np.mean(np.abs(orders - periods.future_orders))),
            purchases_correlation=_correlation(orders, periods.future_orders),
            predicted_purchases=float(orders.sum()),
        )
        found.append((candidate, orders))
    return found


def choose_purchase_model(orders: OrderLog, at: datetime, holdout_days: float) -> tuple[str, str]:
    """The purchase model that predicts this shop's last ``holdout_days`` before ``at``
    best, fitted on the history before them (:func:`validate_models`), and one line
    on why: ``BG/NBD`` (the default) where the history cannot tell."""
    cut = datetime.fromtimestamp(at.timestamp() - holdout_days * SECONDS_PER_DAY, at.tzinfo)
    try:
        report = validate_models(orders, cut, at)
    except CannotValidate as why:
        return "BG/NBD", f"purchase model BG/NBD, the default: the history cannot choose ({why})"
    return report.chosen, (
        f"purchase model {report.chosen}, chosen on the last {holdout_days:g} days held out: "
        f"{report.choice}"
    )


def standard_errors(
    log_likelihood: Callable[[tuple[float, ...]], float], at: tuple[float, ...]
) -> tuple[float, ...]:
    """Each parameter's standard error at a maximum of ``log_likelihood``.

    The Hessian of the negative log-likelihood is taken by central differences in the
    log of each (positive) parameter and inverted; at a maximum the gradient is zero,
    so ``se(p_i) = p_i sqrt(inv(H_log)_ii)`` exactly. NaN where the Hessian is singular
    or the variance comes out negative (a flat or saddle direction).
    """
    covariance = log_covariance(log_likelihood, at)
    if covariance is None:
        return tuple(math.nan for _ in at)
    variance = np.diag(covariance)
    return tuple(
        float(p * math.sqrt(v)) if v > 0 and math.isfinite(v) else math.nan
        for p, v in zip(at, variance, strict=True)
    )


def log_covariance(
    log_likelihood: Callable[[tuple[float, ...]], float], at: tuple[float, ...]
) -> FloatArray | None:
    """The covariance of the log-parameters at a maximum of ``log_likelihood``: the
    inverse of the Hessian of the negative log-likelihood in them (central
    differences); ``None`` where it is singular."""
    theta = np.log(np.asarray(at, dtype=np.float64))
    size = len(theta)

    def value(shift: FloatArray) -> float:
        return -log_likelihood(tuple(float(v) for v in np.exp(theta + shift)))

    steps = np.eye(size) * _STEP
    centre = value(np.zeros(size))
    hessian = np.empty((size, size))
    for i in range(size):
        up, down = value(steps[i]), value(-steps[i])
        hessian[i, i] = (up - 2.0 * centre + down) / _STEP**2
        for j in range(i):
            hessian[i, j] = hessian[j, i] = (
                value(steps[i] + steps[j])
                - value(steps[i] - steps[j])
                - value(-steps[i] + steps[j])
                + value(-steps[i] - steps[j])
            ) / (4.0 * _STEP**2)
    try:
        covariance: FloatArray = np.asarray(np.linalg.inv(hessian), dtype=np.float64)
    except np.linalg.LinAlgError:
        return None
    return covariance if bool(np.all(np.isfinite(covariance))) else None


# --- the two periods, per buyer ------------------------------------------------------


@dataclass(frozen=True)
class _Periods:
    """The buyers who had ordered by the calibration end, in model inputs (days)."""

    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    mean_value: FloatArray
    """Mean calibration order total."""
    future_orders: FloatArray
    future_spend: FloatArray
    new_in_holdout: int

    @property
    def size(self) -> int:
        return len(self.x)

    @classmethod
    def of(cls, orders: OrderLog, cut: float, end: float) -> _Periods:
        size = orders.buyers
        before = orders.at <= cut
        during = (orders.at > cut) & (orders.at <= end)
        who, at = orders.buyer[before], orders.at[before]
        count = np.bincount(who, minlength=size).astype(np.float64)
        value = np.bincount(who, weights=orders.total[before], minlength=size).astype(np.float64)
        first = np.full(size, np.inf)
        last = np.full(size, -np.inf)
        np.minimum.at(first, who, at)
        np.maximum.at(last, who, at)
        later = orders.buyer[during]
        future_orders = np.bincount(later, minlength=size).astype(np.float64)
        future_spend = np.bincount(later, weights=orders.total[during], minlength=size).astype(
            np.float64
        )
        known = count > 0
        new = int(np.count_nonzero(~known & (future_orders > 0)))
        first, last, count = first[known], last[known], count[known]
        return cls(
            x=count - 1.0,
            t_x=(last - first) / SECONDS_PER_DAY,
            T=(cut - first) / SECONDS_PER_DAY,
            mean_value=value[known] / count,
            future_orders=future_orders[known],
            future_spend=future_spend[known],
            new_in_holdout=new,
        )


def _estimates(
    names: Sequence[str], values: Sequence[float], errors: Sequence[float]
) -> tuple[ParameterEstimate, ...]:
    return tuple(
        ParameterEstimate(n, float(v), float(e))
        for n, v, e in zip(names, values, errors, strict=True)
    )


def _groups(
    x: FloatArray, actual: FloatArray, model: FloatArray, baseline: FloatArray
) -> tuple[FrequencyGroup, ...]:
    group = np.minimum(x, FREQUENCY_GROUPS).astype(np.intp)
    rows = []
    for g in range(FREQUENCY_GROUPS + 1):
        members = group == g
        size = int(np.count_nonzero(members))
        if size == 0:
            continue
        rows.append(
            FrequencyGroup(
                label=f"{g}+" if g == FREQUENCY_GROUPS else str(g),
                buyers=size,
                actual=float(actual[members].mean()),
                model=float(model[members].mean()),
                baseline=float(baseline[members].mean()),
            )
        )
    return tuple(rows)


def _score(name: str, periods: _Periods, orders: FloatArray, spend: FloatArray) -> ModelScore:
    return ModelScore(
        name=name,
        purchases_mae=float(np.mean(np.abs(orders - periods.future_orders))),
        purchases_correlation=_correlation(orders, periods.future_orders),
        spend_mae=float(np.mean(np.abs(spend - periods.future_spend))),
        spend_correlation=_correlation(spend, periods.future_spend),
        top_decile_share=_top_decile_share(spend, periods.future_spend),
    )


def _correlation(predicted: FloatArray, actual: FloatArray) -> float:
    if len(actual) < 2 or np.std(predicted) == 0 or np.std(actual) == 0:
        return math.nan
    return float(np.corrcoef(predicted, actual)[0, 1])


def _top_decile_share(predicted: FloatArray, actual: FloatArray) -> float:
    """Of the top tenth by ``actual`` (those above zero), the share in the top tenth
    by ``predicted``; ties broken by the buyer's place in the input, both sides alike."""
    k = math.ceil(len(actual) / 10)
    top_actual = np.argsort(-actual, kind="stable")[:k]
    top_actual = top_actual[actual[top_actual] > 0]
    if len(top_actual) == 0:
        return math.nan
    top_predicted = np.argsort(-predicted, kind="stable")[:k]
    return float(len(np.intersect1d(top_actual, top_predicted)) / len(top_actual))


# --- the picture ---------------------------------------------------------------------

_WIDTH: Final = 560
_HEIGHT: Final = 320
_MARGIN: Final = (48, 16, 40, 52)
"""Top, right, bottom, left, in pixels."""
_SERIES: Final = (
    ("actual", "#222222", ""),
    ("model", "#1f6fd1", ""),
    ("baseline", "#c0392b", "6 4"),
)


def calibration_holdout_svg(report: ValidationReport) -> str:
    """The calibration/holdout plot: mean holdout orders per calibration frequency,
    actual against the model and the baseline, as a standalone SVG document."""
    groups = report.groups
    top, right, bottom, left = _MARGIN
    plot_w, plot_h = _WIDTH - left - right, _HEIGHT - top - bottom
    highest = max([g.actual for g in groups] + [g.model for g in groups] + [0.0])
    highest = max(highest, max((g.baseline for g in groups), default=0.0))
    ceiling = _nice_ceiling(highest)

    def px(i: int) -> float:
        return left + (plot_w * (i + 0.5) / len(groups) if groups else 0.0)

    def py(v: float) -> float:
        return top + plot_h * (1.0 - v / ceiling)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
        f'viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        'aria-label="Mean holdout orders by calibration repeat orders: actual, model, baseline">',
        "<title>Calibration/holdout: actual, model and baseline</title>",
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#888888"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#888888"/>',
    ]
    for tick in range(5):
        value = ceiling * tick / 4
        y = py(value)
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
            f"{value:.2g}</text>"
        )
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eeeeee"/>'
        )
    for i, group in enumerate(groups):
        parts.append(
            f'<text x="{px(i):.1f}" y="{top + plot_h + 16}" font-size="11" '
            f'text-anchor="middle">{group.label}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{_HEIGHT - 8}" font-size="12" '
        'text-anchor="middle">repeat orders in the calibration period</text>'
    )
    parts.append(
        f'<text x="14" y="{top + plot_h / 2:.1f}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">mean orders in the holdout</text>'
    )
    for n, (field_name, colour, dash) in enumerate(_SERIES):
        points = " ".join(
            f"{px(i):.1f},{py(getattr(g, field_name)):.1f}" for i, g in enumerate(groups)
        )
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<polyline class="{field_name}" points="{points}" fill="none" stroke="{colour}" '
            f'stroke-width="2"{dashes}/>'
        )
        legend_x = left + 8 + n * 150
        parts.append(
            f'<line x1="{legend_x}" y1="20" x2="{legend_x + 24}" y2="20" stroke="{colour}" '
            f'stroke-width="2"{dashes}/>'
        )
        label = {"actual": "actual", "model": report.purchases.name, "baseline": "naive"}
        parts.append(f'<text x="{legend_x + 30}" y="24" font-size="12">{label[field_name]}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten at or above ``value``."""
    if not value > 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in (1.0, 2.0, 2.5, 5.0, 10.0) if step * power >= value)
