"""Accepted event ids on SQLAlchemy Core, in the ``event_ids`` table, on PostgreSQL and SQLite.

One claim is one transaction: ``INSERT … ON CONFLICT DO NOTHING RETURNING`` of every
id (sorted, so that two claims that share ids take their row locks in one order and
never deadlock), then, only for the ids that were there already, one ``SELECT`` of
their digests; any other digest rolls the whole claim back. On PostgreSQL an insert
that meets an id another transaction is inserting waits for that transaction to end,
and the ``SELECT`` (a statement of its own, under READ COMMITTED) then sees its row:
of two racing claims of one id, the second always sees the first's digest.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.adapters.clock import SystemClock
from shared.adapters.store import schema as t
from shared.adapters.store.errors import database_errors
from shared.ports.clock import Clock

__all__ = ["SqlEventIds"]

_CHUNK = 1000  # rows per statement: a request holds at most 1000 events anyway


class SqlEventIds:
    """An :class:`~shared.ports.event_ids.EventIds` over an async SQLAlchemy engine (not
    closed here: it is the store's or the API keys' engine)."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock | None = None) -> None:
        self.engine = engine
        self._clock = clock or SystemClock()
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        # SQLite allows one writer: claims of this process queue here rather than meet
        # "database is locked"; other processes wait on SQLite's busy timeout.
        self._writer = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        async with contextlib.AsyncExitStack() as stack:
            if self._writer is not None:
                await stack.enter_async_context(self._writer)
            stack.enter_context(database_errors())
            conn = await stack.enter_async_context(self.engine.connect())
            yield conn

    async def claim(self, digests: Mapping[str, bytes]) -> set[str]:
        if not digests:
            return set()
        ids = sorted(digests)
        at = self._clock.now()
        table = t.event_ids
        async with self._transaction() as conn:
            new: set[str] = set()
            for start in range(0, len(ids), _CHUNK):
                stmt = (
                    self._insert(table)
                    .values(
                        [
                            {"event_id": i, "digest": digests[i], "claimed_at": at}
                            for i in ids[start : start + _CHUNK]
                        ]
                    )
                    .on_conflict_do_nothing(index_elements=["event_id"])
                    .returning(table.c.event_id)
                )
                new.update((await conn.scalars(stmt)).all())
            known = [i for i in ids if i not in new]
            conflicts: set[str] = set()
            for start in range(0, len(known), _CHUNK):
                rows = await conn.execute(
                    select(table.c.event_id, table.c.digest).where(
                        table.c.event_id.in_(known[start : start + _CHUNK])
                    )
                )
                conflicts.update(r.event_id for r in rows if bytes(r.digest) != digests[r.event_id])
            if conflicts:
                await conn.rollback()
            else:
                await conn.commit()
        return conflicts
