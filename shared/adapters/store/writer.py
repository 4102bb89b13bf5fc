"""The one writer of an SQLite database, in one process.

SQLite lets one transaction write at a time; a second writer of the same process that
met the first would busy-wait in SQLite (up to ``busy_timeout``, then ``database is
locked``, a 503) while holding a thread and a connection. So every adapter on one
engine (the store's units of work, the index of accepted event ids) queues on one
asyncio lock of that engine instead: :func:`writer_lock`. PostgreSQL needs none.
"""

from __future__ import annotations

import asyncio
import weakref

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.adapters.store.dialect import dialect_of

__all__ = ["writer_lock"]

_LOCKS: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()


def writer_lock(engine: AsyncEngine) -> asyncio.Lock | None:
    """The lock every writer on ``engine`` holds for its transaction; ``None`` unless
    the engine is SQLite's. The same lock for the same engine, whoever asks."""
    if not dialect_of(engine).one_writer:
        return None
    return _LOCKS.setdefault(engine.sync_engine, asyncio.Lock())
