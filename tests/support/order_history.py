"""A shop's order history drawn from BG/NBD and Gamma-Gamma with known parameters, kept in
a store as the segmenter keeps it: what the validation tests of the CLI and the console
read back."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np

from shared.adapters.store.engine import open_store
from shared.ports.store import PlacedOrder
from tests.unit.simulated_buyers import simulate_order_log
from tests.unit.test_validation import START, TRUE_PURCHASES, TRUE_SPEND

__all__ = ["seed_order_history"]


async def seed_order_history(url: str, buyers: int, seed: int = 11) -> None:
    """``buyers`` buyers' orders over two years from ``START``, first orders in the first."""
    rng = np.random.default_rng(seed)
    log = simulate_order_log(
        TRUE_PURCHASES,
        TRUE_SPEND,
        rng.uniform(0.0, 365.0, buyers),
        720.0,
        rng,
        start=START.timestamp(),
    )
    orders = [
        PlacedOrder(
            f"o{n}",
            f"b{int(buyer):05d}",
            datetime.fromtimestamp(float(at), UTC),
            Decimal(f"{total:.2f}"),
            "RUB",
        )
        for n, (buyer, at, total) in enumerate(zip(log.buyer, log.at, log.total, strict=True))
    ]
    store = open_store(url)
    try:
        async with store.unit_of_work() as uow:
            await uow.placed_orders.record(orders)
            await uow.commit()
    finally:
        await store.close()
