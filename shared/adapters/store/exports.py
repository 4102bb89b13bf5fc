"""The export port on SQLAlchemy Core, over the store's tables, on PostgreSQL and SQLite.

Each page is three statements (profiles after an id, then their identifiers and
memberships), read in one transaction so that they agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.adapters.store import schema as t
from shared.adapters.store.buyers import page_query
from shared.adapters.store.engine import create_engine
from shared.adapters.store.errors import database_errors
from shared.adapters.store.sql import _profile
from shared.ports.exports import ExportedProfile

__all__ = ["SqlProfileExport", "open_profile_export"]


class SqlProfileExport:
    """A :class:`~shared.ports.exports.ProfileExport` over an async SQLAlchemy engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def page(self, *, after: str | None, limit: int) -> Sequence[ExportedProfile]:
        query = page_query(t.profiles, after=after, limit=limit)
        with database_errors():
            async with self.engine.connect() as conn, conn.begin():
                profiles = [_profile(row) for row in await conn.execute(query)]
                ids = [p.id for p in profiles]
                if not ids:
                    return []
                identifiers: dict[str, dict[str, list[str]]] = {i: {} for i in ids}
                rows = await conn.execute(
                    select(t.identifiers)
                    .where(t.identifiers.c.profile_id.in_(ids))
                    .where(t.identifiers.c.kind != "profile_id")
                    .order_by(t.identifiers.c.kind, t.identifiers.c.value)
                )
                for row in rows:
                    identifiers[row.profile_id].setdefault(row.kind, []).append(row.value)
                segments: dict[str, dict[str, datetime]] = {i: {} for i in ids}
                rows = await conn.execute(
                    select(t.memberships)
                    .where(t.memberships.c.profile_id.in_(ids))
                    .order_by(t.memberships.c.segment)
                )
                for row in rows:
                    segments[row.profile_id][row.segment] = row.entered_at
        return [
            ExportedProfile(
                profile=p,
                identifiers={kind: tuple(v) for kind, v in identifiers[p.id].items()},
                segments=segments[p.id],
            )
            for p in profiles
        ]

    async def close(self) -> None:
        await self.engine.dispose()


def open_profile_export(url: str) -> SqlProfileExport:
    """The buyers in the database at ``url`` (``postgresql+asyncpg://…`` or ``sqlite+aiosqlite:///…``)."""
    return SqlProfileExport(create_engine(url))
