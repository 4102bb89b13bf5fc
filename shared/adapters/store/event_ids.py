"""Accepted event ids on SQLAlchemy Core, in the ``event_ids`` table, on PostgreSQL and SQLite.

A row is keyed by ``(tenant, event_id)`` (see :data:`~shared.ports.event_ids.EventKey`).
One claim is one transaction: one ``INSERT … ON CONFLICT DO NOTHING RETURNING`` of
every id (sorted, so that two claims that share ids take their row locks in one order
and never deadlock), then, only for the ids that were there already, one ``SELECT``
of the digests of those ids (in any tenant: the other tenants' rows are
left out after); other content (:func:`~shared.domain.event_content.same_content`:
a digest of the same version that differs) rolls the whole claim back, and a digest of
another version is replaced by the one given (one ``UPDATE``, after a deploy only). Any
other content rolls the whole claim back. On PostgreSQL the
insert takes the tenants, ids and digests as three arrays (``unnest``), one statement of four
parameters whatever the batch; on SQLite it is an executemany, which SQLAlchemy sends
as one multi-row statement. On PostgreSQL an insert that meets an id another
transaction is inserting waits for that transaction to end, and the ``SELECT`` (a
statement of its own, under READ COMMITTED) then sees its row: of two racing claims
of one id, the second always sees the first's digest.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from sqlalchemy import LargeBinary, String, any_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.adapters.clock import SystemClock
from shared.adapters.store import schema as t
from shared.adapters.store.dialect import dialect_of
from shared.adapters.store.errors import database_errors
from shared.adapters.store.writer import writer_lock
from shared.domain.event_content import same_content
from shared.ports.clock import Clock
from shared.ports.event_ids import EventKey

__all__ = ["SqlEventIds"]


def _postgresql_statements() -> tuple[Any, Any]:
    """The insert and the digests of known ids, each taking its ids as one array."""
    given = (
        func.unnest(
            bindparam("tenants", type_=postgresql.ARRAY(String)),
            bindparam("event_ids", type_=postgresql.ARRAY(String)),
            bindparam("digests", type_=postgresql.ARRAY(LargeBinary)),
        )
        .table_valued("tenant", "event_id", "digest")
        .render_derived(name="given")
    )
    rows = select(
        given.c.tenant,
        given.c.event_id,
        given.c.digest,
        bindparam("claimed_at", type_=t.UTCDateTime),
    ).order_by(given.c.tenant, given.c.event_id)
    insert = (
        postgresql.insert(t.event_ids)
        .from_select(["tenant", "event_id", "digest", "claimed_at"], rows)
        .on_conflict_do_nothing(index_elements=["tenant", "event_id"])
        .returning(t.event_ids.c.tenant, t.event_ids.c.event_id)
    )
    ids = bindparam("event_ids", type_=postgresql.ARRAY(String))
    known = select(t.event_ids.c.tenant, t.event_ids.c.event_id, t.event_ids.c.digest).where(
        t.event_ids.c.event_id == any_(ids)
    )
    return insert, known


def _sqlite_statements() -> tuple[Any, Any]:
    """The insert (an executemany: one multi-row statement) and the digests of known ids."""
    insert = (
        sqlite.insert(t.event_ids)
        .on_conflict_do_nothing(index_elements=["tenant", "event_id"])
        .returning(t.event_ids.c.tenant, t.event_ids.c.event_id)
    )
    known = select(t.event_ids.c.tenant, t.event_ids.c.event_id, t.event_ids.c.digest).where(
        t.event_ids.c.event_id.in_(bindparam("event_ids", expanding=True))
    )
    return insert, known


class SqlEventIds:
    """An :class:`~shared.ports.event_ids.EventIds` over an async SQLAlchemy engine (not
    closed here: it is the store's or the API keys' engine)."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock | None = None) -> None:
        self.engine = engine
        self._clock = clock or SystemClock()
        self._arrays = dialect_of(engine).arrays
        self._insert, self._known = (
            _postgresql_statements() if self._arrays else _sqlite_statements()
        )
        # SQLite allows one writer: claims queue with the store's units of work on the
        # engine's one lock rather than busy-wait in SQLite; other processes wait on
        # SQLite's busy timeout.
        self._writer = writer_lock(engine)
        self._update = (
            update(t.event_ids)
            .where(t.event_ids.c.tenant == bindparam("t"), t.event_ids.c.event_id == bindparam("e"))
            .values(digest=bindparam("d"))
        )

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        async with contextlib.AsyncExitStack() as stack:
            if self._writer is not None:
                await stack.enter_async_context(self._writer)
            stack.enter_context(database_errors())
            conn = await stack.enter_async_context(self.engine.connect())
            yield conn

    async def _insert_new(
        self, conn: AsyncConnection, keys: list[EventKey], digests: Mapping[EventKey, bytes]
    ) -> set[EventKey]:
        """Insert the ids not there yet; the ones inserted."""
        at = self._clock.now()
        if self._arrays:
            parameters = {
                "tenants": [tenant for tenant, _ in keys],
                "event_ids": [event_id for _, event_id in keys],
                "digests": [digests[k] for k in keys],
                "claimed_at": at,
            }
            result = await conn.execute(self._insert, parameters)
        else:
            rows = [
                {"tenant": k[0], "event_id": k[1], "digest": digests[k], "claimed_at": at}
                for k in keys
            ]
            result = await conn.execute(self._insert, rows)
        return {(r.tenant, r.event_id) for r in result}

    async def claim(self, digests: Mapping[EventKey, bytes]) -> set[EventKey]:
        if not digests:
            return set()
        keys = sorted(digests)
        async with self._transaction() as conn:
            new = await self._insert_new(conn, keys, digests)
            known = [k for k in keys if k not in new]
            conflicts: set[EventKey] = set()
            stale: list[EventKey] = []
            if known:
                ids = sorted({event_id for _, event_id in known})
                rows = await conn.execute(self._known, {"event_ids": ids})
                for r in rows:
                    key = (r.tenant, r.event_id)
                    if key not in digests or bytes(r.digest) == digests[key]:
                        continue
                    if same_content(bytes(r.digest), digests[key]):
                        stale.append(key)
                    else:
                        conflicts.add(key)
            if stale and not conflicts:
                await conn.execute(
                    self._update,
                    [{"t": k[0], "e": k[1], "d": digests[k]} for k in sorted(stale)],
                )
            if conflicts:
                await conn.rollback()
            else:
                await conn.commit()
        return conflicts
