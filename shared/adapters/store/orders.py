"""The order history model validation reads (:class:`~shared.ports.orders.OrderHistory`),
over the store's engine: a page of buyers with orders, in id order, each with every
order they placed, oldest first."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.adapters.store.errors import database_errors
from shared.adapters.store.schema import placed_orders
from shared.domain.validation import BuyerOrders

__all__ = ["SqlOrderHistory"]


class SqlOrderHistory:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def page(self, *, after: str | None, limit: int) -> list[BuyerOrders]:
        o = placed_orders.c
        buyers = select(o.profile_id).distinct().order_by(o.profile_id).limit(limit)
        if after is not None:
            buyers = buyers.where(o.profile_id > after)
        query = (
            select(o.profile_id, o.placed_at, o.total)
            .where(o.profile_id.in_(buyers.scalar_subquery()))
            .order_by(o.profile_id, o.placed_at, o.order_id)
        )
        with database_errors():
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        found: dict[str, tuple[list[datetime], list[Decimal]]] = {}
        for row in rows:
            moments, totals = found.setdefault(row.profile_id, ([], []))
            moments.append(row.placed_at)
            totals.append(row.total)
        return [
            BuyerOrders(buyer, tuple(moments), tuple(totals))
            for buyer, (moments, totals) in found.items()
        ]
