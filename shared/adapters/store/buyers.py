"""Buyers in id order, a page at a time (:class:`~shared.ports.buyers.BuyerPages`), on
SQLAlchemy Core: the one keyset query every reader of the whole base pages with.

:func:`page_query` is that query, of the columns a reader needs (the scoring job
reads six, the console's scan fourteen, a recompute or an export the whole row);
:class:`SqlBuyerPages` is the port over whole profiles. Beside it, the two other
reads of the base the console and the segmenter share: how many live buyers there
are (:func:`live_count`) and one buyer as they are now (:func:`current_profile`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.expression import ColumnElement, FromClause

from shared.adapters.store import schema as t
from shared.adapters.store.errors import connected
from shared.adapters.store.sql import _profile
from shared.domain.profile import Profile

__all__ = ["SqlBuyerPages", "current_profile", "live_count", "page_query"]

_MERGE_CHAIN = 32
"""How many merges a profile id is followed through before giving up (a cycle is a bug)."""


def page_query(
    *columns: ColumnElement[Any] | FromClause, after: str | None, limit: int
) -> Select[Any]:
    """``columns`` of up to ``limit`` live profiles with an id above ``after``, in id order."""
    p = t.profiles
    query = select(*columns).where(p.c.merged_into.is_(None)).order_by(p.c.id).limit(limit)
    return query if after is None else query.where(p.c.id > after)


async def live_count(conn: AsyncConnection) -> int:
    """How many live profiles there are (a profile merged into another counts once)."""
    p = t.profiles
    total = await conn.scalar(select(func.count()).select_from(p).where(p.c.merged_into.is_(None)))
    return int(total or 0)


async def current_profile(conn: AsyncConnection, profile_id: str) -> Profile | None:
    """The profile ``profile_id`` names, following merges to the buyer as they are now."""
    p = t.profiles
    for _ in range(_MERGE_CHAIN):
        row = (await conn.execute(select(p).where(p.c.id == profile_id))).first()
        if row is None or row.merged_into is None:
            return None if row is None else _profile(row)
        profile_id = row.merged_into
    raise RuntimeError(f"merge chain from {profile_id} does not end")


class SqlBuyerPages:
    """A :class:`~shared.ports.buyers.BuyerPages` of whole profiles over an async
    SQLAlchemy engine (not closed here: it is its owner's)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def page(self, *, after: str | None, limit: int) -> Sequence[Profile]:
        async with connected(self.engine) as conn:
            rows = await conn.execute(page_query(t.profiles, after=after, limit=limit))
            return [_profile(row) for row in rows]
