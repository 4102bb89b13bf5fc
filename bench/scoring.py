"""``python -m bench scoring`` (or ``python -m bench.scoring``): fitting, scoring and
validating a whole base, beside a plain numpy/scipy fit of the same likelihoods.

Buyers are drawn from BG/NBD and Gamma-Gamma with the CDNOW parameters (alpha turned
into days), first orders spread over three years, plus a tenth of leads with no order.
Per base size (``--scoring-buyers``, default 100,000 and 1,000,000), on one core, no
database involved:

- ``fit``: BG/NBD and Gamma-Gamma fitted on every buyer with orders (nudge's
  ``fit_bgnbd`` and ``fit_gamma_gamma``: grouped by count, analytic gradients), beside
  the **plain baseline** in the same process: the same two log-likelihoods written
  per buyer in numpy and ``scipy.special`` as the papers give them, minimised by the
  same L-BFGS-B from the same start on the same rescaled data, its gradient by finite
  differences. Both must land on the same log-likelihood;
- ``score``: ``score_base`` over the columns (RFM, both fits on the policy's sample,
  p_alive, expected orders and spend, CLV), and building the columns from one record
  per buyer (``BaseFacts.of``);
- ``validate``: ``validate_models`` on the same number of buyers' order histories
  (every order's moment and total), calibration end two years in, a one-year holdout:
  both fits on every buyer, the standard errors, the predictions, the table.

``--fit-sample 0`` scores with the models fitted on the whole base instead.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize  # type: ignore[import-untyped,unused-ignore]
from scipy.special import betaln, gammaln  # type: ignore[import-untyped,unused-ignore]

from bench.common import console, record, summary
from shared.domain.predictions import BgNbdParams, fit_bgnbd, fit_gamma_gamma, fit_mbgnbd
from shared.domain.scoring import BaseFacts, BuyerFacts, ScoringPolicy, score_base
from shared.domain.validation import validate_models
from tests.unit.simulated_buyers import (
    CDNOW_PURCHASES,
    CDNOW_SPEND,
    simulate_order_log,
    simulate_purchases,
    simulate_spend,
)

NOW = datetime(2026, 11, 1, tzinfo=UTC)
SIZES = (100_000, 1_000_000)
DAILY = BgNbdParams(
    r=CDNOW_PURCHASES.r, alpha=CDNOW_PURCHASES.alpha * 7, a=CDNOW_PURCHASES.a, b=CDNOW_PURCHASES.b
)
"""CDNOW's BG/NBD with alpha in days."""
Result = TypeVar("Result")
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Summaries:
    """One synthetic base as model inputs: buyers with orders, days and money."""

    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    mean_value: FloatArray


def synthetic_summaries(size: int, seed: int) -> tuple[Summaries, list[BuyerFacts]]:
    """``size`` buyers, a tenth of them leads with no order: as model inputs (the nine
    tenths with orders) and as one record per buyer, as the store hands them over."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(1.0, 3 * 365.0, size)
    drawn = simulate_purchases(DAILY, age, 0.0, rng)
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
    kept = ~lead
    return Summaries(drawn.x[kept], drawn.t_x[kept], age[kept], mean_value[kept]), buyers


# --- the plain baseline ----------------------------------------------------------------


def plain_bgnbd_nll(theta: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray) -> float:
    """BG/NBD's negative log-likelihood per buyer as Fader, Hardie & Lee (2005) write it."""
    r, alpha, a, b = np.exp(theta)
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    alive = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
    left = np.where(
        x > 0,
        betaln(a + 1.0, b + np.maximum(x, 1.0) - 1.0)
        - betaln(a, b)
        - (r + x) * np.log(alpha + t_x),
        -np.inf,
    )
    return -float(np.sum(head + np.logaddexp(alive, left))) / len(x)


def plain_mbgnbd_nll(theta: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray) -> float:
    """MBG/NBD's negative log-likelihood per buyer as Batislam et al. (2007) write it."""
    r, alpha, a, b = np.exp(theta)
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    alive = betaln(a, b + x + 1.0) - betaln(a, b) - (r + x) * np.log(alpha + T)
    left = betaln(a + 1.0, b + x) - betaln(a, b) - (r + x) * np.log(alpha + t_x)
    return -float(np.sum(head + np.logaddexp(alive, left))) / len(x)


def plain_mbgnbd_fit(data: Summaries) -> float:
    """MBG/NBD fitted the plain way; its total log-likelihood in rescaled units."""
    scale = float(np.mean(data.T))
    x, t_x, T = data.x, data.t_x / scale, data.T / scale
    fitted = minimize(
        plain_mbgnbd_nll, np.zeros(4), args=(x, t_x, T), method="L-BFGS-B",
        bounds=[(-12.0, 12.0)] * 4,
    )  # fmt: skip
    return -float(fitted.fun) * len(x)


def nudge_mbgnbd_fit(data: Summaries) -> float:
    """MBG/NBD fitted by nudge; its log-likelihood in the same rescaled units."""
    _, fit = fit_mbgnbd(data.x, data.t_x, data.T)
    return fit.log_likelihood + float(np.sum(data.x)) * np.log(float(np.mean(data.T)))


def plain_gamma_gamma_nll(theta: FloatArray, n: FloatArray, m: FloatArray) -> float:
    """Gamma-Gamma's negative log-likelihood of each buyer's mean order value."""
    p, q, v = np.exp(theta)
    value = (
        gammaln(p * n + q)
        - gammaln(p * n)
        - gammaln(q)
        + q * np.log(v)
        + (p * n - 1.0) * np.log(m)
        + p * n * np.log(n)
        - (p * n + q) * np.log(v + n * m)
    )
    return -float(np.sum(value)) / len(n)


def plain_fit(data: Summaries) -> tuple[float, float]:
    """Both models fitted the plain way; their total log-likelihoods, in rescaled units."""
    scale = float(np.mean(data.T))
    x, t_x, T = data.x, data.t_x / scale, data.T / scale
    bounds4 = [(-12.0, 12.0)] * 4
    bgnbd = minimize(
        plain_bgnbd_nll, np.zeros(4), args=(x, t_x, T), method="L-BFGS-B", bounds=bounds4
    )
    spenders = x > 0
    n, m = x[spenders] + 1.0, data.mean_value[spenders]
    m = m / float(np.mean(m))
    start = np.array([0.0, np.log(2.0), 0.0])
    bounds3 = [(s - 12.0, s + 12.0) for s in start]
    gg = minimize(plain_gamma_gamma_nll, start, args=(n, m), method="L-BFGS-B", bounds=bounds3)
    return -float(bgnbd.fun) * len(x), -float(gg.fun) * len(n)


def nudge_fit(data: Summaries) -> tuple[float, float]:
    """Both models fitted by nudge; their log-likelihoods in the same rescaled units."""
    _, bgnbd = fit_bgnbd(data.x, data.t_x, data.T)
    spenders = data.x > 0
    n, m = data.x[spenders] + 1.0, data.mean_value[spenders]
    _, gg = fit_gamma_gamma(n, m)
    # nudge reports in the data's units: move both back to the rescaled data's.
    scale, money = float(np.mean(data.T)), float(np.mean(m))
    return (
        bgnbd.log_likelihood + float(np.sum(data.x)) * np.log(scale),
        gg.log_likelihood + len(n) * np.log(money),
    )


# --- the run ---------------------------------------------------------------------------


def measure(size: int, policy: ScoringPolicy) -> None:
    data, buyers = synthetic_summaries(size, seed=1)
    (fit, fit_cpu), ours = timed(partial(nudge_fit, data))
    (plain, plain_cpu), theirs = timed(partial(plain_fit, data))
    (mbg, mbg_cpu), mbg_ours = timed(partial(nudge_mbgnbd_fit, data))
    (mbg_plain, _), mbg_theirs = timed(partial(plain_mbgnbd_fit, data))
    (columns, _), base = timed(partial(BaseFacts.of, buyers))
    (scoring, scoring_cpu), scores = timed(partial(score_base, base, NOW, policy))
    assert scores.models is not None
    rng = np.random.default_rng(2)
    start = NOW - timedelta(days=3 * 365)
    history = simulate_order_log(
        DAILY, CDNOW_SPEND, rng.uniform(0.0, 365.0, size), 3 * 365.0, rng,
        start=start.timestamp(),
    )  # fmt: skip
    cut, end = start + timedelta(days=2 * 365), start + timedelta(days=3 * 365)
    (validation, validation_cpu), report = timed(partial(validate_models, history, cut, end))
    label = f"{size // 1000}k" if size < 1_000_000 else f"{size // 1_000_000}M"
    record(f"scoring.fit_s@{label}", fit, "s", baseline=plain,
           baseline_name="plain numpy/scipy fit, numeric gradient", n=len(data.x))  # fmt: skip
    record(f"scoring.mbgnbd_fit_s@{label}", mbg, "s", baseline=mbg_plain,
           baseline_name="plain numpy/scipy MBG/NBD fit, per buyer", n=len(data.x))  # fmt: skip
    record(f"scoring.score_s@{label}", scoring, "s", n=size)
    record(f"scoring.validate_s@{label}", validation, "s", n=len(history.at))
    console.print(
        f"{size:>9,} buyers: fit {fit:6.2f} s ({fit_cpu:6.2f} CPU) against plain "
        f"{plain:6.2f} s ({plain_cpu:6.2f} CPU), log-likelihoods BG/NBD {ours[0]:,.1f} / "
        f"{theirs[0]:,.1f}, Gamma-Gamma {ours[1]:,.1f} / {theirs[1]:,.1f}; MBG/NBD fit "
        f"{mbg:6.2f} s ({mbg_cpu:6.2f} CPU) against plain {mbg_plain:6.2f} s, "
        f"log-likelihoods {mbg_ours:,.1f} / {mbg_theirs:,.1f}; "
        f"columns {columns:5.2f} s, scoring {scoring:5.2f} s ({scoring_cpu:5.2f} CPU, fitted "
        f"on {scores.models.spend_fit.buyers if scores.models.spend_fit else 0:,} spenders, "
        f"{scores.models.purchase_model}); validation {validation:5.2f} s "
        f"({validation_cpu:5.2f} CPU) on {len(history.at):,} orders of {report.buyers:,} "
        f"buyers: {report.verdict}",
        markup=False,
    )


async def main(sizes: list[int], fit_sample: int | None = ScoringPolicy().fit_sample) -> None:
    policy = ScoringPolicy(fit_sample=fit_sample or None)
    for size in sizes:
        await asyncio.to_thread(measure, size, policy)


def timed(work: Callable[[], Result]) -> tuple[tuple[float, float], Result]:
    """Wall and CPU seconds of ``work()``, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return (time.perf_counter() - wall, time.process_time() - cpu), result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.scoring", description=__doc__)
    parser.add_argument("--scoring-buyers", type=int, nargs="+", default=list(SIZES))
    parser.add_argument(
        "--fit-sample",
        type=int,
        default=ScoringPolicy().fit_sample,
        help="buyers the scoring fits the models on; 0 for the whole base",
    )
    arguments = parser.parse_args()
    asyncio.run(main(arguments.scoring_buyers, arguments.fit_sample))
    console.print(summary())
