"""Buyers drawn from BG/NBD and Gamma-Gamma with known parameters, for the model tests.

Each buyer's first order is at time 0 and the buyer is watched up to ``T``. While
alive the buyer orders as a Poisson process with a rate drawn from
``Gamma(r, rate alpha)``; after each repeat order they leave with a probability
drawn from ``Beta(a, b)``. Order values are ``Gamma(p, rate nu)`` with
``nu ~ Gamma(q, rate v)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shared.domain.predictions import BgNbdParams, GammaGammaParams
from shared.domain.validation import OrderLog

FloatArray = npt.NDArray[np.float64]

CDNOW_PURCHASES = BgNbdParams(r=0.24, alpha=4.41, a=0.79, b=2.43)
"""BG/NBD fitted on the CDNOW sample by Fader, Hardie & Lee (2005), in weeks."""
CDNOW_SPEND = GammaGammaParams(p=6.25, q=3.74, v=15.44)
"""Gamma-Gamma fitted on CDNOW's repeat buyers by Fader & Hardie, in dollars."""


@dataclass(frozen=True)
class SimulatedBase:
    x: FloatArray
    """Repeat orders up to T."""
    t_x: FloatArray
    T: FloatArray
    future: FloatArray
    """Repeat orders in (T, T + holdout]."""
    alive_at_T: npt.NDArray[np.bool_]


def simulate_purchases(
    params: BgNbdParams, T: FloatArray, holdout: float, rng: np.random.Generator
) -> SimulatedBase:
    """Draw each buyer's orders up to ``T`` and in the ``holdout`` after it."""
    size = len(T)
    rate = rng.gamma(params.r, 1.0 / params.alpha, size)
    dropout = rng.beta(params.a, params.b, size)
    # The number of repeat orders a buyer would ever place: the last one is the one
    # after which they leave.
    lifetime_orders = rng.geometric(dropout)
    x = np.zeros(size)
    t_x = np.zeros(size)
    future = np.zeros(size)
    clock = np.zeros(size)
    placed = np.zeros(size, dtype=np.int64)
    active = np.ones(size, dtype=bool)
    horizon = T + holdout
    while np.any(active):
        gaps = rng.exponential(1.0, size) / np.maximum(rate, 1e-300)
        clock = np.where(active, clock + gaps, clock)
        active &= clock <= horizon
        observed = active & (clock <= T)
        later = active & (clock > T)
        x += observed
        t_x = np.where(observed, clock, t_x)
        future += later
        placed += active
        active &= placed < lifetime_orders
    return SimulatedBase(x=x, t_x=t_x, T=T, future=future, alive_at_T=lifetime_orders > x)


def simulate_spend(params: GammaGammaParams, n: FloatArray, rng: np.random.Generator) -> FloatArray:
    """Each buyer's mean order value over ``n`` orders."""
    nu = rng.gamma(params.q, 1.0 / params.v, len(n))
    return rng.gamma(params.p * n, 1.0 / nu) / n


def simulate_order_log(
    purchases: BgNbdParams,
    spend: GammaGammaParams,
    first_orders: FloatArray,
    until: float,
    rng: np.random.Generator,
    *,
    start: float = 0.0,
) -> OrderLog:
    """Every order up to ``until`` of buyers whose first orders are at ``first_orders``
    (days after ``start``, Unix seconds), each order's total drawn from Gamma-Gamma."""
    size = len(first_orders)
    rate = rng.gamma(purchases.r, 1.0 / purchases.alpha, size)
    lifetime_orders = rng.geometric(rng.beta(purchases.a, purchases.b, size))
    nu = rng.gamma(spend.q, 1.0 / spend.v, size)
    buyers = [np.arange(size)]
    moments = [first_orders]
    # Only the buyers still ordering are drawn for, round by round.
    live = np.flatnonzero(first_orders <= until)
    clock = first_orders[live]
    placed = np.zeros(len(live), dtype=np.int64)
    while len(live):
        clock = clock + rng.exponential(1.0, len(live)) / rate[live]
        going = (clock <= until) & (placed < lifetime_orders[live])
        live, clock, placed = live[going], clock[going], placed[going] + 1
        buyers.append(live)
        moments.append(clock)
    who = np.concatenate(buyers)
    at = np.concatenate(moments)
    kept = at <= until
    who, at = who[kept], at[kept]
    return OrderLog(
        buyer=who,
        at=start + at * 86_400.0,
        total=rng.gamma(spend.p, 1.0 / nu[who]),
        buyers=size,
    )
