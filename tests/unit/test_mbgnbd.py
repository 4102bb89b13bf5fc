"""MBG/NBD, the second purchase model: the paper's likelihood, recovery of known
parameters on simulated buyers, and held-out prediction."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np

from shared.domain.predictions import (
    MbgNbdParams,
    expected_purchases,
    fit_mbgnbd,
    mbgnbd_log_likelihood,
    p_alive,
)
from shared.domain.scoring import BaseFacts, ScoringPolicy, score_base

TRUTH = MbgNbdParams(r=0.5, alpha=20.0, a=1.2, b=3.5)
"""In days: about one order every 40 days, a quarter leave after each order."""


def simulate(
    params: MbgNbdParams, T: np.ndarray, holdout: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, holdout orders): a buyer may leave right after any order, the first too."""
    size = len(T)
    rate = rng.gamma(params.r, 1.0 / params.alpha, size)
    repeats = rng.geometric(rng.beta(params.a, params.b, size)) - 1
    x, t_x, future = np.zeros(size), np.zeros(size), np.zeros(size)
    clock, placed = np.zeros(size), np.zeros(size, dtype=np.int64)
    active = placed < repeats
    while np.any(active):
        clock = np.where(active, clock + rng.exponential(1.0, size) / rate, clock)
        active &= clock <= T + holdout
        seen = active & (clock <= T)
        x += seen
        t_x = np.where(seen, clock, t_x)
        future += active & (clock > T)
        placed += active
        active &= placed < repeats
    return x, t_x, future


def beta(u: float, v: float) -> float:
    return math.exp(math.lgamma(u) + math.lgamma(v) - math.lgamma(u + v))


def test_the_log_likelihood_is_the_papers_buyer_by_buyer() -> None:
    p = TRUTH
    for x, t_x, T in ((0, 0.0, 30.0), (1, 12.0, 40.0), (4, 70.0, 90.0)):
        head = math.gamma(p.r + x) * p.alpha**p.r / math.gamma(p.r)
        alive = beta(p.a, p.b + x + 1) / beta(p.a, p.b) / (p.alpha + T) ** (p.r + x)
        left = beta(p.a + 1, p.b + x) / beta(p.a, p.b) / (p.alpha + t_x) ** (p.r + x)
        ours = mbgnbd_log_likelihood(p, [x], [t_x], [T])[0]
        assert math.isclose(ours, math.log(head * (alive + left)), rel_tol=1e-10)


def test_a_one_order_buyer_may_have_left() -> None:
    alive = p_alive(TRUTH, np.array([0.0, 0.0]), np.array([0.0, 0.0]), np.array([1.0, 300.0]))

    assert 0.0 < alive[1] < alive[0] < 1.0


def test_the_fit_recovers_known_parameters_and_predicts_the_holdout() -> None:
    rng = np.random.default_rng(3)
    T = rng.uniform(30.0, 720.0, 30_000)
    x, t_x, future = simulate(TRUTH, T, 180.0, rng)

    fitted, fit = fit_mbgnbd(x, t_x, T)

    assert fit.converged
    assert not fit.at_bound
    assert math.isclose(fitted.r / fitted.alpha, TRUTH.r / TRUTH.alpha, rel_tol=0.05)
    assert math.isclose(
        fitted.a / (fitted.a + fitted.b), TRUTH.a / (TRUTH.a + TRUTH.b), rel_tol=0.1
    )
    for name in ("r", "alpha", "a", "b"):
        assert math.isclose(getattr(fitted, name), getattr(TRUTH, name), rel_tol=0.25), name
    predicted = expected_purchases(fitted, 180.0, x, t_x, T)
    assert np.all(np.isfinite(predicted))
    assert math.isclose(predicted.sum(), future.sum(), rel_tol=0.05)


def test_a_base_scored_with_mbgnbd_says_so() -> None:
    rng = np.random.default_rng(5)
    T = rng.uniform(30.0, 720.0, 3_000)
    x, t_x, _ = simulate(TRUTH, T, 0.0, rng)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    first = np.array([(now - timedelta(days=float(age))).timestamp() for age in T])
    base = BaseFacts(
        [f"b{i}" for i in range(len(T))],
        (x + 1).astype(np.int64),
        (x + 1) * 50.0 * rng.uniform(0.5, 1.5, len(T)),
        first,
        first + t_x * 86_400.0,
    )

    scores = score_base(base, now, ScoringPolicy(purchase_model="MBG/NBD"))

    assert scores.models is not None
    assert scores.models.purchase_model == "MBG/NBD"
    assert isinstance(scores.models.purchases, MbgNbdParams)
    assert np.all(np.isfinite(scores.clv))
    assert np.all(scores.p_alive < 1.0), "under MBG/NBD a one-order buyer may have left"
