"""The backlog of the embedded pipeline: its consumer groups' lag on the embedded bus,
and the outbox rows not published yet, all in the one SQLite database."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.adapters.bus.sqlite import SqliteBus
from shared.adapters.store import schema

__all__ = ["EmbeddedBacklog"]


class EmbeddedBacklog:
    """A :class:`~shared.ports.backlog.Backlog`: ``lags`` names each consumer group and
    the topics it reads; the outbox is the one on ``engine``."""

    def __init__(
        self,
        bus: SqliteBus,
        engine: AsyncEngine,
        lags: Sequence[tuple[str, Sequence[str]]],
    ) -> None:
        self._bus = bus
        self._engine = engine
        self._lags = lags

    async def outstanding(self) -> int:
        total = 0
        for group, topics in self._lags:
            total += await self._bus.lag(group, topics)
        return total + await self._unpublished_outbox()

    async def _unpublished_outbox(self) -> int:
        async with self._engine.connect() as conn:
            count = await conn.scalar(
                select(func.count())
                .select_from(schema.outbox)
                .where(schema.outbox.c.published_at.is_(None))
            )
        return int(count or 0)
