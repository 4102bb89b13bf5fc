"""Campaign report statistics, checked against published values and independent formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from shared.domain.reports import (
    Estimate,
    Funnel,
    Verdict,
    campaign_report,
    newcombe_difference,
    relative_uplift,
    verdict,
    welch_difference,
    wilson_interval,
)


def test_wilson_interval_matches_the_worked_example() -> None:
    estimate = wilson_interval(81, 263)
    assert estimate is not None
    assert estimate.value == pytest.approx(81 / 263)
    assert estimate.low == pytest.approx(0.2553, abs=5e-5)
    assert estimate.high == pytest.approx(0.3662, abs=5e-5)


def test_wilson_interval_agrees_with_the_quadratic_it_solves() -> None:
    """The bounds are the two roots of (p - x/n)^2 = z^2 p (1 - p) / n."""
    x, n, z = 7, 40, stats.norm.ppf(0.975)
    a = 1 + z * z / n
    b = -(2 * x / n + z * z / n)
    c = (x / n) ** 2
    roots = sorted(np.roots([a, b, c]).real)
    estimate = wilson_interval(x, n)
    assert estimate is not None
    assert (estimate.low, estimate.high) == pytest.approx(roots)


def test_wilson_interval_stays_inside_zero_and_one_at_the_edges() -> None:
    none_converted = wilson_interval(0, 50)
    all_converted = wilson_interval(50, 50)
    assert none_converted is not None
    assert all_converted is not None
    assert none_converted.low == 0
    assert 0 < none_converted.high < 0.1
    assert all_converted.high == 1
    assert 0.9 < all_converted.low < 1


def test_an_empty_group_has_no_rate_and_a_bad_count_is_refused() -> None:
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError, match="not a proportion"):
        wilson_interval(5, 3)
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 3, confidence=95)


def test_newcombe_difference_matches_his_published_method_10() -> None:
    estimate = newcombe_difference(56, 70, 48, 80)
    assert estimate is not None
    assert estimate.value == pytest.approx(0.2)
    assert estimate.low == pytest.approx(0.0524, abs=5e-5)
    assert estimate.high == pytest.approx(0.3339, abs=5e-5)


def test_newcombe_difference_of_swapped_groups_is_the_mirror_image() -> None:
    forward = newcombe_difference(9, 120, 3, 110)
    backward = newcombe_difference(3, 110, 9, 120)
    assert forward is not None
    assert backward is not None
    assert (backward.value, backward.low, backward.high) == pytest.approx(
        (-forward.value, -forward.high, -forward.low)
    )
    assert newcombe_difference(1, 10, 0, 0) is None


def test_relative_uplift_is_the_katz_log_risk_ratio_interval() -> None:
    a, n_a, b, n_b = 60, 1000, 40, 1000
    z = stats.norm.ppf(0.975)
    log_rr = math.log((a / n_a) / (b / n_b))
    se = math.sqrt(1 / a - 1 / n_a + 1 / b - 1 / n_b)
    estimate = relative_uplift(a, n_a, b, n_b)
    assert estimate is not None
    assert estimate.value == pytest.approx(0.5)
    assert estimate.low == pytest.approx(math.exp(log_rr - z * se) - 1)
    assert estimate.high == pytest.approx(math.exp(log_rr + z * se) - 1)
    assert estimate.low < 0.5 < estimate.high


def test_relative_uplift_needs_a_conversion_in_each_group() -> None:
    assert relative_uplift(5, 100, 0, 100) is None
    assert relative_uplift(0, 100, 5, 100) is None


def test_welch_interval_agrees_with_scipy_ttest() -> None:
    rng = np.random.default_rng(7)
    treatment = np.where(rng.random(400) < 0.1, rng.gamma(2.0, 2500.0, 400), 0.0)
    holdout = np.where(rng.random(150) < 0.07, rng.gamma(2.0, 2000.0, 150), 0.0)
    expected = stats.ttest_ind(treatment, holdout, equal_var=False).confidence_interval(0.95)
    estimate = welch_difference(treatment, holdout)
    assert estimate is not None
    assert estimate.value == pytest.approx(treatment.mean() - holdout.mean())
    assert (estimate.low, estimate.high) == pytest.approx((expected.low, expected.high))
    narrower = welch_difference(treatment, holdout, confidence=0.8)
    assert narrower is not None
    assert estimate.low < narrower.low < narrower.high < estimate.high


def test_welch_interval_needs_two_buyers_a_group() -> None:
    assert welch_difference([100.0], [0.0, 0.0]) is None
    flat = welch_difference([0.0, 0.0, 0.0], [0.0, 0.0])
    assert flat == Estimate(0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("uplift", "enough", "expected"),
    [
        (Estimate(0.02, 0.005, 0.035), True, Verdict.TREATMENT_AHEAD),
        (Estimate(-0.02, -0.035, -0.005), True, Verdict.HOLDOUT_AHEAD),
        (Estimate(0.02, -0.001, 0.041), True, Verdict.NOT_YET_SIGNIFICANT),
        (Estimate(0.02, 0.005, 0.035), False, Verdict.TOO_FEW_BUYERS),
        (None, True, Verdict.TOO_FEW_BUYERS),
    ],
)
def test_the_verdict_reads_the_interval(
    uplift: Estimate | None, enough: bool, expected: Verdict
) -> None:
    assert verdict(uplift, enough_buyers=enough) is expected


def test_verdicts_read_as_plain_words() -> None:
    assert Verdict.TREATMENT_AHEAD.words() == "treatment ahead, significant at 95%"
    assert Verdict.HOLDOUT_AHEAD.words(0.9) == "holdout ahead, significant at 90%"
    assert Verdict.NOT_YET_SIGNIFICANT.words() == "not yet significant"
    assert Verdict.TOO_FEW_BUYERS.words() == "too few buyers"


def test_a_campaign_that_works_reports_uplift_and_incremental_revenue() -> None:
    funnel = Funnel(
        audience=2000, sent=1900, delivered=1850, opened=700, clicked=210, converted=160
    )
    treatment_revenues = [5000.0] * 160  # the buyers who bought; the rest spent nothing
    holdout_revenues = [5000.0] * 20
    report = campaign_report(
        funnel,
        holdout_size=500,
        holdout_converted=20,
        treatment_revenues=treatment_revenues,
        holdout_revenues=holdout_revenues,
    )
    assert report.treatment_conversion == wilson_interval(160, 2000)
    assert report.holdout_conversion == wilson_interval(20, 500)
    assert report.conversion_uplift == newcombe_difference(160, 2000, 20, 500)
    assert report.relative_uplift == relative_uplift(160, 2000, 20, 500)
    assert report.relative_uplift is not None
    assert report.relative_uplift.value == pytest.approx(1.0), "8% against 4%: twice as many"
    assert report.treatment_revenue_per_buyer == pytest.approx(400.0)
    assert report.holdout_revenue_per_buyer == pytest.approx(200.0)
    padded_t = np.array([5000.0] * 160 + [0.0] * 1840)
    padded_h = np.array([5000.0] * 20 + [0.0] * 480)
    assert report.revenue_per_buyer_uplift == welch_difference(padded_t, padded_h)
    assert report.incremental_revenue is not None
    assert report.incremental_revenue.value == pytest.approx(200.0 * 2000)
    assert report.revenue_per_buyer_uplift is not None
    assert report.incremental_revenue.low == pytest.approx(
        report.revenue_per_buyer_uplift.low * 2000
    )
    assert report.verdict is Verdict.TREATMENT_AHEAD
    assert report.verdict_words == "treatment ahead, significant at 95%"
    assert report.revenue_verdict is Verdict.TREATMENT_AHEAD


def test_a_campaign_no_better_than_its_holdout_is_not_yet_significant() -> None:
    funnel = Funnel(audience=900, sent=900, delivered=880, opened=300, clicked=90, converted=45)
    report = campaign_report(funnel, holdout_size=100, holdout_converted=5)
    assert report.conversion_uplift is not None
    assert report.conversion_uplift.value == pytest.approx(0.0)
    assert report.verdict is Verdict.NOT_YET_SIGNIFICANT
    assert report.treatment_revenue_per_buyer == 0
    assert report.incremental_revenue == Estimate(0.0, 0.0, 0.0)


def test_a_campaign_with_a_tiny_holdout_has_too_few_buyers() -> None:
    funnel = Funnel(audience=500, sent=500, delivered=500, opened=250, clicked=100, converted=100)
    report = campaign_report(funnel, holdout_size=10, holdout_converted=0)
    assert report.verdict is Verdict.TOO_FEW_BUYERS
    assert report.revenue_verdict is Verdict.TOO_FEW_BUYERS
    assert report.relative_uplift is None, "no holdout conversion: the ratio says nothing"
    empty = campaign_report(Funnel(0, 0, 0, 0, 0, 0), holdout_size=0, holdout_converted=0)
    assert empty.treatment_conversion is None
    assert empty.conversion_uplift is None
    assert empty.treatment_revenue_per_buyer is None
    assert empty.verdict is Verdict.TOO_FEW_BUYERS


def test_inconsistent_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="step before"):
        Funnel(audience=10, sent=11, delivered=0, opened=0, clicked=0, converted=0)
    with pytest.raises(ValueError, match="audience"):
        Funnel(audience=10, sent=5, delivered=5, opened=5, clicked=5, converted=11)
    funnel = Funnel(audience=3, sent=3, delivered=3, opened=1, clicked=1, converted=1)
    with pytest.raises(ValueError, match="revenues for a treatment group of 3"):
        campaign_report(
            funnel, holdout_size=1, holdout_converted=0, treatment_revenues=[1, 2, 3, 4]
        )
    with pytest.raises(ValueError, match="holdout"):
        campaign_report(funnel, holdout_size=1, holdout_converted=2)


def test_a_campaign_with_no_holdout_has_no_control_group_and_no_uplift() -> None:
    # Seen: the win-back report (holdout 0) said "too few buyers".
    funnel = Funnel(audience=800, sent=780, delivered=700, opened=300, clicked=90, converted=60)
    report = campaign_report(
        funnel,
        holdout_size=0,
        holdout_converted=0,
        treatment_revenues=[1000.0] * 60,
        holdout_share=0.0,
    )
    assert report.verdict is Verdict.NO_CONTROL_GROUP
    assert report.revenue_verdict is Verdict.NO_CONTROL_GROUP
    assert report.verdict_words == "no control group"
    assert report.treatment_conversion == wilson_interval(60, 800), "its own rate still stands"
    assert report.treatment_revenue_per_buyer == pytest.approx(75.0)
    for nothing in (
        report.holdout_conversion,
        report.conversion_uplift,
        report.relative_uplift,
        report.holdout_revenue_per_buyer,
        report.revenue_per_buyer_uplift,
        report.incremental_revenue,
    ):
        assert nothing is None
    waiting = campaign_report(funnel, holdout_size=0, holdout_converted=0, holdout_share=0.1)
    assert waiting.verdict is Verdict.TOO_FEW_BUYERS, "a holdout is drawn, none held out yet"
