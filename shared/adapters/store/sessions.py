"""Console sessions on SQLAlchemy Core, in the ``console_sessions`` table, on PostgreSQL
and SQLite alike.

The session id is 32 random bytes (URL-safe base64) made here and handed to the
caller once; the table keeps its SHA-256 only. Checking a session is one read by
primary key; the time it was last seen is written at most once a minute.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.adapters.clock import SystemClock
from shared.adapters.store import schema as t
from shared.adapters.store.errors import connected
from shared.ports.clock import Clock

__all__ = ["SEEN_EVERY", "SqlSessions", "session_hash"]

SEEN_EVERY = timedelta(minutes=1)
"""How stale ``last_seen_at`` may get before a request writes it again."""
_MAX_ID = 100  # ids made here are 43 characters; a longer one is no session's

_sessions = t.console_sessions


def session_hash(session_id: str) -> str:
    """What the table keeps of ``session_id``: its SHA-256, in hex."""
    return hashlib.sha256(session_id.encode()).hexdigest()


class SqlSessions:
    """A :class:`~shared.ports.sessions.Sessions` over an async SQLAlchemy engine."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock | None = None) -> None:
        self.engine = engine
        self._clock = clock or SystemClock()

    async def start(self, user_id: str, lifetime: timedelta) -> str:
        if lifetime <= timedelta(0):
            raise ValueError("a session lasts a positive time")
        session_id = secrets.token_urlsafe(32)
        now = self._clock.now()
        async with connected(self.engine) as conn:
            await conn.execute(delete(_sessions).where(_sessions.c.expires_at <= now))
            await conn.execute(
                insert(_sessions).values(
                    id_hash=session_hash(session_id),
                    user_id=user_id,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + lifetime,
                )
            )
            await conn.commit()
        return session_id

    async def user_of(self, session_id: str) -> str | None:
        if not session_id or len(session_id) > _MAX_ID:
            return None
        now = self._clock.now()
        id_hash = session_hash(session_id)
        async with connected(self.engine) as conn:
            row = (
                await conn.execute(
                    select(_sessions.c.user_id, _sessions.c.last_seen_at).where(
                        _sessions.c.id_hash == id_hash,
                        _sessions.c.revoked_at.is_(None),
                        _sessions.c.expires_at > now,
                    )
                )
            ).first()
            if row is None:
                return None
            if now - row.last_seen_at >= SEEN_EVERY:
                await conn.execute(
                    update(_sessions).where(_sessions.c.id_hash == id_hash).values(last_seen_at=now)
                )
                await conn.commit()
        user_id: str = row.user_id
        return user_id

    async def end(self, session_id: str) -> None:
        async with connected(self.engine) as conn:
            await conn.execute(
                update(_sessions)
                .where(_sessions.c.id_hash == session_hash(session_id))
                .where(_sessions.c.revoked_at.is_(None))
                .values(revoked_at=self._clock.now())
            )
            await conn.commit()

    async def end_all(self, user_id: str) -> int:
        now = self._clock.now()
        async with connected(self.engine) as conn:
            ended = await conn.execute(
                update(_sessions)
                .where(_sessions.c.user_id == user_id)
                .where(_sessions.c.revoked_at.is_(None), _sessions.c.expires_at > now)
                .values(revoked_at=now)
            )
            await conn.commit()
        return ended.rowcount

    async def close(self) -> None:
        await self.engine.dispose()
