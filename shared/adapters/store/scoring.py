"""The scoring job's view of the base (:class:`~shared.ports.scoring.ScoringBase`), over
the store's engine: the order totals a page at a time (the keyset query of
:mod:`~shared.adapters.store.buyers`), and a lock so one segmenter replica scores at a
time (a session advisory lock on PostgreSQL; SQLite has one process)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.adapters.store.buyers import page_query
from shared.adapters.store.dialect import dialect_of
from shared.adapters.store.errors import database_errors
from shared.adapters.store.schema import profiles, scoring_runs
from shared.domain.scoring import BuyerFacts
from shared.ports.scoring import ScoringRecord

__all__ = ["SqlScoringBase"]

_LOCK_KEY = 0x6E75_6467_6573_636F  # "nudgesco": one scoring run at a time
_LOCAL = asyncio.Lock()


class SqlScoringBase:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def page(self, *, after: str | None, limit: int) -> list[BuyerFacts]:
        query = page_query(
            profiles.c.id,
            profiles.c.orders_count,
            profiles.c.revenue_total,
            profiles.c.refunds_total,
            profiles.c.first_order_at,
            profiles.c.last_order_at,
            after=after,
            limit=limit,
        )
        with database_errors():
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        return [
            BuyerFacts(
                buyer_id=row.id,
                orders_count=row.orders_count,
                net_revenue=row.revenue_total - row.refunds_total,
                first_order_at=row.first_order_at,
                last_order_at=row.last_order_at,
            )
            for row in rows
        ]

    async def last_scored_at(self) -> datetime | None:
        with database_errors():
            async with self.engine.connect() as conn:
                latest: datetime | None = await conn.scalar(select(func.max(profiles.c.scored_at)))
        return latest

    async def record_run(self, run: ScoringRecord) -> None:
        row = {
            "scored_at": run.scored_at,
            "recorded_at": run.recorded_at,
            "buyers": run.buyers,
            "scored": run.scored,
            "purchase_model": run.purchase_model,
            "spend_model": run.spend_model,
            "fallbacks": list(run.fallbacks),
            "notes": list(run.notes),
        }
        with database_errors():
            async with self.engine.begin() as conn:
                await conn.execute(insert(scoring_runs).values(row))

    async def last_run(self) -> ScoringRecord | None:
        query = select(scoring_runs).order_by(scoring_runs.c.id.desc()).limit(1)
        with database_errors():
            async with self.engine.connect() as conn:
                row = (await conn.execute(query)).first()
        if row is None:
            return None
        return ScoringRecord(
            scored_at=row.scored_at,
            recorded_at=row.recorded_at,
            buyers=row.buyers,
            scored=row.scored,
            purchase_model=row.purchase_model,
            spend_model=row.spend_model,
            fallbacks=tuple(row.fallbacks),
            notes=tuple(row.notes),
        )

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[bool]:
        if not dialect_of(self.engine).advisory_locks:
            if _LOCAL.locked():
                yield False
                return
            async with _LOCAL:
                yield True
            return
        with database_errors():
            async with self.engine.connect() as conn:
                got = bool(await conn.scalar(text(f"SELECT pg_try_advisory_lock({_LOCK_KEY})")))
                await conn.commit()
                try:
                    yield got
                finally:
                    if got:
                        await conn.execute(text(f"SELECT pg_advisory_unlock({_LOCK_KEY})"))
                        await conn.commit()
