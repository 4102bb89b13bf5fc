"""Promo codes as a unit of work takes them (``uow.offer_codes``), in its transaction.

A message takes a free code of its offer's pool with ``SELECT … FOR UPDATE SKIP LOCKED``
(two dispatchers never wait on each other's code, and never get the same one) and marks
it ``issued`` in the transaction that writes the message's row; a generated code is
written ``issued``. SQLite, one writer at a time, needs no row lock. The unique index on
``message_key`` keeps a message to one code whatever happens.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.adapters.store import schema as t
from shared.adapters.store.dialect import Dialect
from shared.ports.offers import IssuedOfferCode

__all__ = ["SqlOfferCodes"]

_CHUNK = 1000


class SqlOfferCodes:
    """A :class:`~shared.ports.offers.OfferCodes` in a unit of work's transaction."""

    def __init__(self, conn: AsyncConnection, dialect: Dialect) -> None:
        self.conn = conn
        self.dialect = dialect

    async def take(
        self,
        offer: str,
        message_key: str,
        profile_id: str,
        at: datetime,
        expires_at: datetime | None,
    ) -> str | None:
        c = t.offer_codes
        found = await self.conn.scalar(
            select(c.c.code)
            .where(c.c.offer == offer, c.c.state == "free")
            .order_by(c.c.added_at, c.c.code)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if found is None:
            return None
        await self.conn.execute(
            update(c)
            .where(c.c.offer == offer, c.c.code == found)
            .values(
                state="issued",
                message_key=message_key,
                profile_id=profile_id,
                issued_at=at,
                expires_at=expires_at,
            )
        )
        return str(found)

    async def record(self, issued: IssuedOfferCode) -> None:
        await self.conn.execute(
            self.dialect.insert(t.offer_codes).values(
                offer=issued.offer,
                code=issued.code,
                source="generated",
                state="issued",
                message_key=issued.message_key,
                profile_id=issued.profile_id,
                added_at=issued.issued_at,
                issued_at=issued.issued_at,
                expires_at=issued.expires_at,
            )
        )

    async def of_messages(self, message_keys: Collection[str]) -> dict[str, IssuedOfferCode]:
        c = t.offer_codes
        found: dict[str, IssuedOfferCode] = {}
        keys = list(message_keys)
        for start in range(0, len(keys), _CHUNK):
            rows = await self.conn.execute(
                select(c).where(c.c.message_key.in_(keys[start : start + _CHUNK]))
            )
            for row in rows:
                found[row.message_key] = IssuedOfferCode(
                    row.offer,
                    row.code,
                    row.message_key,
                    row.profile_id,
                    row.issued_at,
                    row.expires_at,
                )
        return found

    async def release(self, message_keys: Collection[str]) -> int:
        c = t.offer_codes
        keys = list(message_keys)
        released = 0
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            await self.conn.execute(
                delete(c).where(c.c.message_key.in_(chunk), c.c.source == "generated")
            )
            freed = await self.conn.execute(
                update(c)
                .where(c.c.message_key.in_(chunk))
                .values(
                    state="free", message_key=None, profile_id=None, issued_at=None, expires_at=None
                )
            )
            released += freed.rowcount
        return released

    async def definition(self, offer: str) -> Mapping[str, Any] | None:
        found = await self.conn.scalar(
            select(t.offers.c.definition).where(
                t.offers.c.key == offer, t.offers.c.archived_at.is_(None)
            )
        )
        return None if found is None else dict(found)

    async def free_count(self, offer: str) -> int:
        c = t.offer_codes
        count = await self.conn.scalar(
            select(func.count()).where(c.c.offer == offer, c.c.state == "free")
        )
        return int(count or 0)
