"""Accepted event ids on SQLAlchemy Core, in the ``event_ids`` table, on PostgreSQL and SQLite.

One claim is one transaction: one ``INSERT … ON CONFLICT DO NOTHING RETURNING`` of
every id (sorted, so that two claims that share ids take their row locks in one order
and never deadlock), then, only for the ids that were there already, one ``SELECT``
of their digests; any other digest rolls the whole claim back. On PostgreSQL the
insert takes the ids and digests as two arrays (``unnest``), one statement of three
parameters whatever the batch; on SQLite it is an executemany, which SQLAlchemy sends
as one multi-row statement. On PostgreSQL an insert that meets an id another
transaction is inserting waits for that transaction to end, and the ``SELECT`` (a
statement of its own, under READ COMMITTED) then sees its row: of two racing claims
of one id, the second always sees the first's digest.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from sqlalchemy import LargeBinary, String, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.adapters.clock import SystemClock
from shared.adapters.store import schema as t
from shared.adapters.store.errors import database_errors
from shared.ports.clock import Clock

__all__ = ["SqlEventIds"]


def _postgresql_statements() -> tuple[Any, Any]:
    """The insert and the digests of known ids, each taking its ids as one array."""
    given = (
        func.unnest(
            bindparam("event_ids", type_=postgresql.ARRAY(String)),
            bindparam("digests", type_=postgresql.ARRAY(LargeBinary)),
        )
        .table_valued("event_id", "digest")
        .render_derived(name="given")
    )
    rows = select(
        given.c.event_id, given.c.digest, bindparam("claimed_at", type_=t.UTCDateTime)
    ).order_by(given.c.event_id)
    insert = (
        postgresql.insert(t.event_ids)
        .from_select(["event_id", "digest", "claimed_at"], rows)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(t.event_ids.c.event_id)
    )
    ids = bindparam("event_ids", type_=postgresql.ARRAY(String))
    known = select(t.event_ids.c.event_id, t.event_ids.c.digest).where(
        t.event_ids.c.event_id == any_(ids)
    )
    return insert, known


def _sqlite_statements() -> tuple[Any, Any]:
    """The insert (an executemany: one multi-row statement) and the digests of known ids."""
    insert = (
        sqlite.insert(t.event_ids)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(t.event_ids.c.event_id)
    )
    known = select(t.event_ids.c.event_id, t.event_ids.c.digest).where(
        t.event_ids.c.event_id.in_(bindparam("event_ids", expanding=True))
    )
    return insert, known


class SqlEventIds:
    """An :class:`~shared.ports.event_ids.EventIds` over an async SQLAlchemy engine (not
    closed here: it is the store's or the API keys' engine)."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock | None = None) -> None:
        self.engine = engine
        self._clock = clock or SystemClock()
        self._postgresql = engine.dialect.name == "postgresql"
        self._insert, self._known = (
            _postgresql_statements() if self._postgresql else _sqlite_statements()
        )
        # SQLite allows one writer: claims of this process queue here rather than meet
        # "database is locked"; other processes wait on SQLite's busy timeout.
        self._writer = None if self._postgresql else asyncio.Lock()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        async with contextlib.AsyncExitStack() as stack:
            if self._writer is not None:
                await stack.enter_async_context(self._writer)
            stack.enter_context(database_errors())
            conn = await stack.enter_async_context(self.engine.connect())
            yield conn

    async def _insert_new(
        self, conn: AsyncConnection, ids: list[str], digests: Mapping[str, bytes]
    ) -> set[str]:
        """Insert the ids not there yet; the ones inserted."""
        at = self._clock.now()
        if self._postgresql:
            parameters = {"event_ids": ids, "digests": [digests[i] for i in ids], "claimed_at": at}
            return set((await conn.scalars(self._insert, parameters)).all())
        rows = [{"event_id": i, "digest": digests[i], "claimed_at": at} for i in ids]
        return set((await conn.scalars(self._insert, rows)).all())

    async def claim(self, digests: Mapping[str, bytes]) -> set[str]:
        if not digests:
            return set()
        ids = sorted(digests)
        async with self._transaction() as conn:
            new = await self._insert_new(conn, ids, digests)
            known = [i for i in ids if i not in new]
            conflicts: set[str] = set()
            if known:
                rows = await conn.execute(self._known, {"event_ids": known})
                conflicts = {r.event_id for r in rows if bytes(r.digest) != digests[r.event_id]}
            if conflicts:
                await conn.rollback()
            else:
                await conn.commit()
        return conflicts
