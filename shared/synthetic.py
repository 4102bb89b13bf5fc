"""Synthetic buyers for the demo and the benchmarks: seeded, so the same seed gives the same shop.

Each buyer has a rhythm (days between orders), a usual check and a day after which
they stop buying; some never give an email. The events are plain dicts in the
v1 contract, ready to post to ``/v1/events``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

__all__ = ["SyntheticBuyer", "synthetic_buyers", "synthetic_events"]

_CATEGORIES = ("pet-food", "baby", "groceries", "cosmetics", "household")
_RHYTHMS = (7, 14, 30, 30, 30, 45, 60)


@dataclass(frozen=True)
class SyntheticBuyer:
    customer_id: str
    email: str | None
    rhythm_days: int
    usual_check: Decimal
    first_order_day: int
    stops_after_day: int
    category: str


def synthetic_buyers(count: int, days: int, seed: int) -> list[SyntheticBuyer]:
    rng = random.Random(seed)
    buyers = []
    for n in range(count):
        first = rng.randrange(max(1, days // 3))
        buyers.append(
            SyntheticBuyer(
                customer_id=f"c{seed}-{n:06d}",
                email=f"buyer{n}@example.com" if rng.random() < 0.9 else None,
                rhythm_days=rng.choice(_RHYTHMS),
                usual_check=Decimal(round(rng.lognormvariate(8.0, 0.5), 2)).quantize(
                    Decimal("0.01")
                ),
                first_order_day=first,
                stops_after_day=first + rng.randrange(days + 30),
                category=rng.choice(_CATEGORIES),
            )
        )
    return buyers


def synthetic_events(count: int, days: int, seed: int, start: datetime) -> Iterator[dict[str, Any]]:
    """Purchase events of ``count`` buyers over ``days`` days from ``start``, in time order."""
    rng = random.Random(seed + 1)
    events: list[tuple[datetime, dict[str, Any]]] = []
    for buyer in synthetic_buyers(count, days, seed):
        day = float(buyer.first_order_day)
        order = 0
        while day < days and day <= buyer.stops_after_day:
            at = start + timedelta(days=day, hours=rng.randrange(8, 22), minutes=rng.randrange(60))
            total = (buyer.usual_check * Decimal(rng.uniform(0.7, 1.3))).quantize(Decimal("0.01"))
            customer: dict[str, Any] = {"id": buyer.customer_id}
            if buyer.email:
                customer["email"] = buyer.email
            order += 1
            events.append(
                (
                    at,
                    {
                        "event_id": f"{buyer.customer_id}-o{order}",
                        "type": "purchase",
                        "occurred_at": at.isoformat(),
                        "customer": customer,
                        "data": {
                            "order_id": f"{buyer.customer_id}-{order}",
                            "total": str(total),
                            "currency": "RUB",
                            "items": [
                                {
                                    "sku": f"{buyer.category}-{rng.randrange(20):02d}",
                                    "category": buyer.category,
                                    "quantity": 1,
                                    "price": str(total),
                                }
                            ],
                        },
                    },
                )
            )
            day += max(1.0, rng.gauss(buyer.rhythm_days, buyer.rhythm_days * 0.15))
    events.sort(key=lambda pair: pair[0])
    return (event for _, event in events)
