"""When the models cannot be fitted or land on degenerate parameters, scoring falls back
to the empirical rate and the shrunk mean spend, says so, and never yields NaN or inf."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.predictions import (
    BgNbdParams,
    EmpiricalPurchases,
    EmpiricalSpend,
    FitDiagnostics,
    GammaGammaParams,
    degenerate_fit,
    empirical_purchases,
    empirical_spend,
    expected_average_spend,
    expected_purchases,
    p_alive,
)
from shared.domain.scoring import BaseScores, BuyerFacts, ScoringPolicy, score_buyers

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def plain_base(seed: int = 7) -> list[BuyerFacts]:
    """The base of issue 15: 60 buyers, 2-6 orders 10-30 days apart, order values 500 or
    10000 give or take 20%. BG/NBD lands on its bounds there."""
    rng = np.random.default_rng(seed)
    buyers = []
    for i in range(60):
        orders = int(rng.integers(2, 7))
        gaps = rng.uniform(10.0, 30.0, orders - 1)
        first = NOW - timedelta(days=float(gaps.sum() + rng.uniform(1.0, 30.0)))
        last = first + timedelta(days=float(gaps.sum()))
        level = 500.0 if i % 2 else 10_000.0
        revenue = float(np.sum(level * rng.uniform(0.8, 1.2, orders)))
        buyers.append(BuyerFacts(f"b{i}", orders, Decimal(f"{revenue:.2f}"), first, last))
    return buyers


def all_finite(scores: BaseScores) -> bool:
    return all(
        value is not None and np.isfinite(value)
        for row in scores.rows()
        if row.rfm_segment is not None
        for value in (row.p_alive, row.expected_purchases, row.expected_spend, row.clv)
    )


def test_the_degenerate_base_of_the_issue_falls_back_and_says_so() -> None:
    scores = score_buyers(plain_base(), NOW)

    assert scores.models is not None
    assert "purchases" in scores.models.fallbacks
    assert scores.models.purchase_model == "empirical rate (fallback)"
    assert any(note.startswith("BG/NBD not used:") for note in scores.notes)
    assert all_finite(scores)
    assert scores.customer_equity > 0
    # The buyers who spend 10000 an order are worth more than those who spend 500.
    rows = list(scores.rows())
    big = np.mean([r.clv for r in rows[0::2] if r.clv is not None])
    small = np.mean([r.clv for r in rows[1::2] if r.clv is not None])
    assert big > 5 * small


def test_a_base_too_small_to_fit_says_how_many_repeat_buyers_it_needs() -> None:
    first = datetime(2026, 5, 1, tzinfo=UTC)
    buyers = [
        BuyerFacts(
            f"b{i}", 1, Decimal(10 + i), first + timedelta(days=i), first + timedelta(days=i)
        )
        for i in range(20)
    ]
    buyers.append(BuyerFacts("again", 3, Decimal(60), first, first + timedelta(days=6)))

    scores = score_buyers(buyers, NOW, ScoringPolicy(min_repeat_buyers=5))

    assert scores.notes == (
        "1 of 21 buyers have a repeat order; fitting the models needs 5 buyers with a "
        "repeat order: orders scored with the empirical rate and spend with the shrunk "
        "mean (fallbacks)",
    )
    assert scores.models is not None
    assert scores.models.fallbacks == ("purchases", "spend")
    assert all_finite(scores)
    again = scores.row(20)
    assert again.expected_purchases is not None
    assert again.expected_purchases > 0
    # One-order buyers are expected to order less than the one who came back twice.
    assert all(
        row.expected_purchases is not None and row.expected_purchases < again.expected_purchases
        for row in list(scores.rows())[:20]
    )


def test_the_empirical_rate_is_the_buyers_own_shrunk_to_the_bases() -> None:
    model = empirical_purchases(np.array([0.0, 10.0, 2.0]), np.array([100.0, 100.0, 100.0]))

    assert model == EmpiricalPurchases(rate=12.0 / 300.0, weight=100.0)
    x, t_x, T = np.array([10.0, 0.0]), np.array([100.0, 0.0]), np.array([100.0, 100.0])
    ahead = expected_purchases(model, 30.0, x, t_x, T)
    # Halfway between the buyer's own 0.1 a day and the base's 0.04, times 30 days.
    assert np.isclose(ahead[0], 30.0 * (10.0 + 4.0) / 200.0)
    # A buyer silent for their whole age is less likely alive than one who just ordered.
    alive = p_alive(model, x, t_x, T)
    assert alive[0] == 1.0
    assert 0.0 < alive[1] < 1.0


def test_the_shrunk_mean_spend_leans_to_the_base_with_few_orders() -> None:
    model = empirical_spend(np.array([1.0, 4.0, 2.0]), np.array([100.0, 25.0, -5.0]))

    assert model == EmpiricalSpend(mean=200.0 / 5.0, weight=1.0)
    spend = expected_average_spend(model, np.array([1.0, 9.0]), np.array([100.0, 100.0]))
    assert np.allclose(spend, [(100.0 + 40.0) / 2.0, (900.0 + 40.0) / 10.0])


def fit(converged: bool = True, at_bound: bool = False) -> FitDiagnostics:
    return FitDiagnostics(-10.0, 5, converged, 100, "done", at_bound=at_bound)


def test_a_fit_at_its_bounds_or_unconverged_is_degenerate() -> None:
    good = BgNbdParams(0.24, 30.0, 0.8, 2.4)

    assert degenerate_fit(good, fit()) is None
    assert degenerate_fit(good, fit(converged=False)) == "the fit did not converge (done)"
    assert "ended at its bound" in (degenerate_fit(good, fit(at_bound=True)) or "")
    assert degenerate_fit(BgNbdParams(float("nan"), 1, 1, 1), fit()) == (
        "a parameter is not a finite positive number"
    )
    assert "at most 1" in (degenerate_fit(GammaGammaParams(2.0, 0.9, 1.0), fit()) or "")


histories = st.lists(
    st.tuples(
        st.integers(0, 40),  # orders (0: a lead)
        st.floats(0.0, 3_000.0),  # days from the first order to the last
        st.floats(0.0, 400.0),  # days since the last
        st.floats(-100.0, 1e6),  # net revenue
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories, st.integers(1, 30))
def test_no_score_is_ever_nan_or_infinite(
    rows: list[tuple[int, float, float, float]], min_repeat: int
) -> None:
    buyers = []
    for i, (orders, span, silence, revenue) in enumerate(rows):
        last = NOW - timedelta(days=silence)
        first = last - timedelta(days=span if orders > 1 else 0.0)
        buyers.append(
            BuyerFacts(
                f"b{i}",
                orders,
                Decimal(f"{revenue:.2f}"),
                first if orders else None,
                last if orders else None,
            )
        )

    scores = score_buyers(buyers, NOW, ScoringPolicy(min_repeat_buyers=min_repeat))

    assert all_finite(scores)
    assert np.isfinite(scores.customer_equity)
