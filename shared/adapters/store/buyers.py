"""Buyers in id order, a page at a time (:class:`~shared.ports.buyers.BuyerPages`), on
SQLAlchemy Core: the one keyset query every reader of the whole base pages with.

:func:`page_query` is that query, of the columns a reader needs (the scoring job
reads six, the console's scan fourteen, a recompute or an export the whole row);
:class:`SqlBuyerPages` is the port over whole profiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.expression import ColumnElement, FromClause

from shared.adapters.store import schema as t
from shared.adapters.store.errors import connected
from shared.adapters.store.sql import _profile
from shared.domain.profile import Profile

__all__ = ["SqlBuyerPages", "page_query"]


def page_query(
    *columns: ColumnElement[Any] | FromClause, after: str | None, limit: int
) -> Select[Any]:
    """``columns`` of up to ``limit`` live profiles with an id above ``after``, in id order."""
    p = t.profiles
    query = select(*columns).where(p.c.merged_into.is_(None)).order_by(p.c.id).limit(limit)
    return query if after is None else query.where(p.c.id > after)


class SqlBuyerPages:
    """A :class:`~shared.ports.buyers.BuyerPages` of whole profiles over an async
    SQLAlchemy engine (not closed here: it is its owner's)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def page(self, *, after: str | None, limit: int) -> Sequence[Profile]:
        async with connected(self.engine) as conn:
            rows = await conn.execute(page_query(t.profiles, after=after, limit=limit))
            return [_profile(row) for row in rows]
