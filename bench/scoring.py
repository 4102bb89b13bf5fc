"""``python -m bench.scoring [--buyers N ...]``: how long scoring a whole base takes.

Buyers are drawn from BG/NBD and Gamma-Gamma with the CDNOW parameters (alpha turned
into days), first orders spread over three years, plus a tenth of leads with no order.
Prints, per base size, the time to build the columns from one record per buyer
(``BaseFacts.of``) and the time to score them (``score_base``: RFM, both fits,
predictions and CLV), wall and CPU, on one core, no database involved.
``--fit-sample 0`` fits the models on the whole base instead of the policy's sample.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar

import numpy as np

from shared.domain.predictions import BgNbdParams
from shared.domain.scoring import BaseFacts, BuyerFacts, ScoringPolicy, score_base
from tests.unit.simulated_buyers import (
    CDNOW_PURCHASES,
    CDNOW_SPEND,
    simulate_purchases,
    simulate_spend,
)

NOW = datetime(2026, 11, 1, tzinfo=UTC)
Result = TypeVar("Result")


def synthetic_base(size: int, seed: int) -> list[BuyerFacts]:
    """``size`` buyers, a tenth of them leads with no order."""
    rng = np.random.default_rng(seed)
    daily = BgNbdParams(
        r=CDNOW_PURCHASES.r,
        alpha=CDNOW_PURCHASES.alpha * 7,
        a=CDNOW_PURCHASES.a,
        b=CDNOW_PURCHASES.b,
    )
    age = rng.uniform(1.0, 3 * 365.0, size)
    drawn = simulate_purchases(daily, age, 0.0, rng)
    orders = drawn.x + 1
    mean_value = simulate_spend(CDNOW_SPEND, orders, rng)
    lead = rng.random(size) < 0.1
    buyers = []
    for i in range(size):
        if lead[i]:
            buyers.append(BuyerFacts(f"b{i}", 0, 0.0, None, None))
            continue
        first = NOW - timedelta(days=float(age[i]))
        buyers.append(
            BuyerFacts(
                buyer_id=f"b{i}",
                orders_count=int(orders[i]),
                net_revenue=round(float(mean_value[i] * orders[i]), 2),
                first_order_at=first,
                last_order_at=first + timedelta(days=float(drawn.t_x[i])),
            )
        )
    return buyers


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scoring", description=__doc__)
    parser.add_argument("--buyers", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--fit-sample",
        type=int,
        default=ScoringPolicy().fit_sample,
        help="buyers the models are fitted on; 0 for the whole base",
    )
    args = parser.parse_args()
    policy = ScoringPolicy(fit_sample=args.fit_sample or None)
    for size in args.buyers:
        buyers = synthetic_base(size, seed=1)
        (columns, columns_cpu), base = timed(partial(BaseFacts.of, buyers))
        (scoring, scoring_cpu), scores = timed(partial(score_base, base, NOW, policy))
        assert scores.models is not None
        fits = scores.models.purchases_fit, scores.models.spend_fit
        print(
            f"{size:>9,} buyers: columns {columns:5.2f} s ({columns_cpu:5.2f} s CPU), "
            f"scoring {scoring:5.2f} s ({scoring_cpu:5.2f} s CPU); "
            f"fitted on {fits[0].buyers:,} buyers, BG/NBD {fits[0].iterations} iterations, "
            f"Gamma-Gamma {fits[1].iterations}; "
            f"customer equity {scores.customer_equity:,.0f}"
        )


def timed(work: Callable[[], Result]) -> tuple[tuple[float, float], Result]:
    """Wall and CPU seconds of ``work()``, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return (time.perf_counter() - wall, time.process_time() - cpu), result


if __name__ == "__main__":
    main()
