"""Model validation on held-out orders: on a history drawn from BG/NBD and Gamma-Gamma
themselves (seeded, known parameters) the fit recovers the parameters within their
standard errors, beats the naive baseline and says so; the table, the scores and the
picture hold what an analyst checks."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from functools import cache
from xml.etree import ElementTree

import numpy as np
import pytest

from shared.domain.predictions import BgNbdParams, GammaGammaParams
from shared.domain.validation import (
    BuyerOrders,
    CannotValidate,
    OrderLog,
    ValidationReport,
    calibration_holdout_svg,
    choose_purchase_model,
    standard_errors,
    validate_models,
)
from tests.unit.simulated_buyers import simulate_order_log

START = datetime(2024, 1, 1, tzinfo=UTC)
TRUE_PURCHASES = BgNbdParams(r=0.5, alpha=40.0, a=0.8, b=2.5)
"""In days: a live buyer orders every 80 days on average."""
TRUE_SPEND = GammaGammaParams(p=6.0, q=4.0, v=15.0)
CALIBRATION_END = START + timedelta(days=540)
HOLDOUT_END = START + timedelta(days=720)


@cache
def simulated_history(buyers: int = 4000, seed: int = 7) -> OrderLog:
    """Buyers whose first orders are spread over the first year, orders up to the
    holdout end."""
    rng = np.random.default_rng(seed)
    return simulate_order_log(
        TRUE_PURCHASES,
        TRUE_SPEND,
        rng.uniform(0.0, 365.0, buyers),
        720.0,
        rng,
        start=START.timestamp(),
    )


@cache
def report() -> ValidationReport:
    return validate_models(simulated_history(), CALIBRATION_END, HOLDOUT_END)


def test_on_a_history_the_model_generated_it_beats_the_naive_baseline_and_says_so() -> None:
    found = report()
    assert found.model.purchases_mae < found.baseline.purchases_mae
    assert found.model.spend_mae < found.baseline.spend_mae
    assert found.model.purchases_correlation > found.baseline.purchases_correlation
    assert found.model_wins
    assert found.verdict.startswith(f"{found.chosen} beats the naive baseline")
    assert f"{found.model.purchases_mae:.3f}" in found.verdict


def test_bgnbd_and_mbgnbd_are_both_fitted_and_the_lower_holdout_error_wins() -> None:
    found = report()
    names = {c.fitted.name: c for c in found.candidates}
    assert set(names) == {"BG/NBD", "MBG/NBD"}
    best = min(found.candidates, key=lambda c: c.purchases_mae)
    assert found.chosen == best.fitted.name
    assert found.purchases == best.fitted
    assert found.model.purchases_mae == pytest.approx(best.purchases_mae)
    assert found.choice.startswith(f"{best.fitted.name} wins on held-out orders per buyer")
    for candidate in found.candidates:
        assert f"{candidate.purchases_mae:.4f}" in found.choice
    # On BG/NBD's own data the two models predict much alike.
    assert names["BG/NBD"].purchases_mae == pytest.approx(names["MBG/NBD"].purchases_mae, rel=0.1)


def test_the_fit_recovers_the_true_parameters_within_their_standard_errors() -> None:
    found = report()
    truth = {
        "r": TRUE_PURCHASES.r,
        "alpha": TRUE_PURCHASES.alpha,
        "a": TRUE_PURCHASES.a,
        "b": TRUE_PURCHASES.b,
        "p": TRUE_SPEND.p,
        "q": TRUE_SPEND.q,
        "v": TRUE_SPEND.v,
    }
    bgnbd = next(c.fitted for c in found.candidates if c.fitted.name == "BG/NBD")
    for estimate in (*bgnbd.parameters, *found.spend.parameters):
        assert 0 < estimate.standard_error < estimate.value, estimate
        distance = abs(estimate.value - truth[estimate.name]) / estimate.standard_error
        assert distance < 3.0, (estimate, truth[estimate.name])
    assert bgnbd.converged
    assert found.spend.converged


def test_standard_errors_are_the_textbook_ones_for_an_exponential_rate() -> None:
    # n draws with mean m: the rate's MLE is 1/m and its standard error 1/(m sqrt(n)).
    draws = np.random.default_rng(3).exponential(2.0, 400)
    mle = 1.0 / float(draws.mean())

    def log_likelihood(params: tuple[float, ...]) -> float:
        return len(draws) * math.log(params[0]) - params[0] * float(draws.sum())

    (se,) = standard_errors(log_likelihood, (mle,))
    assert se == pytest.approx(mle / math.sqrt(len(draws)), rel=1e-4)


def test_the_calibration_holdout_table_groups_buyers_by_calibration_repeat_orders() -> None:
    found = report()
    labels = [g.label for g in found.groups]
    assert labels[0] == "0"
    assert labels[-1] == "7+"
    assert sum(g.buyers for g in found.groups) == found.buyers
    # the model's mean per group follows the actual one where many buyers are
    crowded = [g for g in found.groups if g.buyers >= 200]
    assert crowded
    for group in crowded:
        assert group.model == pytest.approx(group.actual, abs=0.15 + 0.2 * group.actual), group
    assert found.predicted_purchases == pytest.approx(found.actual_purchases, rel=0.1)


def test_the_top_decile_is_found_better_than_by_chance() -> None:
    found = report()
    assert 0.1 < found.model.top_decile_share <= 1.0
    assert found.model.top_decile_share >= found.baseline.top_decile_share


def test_buyers_first_seen_in_the_holdout_are_counted_apart() -> None:
    two_orders = (START + timedelta(days=1), START + timedelta(days=9))
    history = OrderLog.of(
        [
            BuyerOrders("old", two_orders, (10.0, 20.0)),
            BuyerOrders("new", (CALIBRATION_END + timedelta(days=3),), (30.0,)),
        ]
    )
    assert (history.buyers, list(history.buyer), list(history.total)) == (
        2,
        [0, 0, 1],
        [10.0, 20.0, 30.0],
    )
    with pytest.raises(CannotValidate, match=r"1 buyers with a repeat order .* need 20"):
        validate_models(history, CALIBRATION_END, HOLDOUT_END)


def test_a_holdout_that_does_not_follow_the_calibration_is_refused() -> None:
    with pytest.raises(CannotValidate, match="holdout end must be after"):
        validate_models(simulated_history(), CALIBRATION_END, CALIBRATION_END)
    with pytest.raises(CannotValidate, match="no buyer ordered by the calibration end"):
        validate_models(simulated_history(), START - timedelta(days=1), HOLDOUT_END)


def test_the_plot_draws_actual_model_and_baseline_per_group() -> None:
    found = report()
    svg = ElementTree.fromstring(calibration_holdout_svg(found))
    lines = {
        e.get("class"): e.get("points", "").split()
        for e in svg.iter("{http://www.w3.org/2000/svg}polyline")
    }
    assert set(lines) == {"actual", "model", "baseline"}
    assert all(len(points) == len(found.groups) for points in lines.values())
    labels = [e.text for e in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert "7+" in labels
    assert found.chosen in labels


def test_the_purchase_model_chosen_for_scoring_is_the_holdout_winner() -> None:
    found = report()
    model, why = choose_purchase_model(simulated_history(), HOLDOUT_END, 180.0)

    assert model == found.chosen
    assert why.startswith(f"purchase model {model}, chosen on the last 180 days held out")
    assert found.choice in why


def test_a_history_too_short_to_choose_keeps_bgnbd_and_says_why() -> None:
    model, why = choose_purchase_model(simulated_history(), START + timedelta(days=2), 1.0)

    assert model == "BG/NBD"
    assert why.startswith("purchase model BG/NBD, the default: the history cannot choose (")
