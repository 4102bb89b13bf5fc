"""BG/NBD, Gamma-Gamma and CLV: the paper's formulas, recovery of known parameters, CLV's shape.

Recovery tolerance: on buyers simulated from known parameters (fixed seeds), every
fitted parameter is within three standard errors of the truth, the standard errors
taken from the observed information (the numerical Hessian of the log-likelihood
at the fit), and those standard errors are small: under 12% of the parameter at
these sizes (30,000 buyers for BG/NBD, 50,000 for Gamma-Gamma). BG/NBD's a and b,
and Gamma-Gamma's p and v, trade off against each other, so they are the loosest;
what the data pin down well (the rate r/alpha, the mean dropout a/(a+b), the mean
order value) is also checked within a few percent.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy.special import hyp2f1

from shared.domain.predictions import (
    BgNbdParams,
    GammaGammaParams,
    ModelFitError,
    bgnbd_log_likelihood,
    customer_equity,
    customer_lifetime_value,
    expected_average_spend,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma_log_likelihood,
    p_alive,
)
from tests.unit.simulated_buyers import (
    CDNOW_PURCHASES,
    CDNOW_SPEND,
    simulate_purchases,
    simulate_spend,
)

# Hand-made buyers: (repeat orders x, last repeat t_x, age T), in weeks.
BUYERS = [(0, 0.0, 10.0), (1, 5.0, 10.0), (3, 8.5, 12.0), (10, 30.0, 31.0), (2, 0.0, 5.0)]


def beta(u: float, v: float) -> float:
    return math.exp(math.lgamma(u) + math.lgamma(v) - math.lgamma(u + v))


def paper_bgnbd_likelihood(p: BgNbdParams, x: int, t_x: float, T: float) -> float:
    """The BG/NBD likelihood as the paper prints it, term by term."""
    rate_part = math.gamma(p.r + x) * p.alpha**p.r / math.gamma(p.r)
    alive = beta(p.a, p.b + x) / beta(p.a, p.b) * rate_part / (p.alpha + T) ** (p.r + x)
    if x == 0:
        return alive
    left = beta(p.a + 1, p.b + x - 1) / beta(p.a, p.b) * rate_part / (p.alpha + t_x) ** (p.r + x)
    return alive + left


def paper_conditional_expectation(p: BgNbdParams, t: float, x: int, t_x: float, T: float) -> float:
    """The paper's conditional expectation, with its 2F1 exactly as printed."""
    z = t / (p.alpha + T + t)
    bracket = 1 - ((p.alpha + T) / (p.alpha + T + t)) ** (p.r + x) * hyp2f1(
        p.r + x, p.b + x, p.a + p.b + x - 1, z
    )
    odds = p.a / (p.b + x - 1) * ((p.alpha + T) / (p.alpha + t_x)) ** (p.r + x) if x > 0 else 0.0
    return (p.a + p.b + x - 1) / (p.a - 1) * bracket / (1 + odds)


def columns(buyers: list[tuple[int, float, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, t_x, T = zip(*buyers, strict=True)
    return np.array(x, float), np.array(t_x), np.array(T)


def test_bgnbd_log_likelihood_matches_the_paper_buyer_by_buyer() -> None:
    params = BgNbdParams(r=0.3, alpha=5.0, a=0.7, b=2.0)
    expected = [math.log(paper_bgnbd_likelihood(params, *buyer)) for buyer in BUYERS]

    assert bgnbd_log_likelihood(params, *columns(BUYERS)) == pytest.approx(expected, rel=1e-12)


def test_gamma_gamma_log_likelihood_matches_the_paper_buyer_by_buyer() -> None:
    params = GammaGammaParams(p=6.0, q=3.5, v=15.0)
    buyers = [(1, 20.0), (2, 35.5), (5, 12.0), (12, 80.0)]

    def paper(n: int, m: float) -> float:
        p, q, v = params.p, params.q, params.v
        return (
            math.lgamma(p * n + q)
            - math.lgamma(p * n)
            - math.lgamma(q)
            + q * math.log(v)
            + (p * n - 1) * math.log(m)
            + p * n * math.log(n)
            - (p * n + q) * math.log(v + m * n)
        )

    n, m = (np.array(column, float) for column in zip(*buyers, strict=True))

    assert gamma_gamma_log_likelihood(params, n, m) == pytest.approx(
        [paper(*buyer) for buyer in buyers], rel=1e-12
    )


def standard_errors(loglik: Callable[[np.ndarray], float], at: np.ndarray) -> np.ndarray:
    """From the observed information: the inverse of minus the Hessian of the total."""
    size = len(at)
    step = 1e-4 * at
    hessian = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            di, dj = np.eye(size)[i] * step[i], np.eye(size)[j] * step[j]
            hessian[i, j] = (
                loglik(at + di + dj)
                - loglik(at + di - dj)
                - loglik(at - di + dj)
                + loglik(at - di - dj)
            ) / (4 * step[i] * step[j])
    hessian = (hessian + hessian.T) / 2  # rounding leaves it a little lopsided
    return np.sqrt(np.diag(np.linalg.inv(-hessian)))


def assert_recovered(fitted: np.ndarray, truth: np.ndarray, errors: np.ndarray) -> None:
    assert np.all(errors < 0.12 * truth), f"standard errors {errors} too large to tell"
    assert np.all(np.abs(fitted - truth) <= 3 * errors), f"{fitted} is not {truth} +- 3 x {errors}"


def test_bgnbd_fit_recovers_the_cdnow_parameters() -> None:
    rng = np.random.default_rng(2005)
    base = simulate_purchases(CDNOW_PURCHASES, rng.uniform(27.0, 39.0, 30_000), 0.0, rng)

    fitted, fit = fit_bgnbd(base.x, base.t_x, base.T)

    def loglik(v: np.ndarray) -> float:
        return float(bgnbd_log_likelihood(BgNbdParams(*v), base.x, base.t_x, base.T).sum())

    assert fit.converged
    assert fit.buyers == 30_000
    estimate = np.array([fitted.r, fitted.alpha, fitted.a, fitted.b])
    truth = CDNOW_PURCHASES
    assert_recovered(
        estimate,
        np.array([truth.r, truth.alpha, truth.a, truth.b]),
        standard_errors(loglik, estimate),
    )
    assert fitted.r / fitted.alpha == pytest.approx(truth.r / truth.alpha, rel=0.03)
    assert fitted.a / (fitted.a + fitted.b) == pytest.approx(
        truth.a / (truth.a + truth.b), rel=0.05
    )
    # The maximum is a maximum: the truth fits these data no better.
    assert loglik(np.array([truth.r, truth.alpha, truth.a, truth.b])) <= fit.log_likelihood
    assert fit.log_likelihood == pytest.approx(loglik(estimate), rel=1e-9)


def test_bgnbd_fit_does_not_depend_on_the_time_unit() -> None:
    rng = np.random.default_rng(7)
    base = simulate_purchases(CDNOW_PURCHASES, rng.uniform(27.0, 39.0, 5_000), 0.0, rng)

    weeks, _ = fit_bgnbd(base.x, base.t_x, base.T)
    days, _ = fit_bgnbd(base.x, base.t_x * 7, base.T * 7)

    assert days.alpha == pytest.approx(weeks.alpha * 7, rel=1e-4)
    assert (days.r, days.a, days.b) == pytest.approx((weeks.r, weeks.a, weeks.b), rel=1e-4)


def test_gamma_gamma_fit_recovers_the_cdnow_parameters() -> None:
    rng = np.random.default_rng(2005)
    orders = 1.0 + rng.poisson(3.0, 50_000)
    mean_value = simulate_spend(CDNOW_SPEND, orders, rng)

    fitted, fit = fit_gamma_gamma(orders, mean_value)

    def loglik(v: np.ndarray) -> float:
        return float(gamma_gamma_log_likelihood(GammaGammaParams(*v), orders, mean_value).sum())

    assert fit.converged
    estimate = np.array([fitted.p, fitted.q, fitted.v])
    truth = np.array([CDNOW_SPEND.p, CDNOW_SPEND.q, CDNOW_SPEND.v])
    assert_recovered(estimate, truth, standard_errors(loglik, estimate))
    assert fitted.mean_order_value == pytest.approx(CDNOW_SPEND.mean_order_value, rel=0.02)
    assert loglik(truth) <= fit.log_likelihood
    assert fit.log_likelihood == pytest.approx(loglik(estimate), rel=1e-9)


def test_a_base_without_repeat_orders_cannot_fit_bgnbd() -> None:
    with pytest.raises(ModelFitError, match="repeat orders"):
        fit_bgnbd([0, 0, 0], [0.0, 0.0, 0.0], [3.0, 5.0, 9.0])


def test_p_alive_is_one_for_a_buyer_with_no_repeat_order() -> None:
    ages = np.array([0.0, 1.0, 52.0, 520.0])

    assert p_alive(CDNOW_PURCHASES, np.zeros(4), np.zeros(4), ages).tolist() == [1.0] * 4


def test_p_alive_falls_as_the_silence_grows() -> None:
    silence = np.array([0.0, 2.0, 5.0, 10.0, 20.0, 40.0])

    alive = p_alive(CDNOW_PURCHASES, np.full(6, 3.0), np.full(6, 10.0), 10.0 + silence)

    assert np.all(np.diff(alive) < 0)
    # Right after an order the buyer may have left with it: 1 / (1 + a/(b+x-1)).
    assert alive[0] == pytest.approx(1 / (1 + 0.79 / (2.43 + 2)))
    assert alive[-1] < 0.1


def test_p_alive_matches_the_share_of_simulated_buyers_still_alive() -> None:
    rng = np.random.default_rng(11)
    base = simulate_purchases(CDNOW_PURCHASES, rng.uniform(27.0, 39.0, 20_000), 0.0, rng)

    alive = p_alive(CDNOW_PURCHASES, base.x, base.t_x, base.T)

    assert alive.mean() == pytest.approx(base.alive_at_T.mean(), abs=0.01)


def test_expected_purchases_match_the_paper_as_printed() -> None:
    x, t_x, T = columns(BUYERS)

    expected = [paper_conditional_expectation(CDNOW_PURCHASES, 39.0, *buyer) for buyer in BUYERS]

    assert expected_purchases(CDNOW_PURCHASES, 39.0, x, t_x, T) == pytest.approx(expected, rel=1e-9)


def test_expected_purchases_predict_the_next_period_of_a_simulated_base() -> None:
    rng = np.random.default_rng(13)
    base = simulate_purchases(CDNOW_PURCHASES, rng.uniform(27.0, 39.0, 20_000), 39.0, rng)

    predicted = expected_purchases(CDNOW_PURCHASES, 39.0, base.x, base.t_x, base.T)

    assert predicted.sum() == pytest.approx(base.future.sum(), rel=0.05)


def test_expected_purchases_stay_finite_for_a_buyer_with_a_thousand_orders() -> None:
    daily = BgNbdParams(r=0.24, alpha=30.0, a=0.79, b=2.43)

    predicted = expected_purchases(daily, 365.0, [1000.0], [999.0], [1000.0])

    # About one order a day, and surely alive: a year brings about 365 more.
    assert 300 < predicted[0] < 400


def test_expected_purchases_grow_with_the_horizon_from_zero() -> None:
    x, t_x, T = columns(BUYERS)
    horizons = [0.0, 1.0, 4.0, 13.0, 52.0]

    predicted = np.array([expected_purchases(CDNOW_PURCHASES, t, x, t_x, T) for t in horizons])

    assert predicted[0].tolist() == [0.0] * len(BUYERS)
    assert np.all(np.diff(predicted, axis=0) > 0)


def test_expected_spend_shrinks_a_buyers_mean_toward_the_base() -> None:
    base_mean = CDNOW_SPEND.mean_order_value

    spend = expected_average_spend(CDNOW_SPEND, [1, 10, 100], [100.0, 100.0, 100.0])

    assert base_mean < spend[0] < spend[1] < spend[2] < 100.0
    assert expected_average_spend(CDNOW_SPEND, [0], [0.0])[0] == pytest.approx(base_mean)


DAILY = BgNbdParams(r=0.24, alpha=4.41 * 7, a=0.79, b=2.43)
DAYS_X, DAYS_T_X, DAYS_T = (
    np.array([0.0, 2.0, 6.0]),
    np.array([0.0, 60.0, 200.0]),
    np.array([30.0, 120.0, 210.0]),
)
SPEND = np.array([40.0, 55.0, 30.0])


def clv(months: int = 12, discount: float = 0.01, margin: float = 0.3) -> np.ndarray:
    return customer_lifetime_value(
        DAILY,
        DAYS_X,
        DAYS_T_X,
        DAYS_T,
        SPEND,
        months=months,
        monthly_discount_rate=discount,
        margin=margin,
        month_length=30.4375,
    )


def test_clv_grows_with_margin_and_horizon() -> None:
    assert np.all(clv(margin=0.2) < clv(margin=0.3))
    assert np.all(clv(margin=0.6) == pytest.approx(2 * clv(margin=0.3)))
    assert np.all(clv(months=3) < clv(months=12))
    assert np.all(clv(months=12) < clv(months=36))


def test_clv_is_zero_with_no_margin_or_no_horizon() -> None:
    assert clv(margin=0.0).tolist() == [0.0, 0.0, 0.0]
    assert clv(months=0).tolist() == [0.0, 0.0, 0.0]


def test_discounting_lowers_clv() -> None:
    undiscounted = clv(discount=0.0)

    assert np.all(clv(discount=0.01) < undiscounted)
    assert np.all(clv(discount=0.05) < clv(discount=0.01))
    # Undiscounted, the months add up to the expected orders over the whole horizon.
    year = expected_purchases(DAILY, 12 * 30.4375, DAYS_X, DAYS_T_X, DAYS_T)
    assert undiscounted == pytest.approx(0.3 * SPEND * year)


def test_customer_equity_is_the_sum_of_clv() -> None:
    values = clv()

    assert customer_equity(values) == pytest.approx(values.sum())
    assert customer_equity([1.0, float("nan"), 2.5]) == 3.5


def test_expected_purchases_stay_finite_when_dropout_is_the_same_for_everyone() -> None:
    """A base with no sign of buyers leaving at different rates fits very large ``a`` and
    ``b``; the predictions must still come out, approaching the narrow-Beta limit."""
    x = np.array([0.0, 1.0, 3.0, 10.0, 50.0])
    t_x = np.array([0.0, 30.0, 100.0, 250.0, 290.0])
    T = np.array([5.0, 300.0, 300.0, 300.0, 300.0])
    predictions = [
        expected_purchases(BgNbdParams(0.82, 5.7, np.exp(s), 2 * np.exp(s)), 365.25, x, t_x, T)
        for s in (7.0, 9.0, 12.0)
    ]
    for p in predictions:
        assert np.all(np.isfinite(p))
        assert np.all(p >= 0)
    np.testing.assert_allclose(predictions[1], predictions[2], rtol=0.01)
