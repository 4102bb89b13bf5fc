"""Scoring a whole base: RFM, predictions and CLV per buyer, in batches, from order facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from shared.domain.predictions import (
    BgNbdParams,
    customer_lifetime_value,
    expected_average_spend,
    expected_purchases,
    p_alive,
)
from shared.domain.rfm import RFM_SEGMENTS, BuyerSummary, score_rfm
from shared.domain.scoring import (
    DAYS_PER_MONTH,
    BaseFacts,
    BaseScores,
    BuyerFacts,
    ScoringPolicy,
    facts_as_of,
    score_base,
    score_buyers,
)
from shared.domain.validation import BuyerOrders
from tests.unit.simulated_buyers import (
    CDNOW_PURCHASES,
    CDNOW_SPEND,
    simulate_purchases,
    simulate_spend,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DAILY = BgNbdParams(r=CDNOW_PURCHASES.r, alpha=CDNOW_PURCHASES.alpha * 7, a=0.79, b=2.43)


def simulated_base(size: int, seed: int) -> list[BuyerFacts]:
    """Buyers drawn from the CDNOW models in days, first orders up to two years ago."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(1.0, 730.0, size)
    drawn = simulate_purchases(DAILY, age, 0.0, rng)
    orders = drawn.x + 1
    mean_value = simulate_spend(CDNOW_SPEND, orders, rng)
    buyers = []
    for i in range(size):
        first = NOW - timedelta(days=float(age[i]))
        buyers.append(
            BuyerFacts(
                buyer_id=f"b{i}",
                orders_count=int(orders[i]),
                net_revenue=Decimal(f"{mean_value[i] * orders[i]:.2f}"),
                first_order_at=first,
                last_order_at=first + timedelta(days=float(drawn.t_x[i])),
            )
        )
    return buyers


LEAD = BuyerFacts("lead", 0, Decimal("0.00"), None, None)


@pytest.fixture(scope="module")
def buyers() -> list[BuyerFacts]:
    """A thousand simulated buyers, then a lead with no order."""
    return [*simulated_base(1_000, seed=2), LEAD]


@pytest.fixture(scope="module")
def scores(buyers: list[BuyerFacts]) -> BaseScores:
    return score_buyers(buyers, NOW)


def test_a_lead_with_no_order_gets_no_scores(scores: BaseScores) -> None:
    lead = scores.row(1_000)

    assert lead.buyer_id == "lead"
    assert (lead.rfm_r, lead.rfm_f, lead.rfm_m, lead.rfm_segment) == (None, None, None, None)
    assert (lead.p_alive, lead.expected_purchases, lead.expected_spend) == (None, None, None)
    assert (lead.clv, lead.clv_share) == (None, None)
    assert scores.row(0).p_alive is not None


def test_a_simulated_base_gets_every_score(buyers: list[BuyerFacts], scores: BaseScores) -> None:
    assert scores.models is not None
    assert scores.models.purchases_fit.converged
    assert scores.models.spend_fit.converged
    rows = list(scores.rows())[:-1]
    assert all(row.rfm_segment in RFM_SEGMENTS for row in rows)
    assert all(0.0 < (row.p_alive or 0) <= 1.0 for row in rows)
    one_order = [row for row, b in zip(rows, buyers, strict=False) if b.orders_count == 1]
    assert one_order
    assert all(row.p_alive == 1.0 for row in one_order)
    assert all((row.clv or 0) > 0 for row in rows)
    assert scores.customer_equity == pytest.approx(sum(row.clv or 0 for row in rows))


def test_rfm_scores_are_those_of_the_whole_base(
    buyers: list[BuyerFacts], scores: BaseScores
) -> None:
    summaries = [
        BuyerSummary(
            recency_days=(NOW - b.last_order_at).total_seconds() / 86_400,
            orders=b.orders_count,
            monetary=float(b.net_revenue),
        )
        for b in buyers
        if b.last_order_at is not None
    ]

    expected = score_rfm(summaries)

    rows = list(scores.rows())[:-1]
    assert [(row.rfm_r, row.rfm_f, row.rfm_m) for row in rows] == [
        (s.r, s.f, s.m) for s in expected
    ]
    assert [row.rfm_segment for row in rows] == [s.segment for s in expected]


def test_one_buyers_predictions_read_their_history_in_days(buyers: list[BuyerFacts]) -> None:
    regular = BuyerFacts(
        "regular",
        orders_count=4,
        net_revenue=Decimal("200.00"),
        first_order_at=datetime(2026, 1, 1, tzinfo=UTC),
        last_order_at=datetime(2026, 3, 2, tzinfo=UTC),
    )

    scores = score_buyers([*buyers, regular], NOW, ScoringPolicy(purchases_horizon_days=60))

    assert scores.models is not None
    row = scores.row(len(buyers))
    # Three repeat orders, the last 60 days after the first, 151 days ago.
    model = scores.models.purchases
    assert row.p_alive == pytest.approx(float(p_alive(model, 3, 60, 151)))
    assert row.expected_purchases == pytest.approx(
        float(expected_purchases(model, 60.0, 3, 60, 151))
    )


def test_a_longer_horizon_expects_more_orders(buyers: list[BuyerFacts], scores: BaseScores) -> None:
    month = score_buyers(buyers, NOW, ScoringPolicy(purchases_horizon_days=30))

    assert scores.policy.purchases_horizon_days == 90
    assert np.all(scores.expected_purchases[:-1] > month.expected_purchases[:-1])


def test_clv_follows_margin_and_discount(buyers: list[BuyerFacts]) -> None:
    buyers = buyers[:-1]
    full = score_buyers(buyers, NOW, ScoringPolicy(margin=1.0, monthly_discount_rate=0.0))
    discounted = score_buyers(buyers, NOW, ScoringPolicy(margin=0.3, monthly_discount_rate=0.02))

    assert np.all(discounted.clv < 0.3 * full.clv)
    assert discounted.customer_equity < 0.3 * full.customer_equity
    # Undiscounted, CLV is margin x spend x the orders expected over the year.
    assert full.models is not None
    base = BaseFacts.of(buyers)
    T = (NOW.timestamp() - base.first_order_at) / 86_400
    t_x = (base.last_order_at - base.first_order_at) / 86_400
    year = expected_purchases(
        full.models.purchases, 12 * DAYS_PER_MONTH, base.orders_count - 1, t_x, T
    )
    assert full.clv == pytest.approx(full.expected_spend * year)


def test_clv_share_ranks_the_base_from_the_top(scores: BaseScores) -> None:
    clv, share = scores.clv[:-1], scores.clv_share[:-1]

    order = np.argsort(-clv)
    assert share[order[0]] == 0.0
    assert np.all(np.diff(share[order]) >= 0)
    top_tenth = share < 0.1
    assert np.count_nonzero(top_tenth) == 100
    assert clv[top_tenth].min() > clv[~top_tenth].max()


def test_buyers_with_equal_clv_share_a_rank() -> None:
    first, last = datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    twins = [BuyerFacts(name, 3, Decimal("90.00"), first, last) for name in ("twin", "twin-2")]

    scores = score_buyers([*simulated_base(500, seed=8), *twins], NOW)

    assert scores.row(500).clv == scores.row(501).clv
    assert scores.row(500).clv_share == scores.row(501).clv_share


def test_progress_is_reported_after_every_batch(buyers: list[BuyerFacts]) -> None:
    calls: list[tuple[int, int]] = []

    score_buyers(buyers, NOW, ScoringPolicy(batch_size=400), progress=lambda *c: calls.append(c))

    assert calls == [(400, 1_001), (800, 1_001), (1_001, 1_001)]


def test_small_batches_score_the_same_as_one_pass(
    buyers: list[BuyerFacts], scores: BaseScores
) -> None:
    batched = score_buyers([LEAD, *buyers], NOW, ScoringPolicy(batch_size=37))

    assert scores.policy.batch_size > len(buyers)
    assert list(batched.rows())[1:] == list(scores.rows())


def test_rows_come_out_in_batches_for_writing_back(scores: BaseScores) -> None:
    batches = list(scores.batches(400))

    assert [len(batch) for batch in batches] == [400, 400, 201]
    assert [row.buyer_id for batch in batches for row in batch] == [
        *(f"b{i}" for i in range(1_000)),
        "lead",
    ]


def test_a_base_with_too_few_repeat_buyers_gets_rfm_and_the_fallbacks() -> None:
    first = datetime(2026, 5, 1, tzinfo=UTC)
    buyers = [
        BuyerFacts(
            f"b{i}", 1, Decimal(10 + i), first + timedelta(days=i), first + timedelta(days=i)
        )
        for i in range(20)
    ]
    buyers.append(BuyerFacts("again", 2, Decimal(50), first, first + timedelta(days=3)))

    scores = score_buyers(buyers, NOW, ScoringPolicy(min_repeat_buyers=5))

    assert scores.models is not None
    assert scores.models.fallbacks == ("purchases", "spend")
    assert all(row.rfm_segment in RFM_SEGMENTS for row in scores.rows())
    assert all(row.p_alive is not None and row.clv is not None for row in scores.rows())


def test_the_models_can_be_fitted_on_a_sample_of_a_large_base(buyers: list[BuyerFacts]) -> None:
    sampled = score_buyers(buyers, NOW, ScoringPolicy(fit_sample=600))

    assert sampled.models is not None
    assert sampled.models.purchases_fit.buyers == 600
    assert np.all(np.isfinite(sampled.clv[:-1]))
    # The sample is seeded: the same base gives the same models.
    assert score_buyers(buyers, NOW, ScoringPolicy(fit_sample=600)).models == sampled.models


def test_a_fully_refunded_buyer_is_still_scored(buyers: list[BuyerFacts]) -> None:
    refunded = BuyerFacts(
        "refunded",
        2,
        Decimal("0.00"),
        datetime(2026, 2, 1, tzinfo=UTC),
        datetime(2026, 2, 9, tzinfo=UTC),
    )

    scores = score_buyers([*buyers, refunded], NOW)

    row = scores.row(len(buyers))
    assert row.rfm_m == 1
    assert row.expected_spend is not None
    assert 0 < row.expected_spend < CDNOW_SPEND.mean_order_value


def test_columns_and_records_score_alike(buyers: list[BuyerFacts], scores: BaseScores) -> None:
    assert list(score_base(BaseFacts.of(buyers), NOW).rows()) == list(scores.rows())


def test_scoring_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        score_buyers([LEAD], datetime(2026, 6, 1))


def test_an_empty_base_scores_nothing() -> None:
    scores = score_buyers([], NOW)

    assert len(scores) == 0
    assert scores.models is None
    assert scores.customer_equity == 0.0


@pytest.mark.parametrize(
    "policy",
    [
        {"clv_months": -1},
        {"monthly_discount_rate": -1.0},
        {"margin": -0.1},
        {"batch_size": 0},
        {"fit_sample": 0},
    ],
)
def test_a_policy_that_makes_no_sense_is_refused(policy: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must"):
        ScoringPolicy(**policy)


def test_the_base_as_of_a_moment_keeps_only_the_orders_before_it() -> None:
    day = datetime(2026, 1, 1, tzinfo=UTC)
    histories = [
        BuyerOrders("a", (day, day + timedelta(days=10), day + timedelta(days=40)), (10, 20, 40)),
        BuyerOrders("late", (day + timedelta(days=31),), (99,)),
        BuyerOrders("stranger", (day,), (5,)),
    ]

    base = facts_as_of(["a", "late", "lead"], histories, day + timedelta(days=30))

    assert list(base.orders_count) == [2, 0, 0]
    assert list(base.net_revenue) == [30.0, 0.0, 0.0]
    assert base.first_order_at[0] == day.timestamp()
    assert base.last_order_at[0] == (day + timedelta(days=10)).timestamp()
    assert np.isnan(base.first_order_at[1])
    # An order at the moment itself is not before it.
    assert facts_as_of(["late"], histories, day + timedelta(days=31)).orders_count[0] == 0


def true_clv(buyers: list[BuyerFacts]) -> np.ndarray:
    """Each buyer's CLV under the parameters the base was drawn from."""
    base = BaseFacts.of(buyers)
    T = (NOW.timestamp() - base.first_order_at) / 86_400.0
    t_x = (base.last_order_at - base.first_order_at) / 86_400.0
    x = base.orders_count - 1.0
    spend = expected_average_spend(CDNOW_SPEND, x + 1.0, base.net_revenue / (x + 1.0))
    return customer_lifetime_value(
        DAILY, x, t_x, T, spend,
        months=12, monthly_discount_rate=0.01, margin=1.0, month_length=DAYS_PER_MONTH,
    )  # fmt: skip


def test_the_clv_interval_holds_the_true_clv_and_narrows_with_more_buyers() -> None:
    widths = []
    for size in (2_000, 8_000):
        buyers = simulated_base(size, 1)
        scores = score_buyers(buyers, NOW)
        truth = true_clv(buyers)
        assert np.all(scores.clv_low <= scores.clv)
        assert np.all(scores.clv <= scores.clv_high)
        inside = (scores.clv_low <= truth) & (truth <= scores.clv_high)
        assert np.mean(inside) > 0.75, size
        widths.append(float(np.median((scores.clv_high - scores.clv_low) / scores.clv)))
    # The parameters' standard errors fall as one over the square root of the base.
    assert 1.6 < widths[0] / widths[1] < 2.5


def test_no_clv_interval_under_a_fallback_or_when_asked_for_none(
    buyers: list[BuyerFacts],
) -> None:
    plain = score_buyers(buyers, NOW, ScoringPolicy(clv_interval=0.0))
    assert np.all(np.isnan(plain.clv_low))
    small = score_buyers(buyers[:30], NOW, ScoringPolicy(min_repeat_buyers=1000))
    assert all(row.clv is not None and row.clv_low is None for row in small.rows())
