"""Transactions CSV files for the replay tests, and what a buyer's figures must be after."""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from shared.synthetic import synthetic_events

COLUMNS = ["customer_id", "date", "amount", "order_id", "sku", "category", "quantity", "store_id"]


@dataclass
class Figures:
    """One buyer's figures, computed straight from the CSV."""

    orders_count: int = 0
    revenue_total: Decimal = Decimal("0.00")
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def synthetic_rows(buyers: int, days: int, seed: int, start: datetime) -> list[dict[str, Any]]:
    """The synthetic shop's purchases as CSV rows: each order split over one to three lines,
    with a local time and no offset (read in UTC), shuffled so that an order's lines are
    not next to each other."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for event in synthetic_events(buyers, days, seed, start):
        data = event["data"]
        total = Decimal(data["total"])
        parts = rng.randint(1, 3)
        cents = int(total * 100)
        cuts = sorted(rng.randint(0, cents) for _ in range(parts - 1))
        amounts = [b - a for a, b in zip([0, *cuts], [*cuts, cents], strict=True)]
        at = datetime.fromisoformat(event["occurred_at"]).astimezone(UTC).replace(tzinfo=None)
        for n, amount in enumerate(amounts):
            rows.append(
                {
                    "customer_id": event["customer"]["id"],
                    "date": at.isoformat(sep=" "),
                    "amount": f"{Decimal(amount) / 100:.2f}",
                    "order_id": data["order_id"],
                    "sku": f"{data['items'][0]['sku']}-{n}",
                    "category": data["items"][0]["category"],
                    "quantity": rng.randint(1, 3),
                    "store_id": f"store-{rng.randint(1, 4)}",
                }
            )
    rng.shuffle(rows)
    return rows


def figures_of(rows: list[dict[str, Any]]) -> dict[str, Figures]:
    """Per customer id: orders (distinct order ids), revenue, first and last order."""
    orders: dict[str, set[str]] = defaultdict(set)
    found: dict[str, Figures] = defaultdict(Figures)
    for row in rows:
        at = datetime.fromisoformat(row["date"])
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        figures = found[row["customer_id"]]
        orders[row["customer_id"]].add(row["order_id"])
        figures.orders_count = len(orders[row["customer_id"]])
        figures.revenue_total += Decimal(row["amount"])
        figures.first_order_at = min(figures.first_order_at or at, at)
        figures.last_order_at = max(figures.last_order_at or at, at)
    return dict(found)


def exported_figures(line: dict[str, Any]) -> Figures:
    stats = line["stats"]
    return Figures(
        orders_count=stats["orders_count"],
        revenue_total=Decimal(stats["revenue_total"]),
        first_order_at=datetime.fromisoformat(stats["first_order_at"]),
        last_order_at=datetime.fromisoformat(stats["last_order_at"]),
    )


def as_key(figures: Figures) -> tuple[Any, ...]:
    return (
        figures.orders_count,
        figures.revenue_total,
        figures.first_order_at,
        figures.last_order_at,
    )


START = datetime(2026, 1, 5, tzinfo=UTC)
__all__ = [
    "COLUMNS",
    "START",
    "Figures",
    "as_key",
    "exported_figures",
    "figures_of",
    "synthetic_rows",
    "write_csv",
]
