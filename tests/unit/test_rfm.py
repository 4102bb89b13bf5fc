"""RFM scores from the quintiles of the base, and the named segments of the R-vs-FM grid."""

from __future__ import annotations

import random

import numpy as np
import pytest

from shared.domain.rfm import (
    RFM_SEGMENTS,
    BuyerSummary,
    RfmScore,
    rfm_boundaries,
    rfm_segment,
    rfm_segment_codes,
    score_rfm,
)

# Ten buyers: (days since last order, orders, net revenue).
SMALL_BASE = {
    "ann": (1, 1, 500.0),
    "bob": (3, 1, 900.0),
    "cat": (5, 1, 150.0),
    "dan": (8, 1, 300.0),
    "eve": (10, 1, 50.0),
    "fay": (20, 2, 700.0),
    "gus": (30, 2, 1000.0),
    "hal": (60, 3, 1200.0),
    "ivy": (90, 5, 2000.0),
    "jon": (200, 10, 5000.0),
}


def summaries(base: dict[str, tuple[int, int, float]]) -> list[BuyerSummary]:
    return [BuyerSummary(days, orders, money) for days, orders, money in base.values()]


def test_small_base_scores_worked_out_by_hand() -> None:
    # Boundaries are the values at ranks 2, 4, 6 and 8 of 10, worst to best:
    #   recency days 90, 30, 10, 5      -> fewer days than k of them: R = 1 + k
    #   orders        1, 1, 2, 3        -> one order (half the base) scores 1, two score 3
    #   net revenue 150, 500, 900, 1200
    expected = {
        "ann": (5, 1, 2),
        "bob": (5, 1, 3),
        "cat": (4, 1, 1),
        "dan": (4, 1, 2),
        "eve": (3, 1, 1),
        "fay": (3, 3, 3),
        "gus": (2, 3, 4),
        "hal": (2, 4, 4),
        "ivy": (1, 5, 5),
        "jon": (1, 5, 5),
    }
    scores = score_rfm(summaries(SMALL_BASE))

    assert {name: (s.r, s.f, s.m) for name, s in zip(SMALL_BASE, scores, strict=True)} == expected


def test_small_base_named_segments_worked_out_by_hand() -> None:
    # FM is the mean of F and M rounded half up: ann (F1, M2) has FM 2, gus (F3, M4) FM 4.
    expected = {
        "ann": "potential-loyalist",
        "bob": "potential-loyalist",
        "cat": "promising",
        "dan": "potential-loyalist",
        "eve": "about-to-sleep",
        "fay": "need-attention",
        "gus": "at-risk",
        "hal": "at-risk",
        "ivy": "cant-lose-them",
        "jon": "cant-lose-them",
    }
    scores = score_rfm(summaries(SMALL_BASE))

    assert {name: s.segment for name, s in zip(SMALL_BASE, scores, strict=True)} == expected


def test_boundaries_of_the_small_base() -> None:
    recency, orders, money = (
        np.array(column, float) for column in zip(*SMALL_BASE.values(), strict=True)
    )
    boundaries = rfm_boundaries(recency, orders, money)

    assert boundaries.recency_days == (90, 30, 10, 5)
    assert boundaries.orders == (1, 1, 2, 3)
    assert boundaries.monetary == (150, 500, 900, 1200)


def test_a_new_buyer_scores_live_against_the_bases_boundaries() -> None:
    base = summaries(SMALL_BASE)
    recency, orders, money = (
        np.array(column, float) for column in zip(*SMALL_BASE.values(), strict=True)
    )
    boundaries = rfm_boundaries(recency, orders, money)

    assert boundaries.score(BuyerSummary(0, 4, 1300.0)) == RfmScore(5, 5, 5)
    assert boundaries.score(BuyerSummary(400, 1, 10.0)) == RfmScore(1, 1, 1)
    # On a boundary is not beyond it: 10 days is not fewer than 10.
    assert boundaries.score(BuyerSummary(10, 2, 900.0)) == RfmScore(3, 3, 3)
    assert [boundaries.score(b) for b in base] == score_rfm(base)


def test_distinct_values_split_into_equal_fifths() -> None:
    rng = np.random.default_rng(3)
    base = [
        BuyerSummary(float(d), int(o), float(m))
        for d, o, m in zip(
            rng.permutation(100), rng.permutation(100) + 1, rng.permutation(100) * 10.0, strict=True
        )
    ]
    scores = score_rfm(base)

    for dimension in ("r", "f", "m"):
        counts = np.bincount([getattr(s, dimension) for s in scores], minlength=6)[1:]
        assert counts.tolist() == [20] * 5


def test_more_recent_buyers_never_score_lower_recency() -> None:
    base = summaries(SMALL_BASE)
    scores = score_rfm(base)
    by_days = sorted(zip(base, scores, strict=True), key=lambda pair: pair[0].recency_days)

    assert [s.r for _, s in by_days] == sorted((s.r for _, s in by_days), reverse=True)


def test_equal_values_get_equal_scores_whatever_the_order_of_the_base() -> None:
    rng = random.Random(5)
    base = [
        BuyerSummary(rng.choice([1, 7, 30]), rng.choice([1, 1, 1, 2, 4]), 100.0) for _ in range(50)
    ]
    shuffled = rng.sample(base, len(base))

    def scores_by_buyer(buyers: list[BuyerSummary]) -> dict[BuyerSummary, set[RfmScore]]:
        seen: dict[BuyerSummary, set[RfmScore]] = {}
        for buyer, score in zip(buyers, score_rfm(buyers), strict=True):
            seen.setdefault(buyer, set()).add(score)
        return seen

    first = scores_by_buyer(base)
    assert all(len(scores) == 1 for scores in first.values())
    assert scores_by_buyer(shuffled) == first
    # Everyone spent the same: all are in one block, scored at its bottom.
    assert {score.m for scores in first.values() for score in scores} == {1}


def test_the_grids_corners_and_edges() -> None:
    assert rfm_segment(5, 5, 5) == "champions"
    assert rfm_segment(5, 1, 1) == "new"
    assert rfm_segment(4, 1, 1) == "promising"
    assert rfm_segment(1, 1, 1) == "lost"
    assert rfm_segment(1, 5, 5) == "cant-lose-them"
    assert rfm_segment(3, 3, 3) == "need-attention"
    assert rfm_segment(4, 5, 5) == "loyal"
    assert rfm_segment(2, 2, 2) == "hibernating"
    # FM rounds half up: F 3 and M 4 make FM 4.
    assert rfm_segment(5, 3, 4) == "champions"
    assert rfm_segment(5, 3, 3) == "potential-loyalist"


def test_every_named_segment_is_somewhere_on_the_grid() -> None:
    reached = {rfm_segment(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)}

    assert reached == set(RFM_SEGMENTS)
    assert len(RFM_SEGMENTS) == 11


def test_segment_codes_agree_with_the_one_buyer_mapping() -> None:
    grid = np.array([(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)])
    codes = rfm_segment_codes(grid[:, 0], grid[:, 1], grid[:, 2])

    assert [RFM_SEGMENTS[c] for c in codes] == [rfm_segment(*map(int, row)) for row in grid]


def test_scores_outside_one_to_five_are_refused() -> None:
    with pytest.raises(ValueError, match="RFM score r must be 1-5"):
        rfm_segment(0, 3, 3)


def test_an_empty_base_has_no_quintiles() -> None:
    with pytest.raises(ValueError, match="at least one buyer"):
        score_rfm([])
