"""Offers and their promo codes on SQLAlchemy Core, PostgreSQL and SQLite alike.

:class:`SqlOffers` keeps the offers (versioned, as the other definitions: one
conditional statement per change) and takes a pool's uploads whole: the codes already
there are looked for first and the upload refused if there are any, then every row is
inserted in the same transaction (a code uploaded meanwhile by another request makes the
insert fail on the primary key, and the whole upload is rolled back).

The codes a unit of work takes for its messages are
:class:`~shared.adapters.store.offer_codes.SqlOfferCodes`'s.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.adapters.store import schema as t
from shared.adapters.store.definitions import SqlDefinitions, _Shelf
from shared.adapters.store.errors import database_errors
from shared.adapters.store.rows import from_row
from shared.adapters.store.writer import writer_lock
from shared.domain.offers import Issued, Redemption
from shared.ports.clock import Clock
from shared.ports.offers import (
    CodesTaken,
    ListedCode,
    OfferDefinition,
    OfferResults,
    PoolCounts,
)

__all__ = ["SqlOffers"]

_CHUNK = 1000
_SHOWN = 10
"""Codes named in a refusal of an upload: enough to find them, not the whole file."""


def _offer(row: Any) -> OfferDefinition:
    return from_row(OfferDefinition, row)


class _OfferShelf(_Shelf[OfferDefinition]):
    def __init__(
        self, owner: SqlDefinitions, validate: Callable[[str, Mapping[str, Any]], object] | None
    ) -> None:
        super().__init__(owner, t.offers, _offer)
        self.validate = validate

    async def put_offer(
        self, key: str, definition: Mapping[str, Any], expected_version: int | None
    ) -> OfferDefinition:
        if self.validate is not None:
            self.validate(key, definition)
        return await self._put(key, expected_version, {"definition": dict(definition)})


class SqlOffers:
    """A :class:`~shared.ports.offers.Offers` over an async SQLAlchemy engine;
    ``validate(key, definition)`` checks an offer before it is stored (``parse_offer``)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock | None = None,
        validate: Callable[[str, Mapping[str, Any]], object] | None = None,
    ) -> None:
        self.engine = engine
        self._owner = SqlDefinitions(engine, clock=clock)
        self._shelf = _OfferShelf(self._owner, validate)
        self._writer = writer_lock(engine)

    async def get(self, key: str) -> OfferDefinition | None:
        return await self._shelf.get(key)

    async def list(self) -> Sequence[OfferDefinition]:
        return await self._shelf.list()

    async def put(
        self, key: str, *, definition: Mapping[str, Any], expected_version: int | None
    ) -> OfferDefinition:
        return await self._shelf.put_offer(key, definition, expected_version)

    async def stamp(self) -> int:
        return await self._shelf.stamp()

    async def add_codes(self, key: str, codes: Sequence[str], at: datetime) -> PoolCounts:
        rows = [
            {"offer": key, "code": code, "source": "pool", "state": "free", "added_at": at}
            for code in codes
        ]
        if self._writer is not None:
            async with self._writer:
                await self._add(key, codes, rows)
        else:
            await self._add(key, codes, rows)
        return await self.pool(key)

    async def _add(self, key: str, codes: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
        c = t.offer_codes
        with database_errors():
            async with self.engine.connect() as conn:
                taken: list[str] = []
                for start in range(0, len(codes), _CHUNK):
                    chunk = codes[start : start + _CHUNK]
                    found = await conn.execute(
                        select(c.c.code).where(c.c.offer == key, c.c.code.in_(chunk))
                    )
                    taken.extend(row.code for row in found)
                if taken:
                    raise CodesTaken(key, sorted(taken)[:_SHOWN], len(taken))
                try:
                    for start in range(0, len(rows), _CHUNK):
                        await conn.execute(c.insert(), rows[start : start + _CHUNK])
                except IntegrityError:  # uploaded meanwhile by another request
                    await conn.rollback()
                    raise CodesTaken(key, (), 0) from None
                await conn.commit()

    async def pool(self, key: str) -> PoolCounts:
        c = t.offer_codes
        stmt = select(c.c.state, func.count()).where(c.c.offer == key).group_by(c.c.state)
        with database_errors():
            async with self.engine.connect() as conn:
                counts = {state: int(n) for state, n in await conn.execute(stmt)}
        return PoolCounts(free=counts.get("free", 0), issued=counts.get("issued", 0))

    async def codes(self, key: str) -> builtins.list[ListedCode]:
        c, r = t.offer_codes, t.offer_redemptions
        stmt = (
            select(c.c.code, c.c.state, c.c.issued_at, c.c.expires_at, r.c.redeemed_at)
            .outerjoin(r, (r.c.offer == c.c.offer) & (r.c.code == c.c.code))
            .where(c.c.offer == key)
            .order_by(c.c.code)
        )
        with database_errors():
            async with self.engine.connect() as conn:
                rows = await conn.execute(stmt)
                return [
                    ListedCode(row.code, row.state, row.issued_at, row.expires_at, row.redeemed_at)
                    for row in rows
                ]

    async def issued(self, codes: Collection[str]) -> builtins.list[Issued]:
        c = t.offer_codes
        wanted = sorted(set(codes))
        found: builtins.list[Issued] = []
        with database_errors():
            async with self.engine.connect() as conn:
                for start in range(0, len(wanted), _CHUNK):
                    rows = await conn.execute(
                        select(c.c.offer, c.c.code, c.c.message_key).where(
                            c.c.code.in_(wanted[start : start + _CHUNK]),
                            c.c.state == "issued",
                            c.c.message_key.is_not(None),
                        )
                    )
                    found.extend(Issued(r.offer, r.code, r.message_key) for r in rows)
        return found

    async def redeem(self, redemptions: Sequence[Redemption]) -> int:
        if not redemptions:
            return 0
        rows = [
            {
                "offer": r.offer,
                "code": r.code,
                "message_key": r.message_key,
                "order_id": r.order_id,
                "order_total": r.order_total,
                "discount": r.discount,
                "redeemed_at": r.redeemed_at,
            }
            for r in redemptions
        ]
        stmt = (
            self._owner.insert(t.offer_redemptions)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["offer", "code"])
        )
        with database_errors():
            async with self.engine.connect() as conn:
                result = await conn.execute(stmt)
                await conn.commit()
        return max(int(result.rowcount or 0), 0)

    async def campaign_results(self, campaign: str) -> OfferResults:
        c, r, m = t.offer_codes, t.offer_redemptions, t.messages
        with database_errors():
            async with self.engine.connect() as conn:
                issued = (
                    await conn.execute(
                        select(c.c.offer, func.count())
                        .join(m, m.c.key == c.c.message_key)
                        .where(m.c.campaign == campaign, c.c.state == "issued")
                        .group_by(c.c.offer)
                    )
                ).all()
                redeemed = (
                    await conn.execute(
                        select(func.count(), func.coalesce(func.sum(r.c.discount), 0))
                        .select_from(r)
                        .join(m, m.c.key == r.c.message_key)
                        .where(m.c.campaign == campaign)
                    )
                ).one()
        count, discount = redeemed
        return OfferResults(
            issued=sum(int(n) for _, n in issued),
            redeemed=int(count),
            discount=Decimal(discount).quantize(Decimal("0.01")),  # Money: in units already
            offers=tuple(sorted(offer for offer, _ in issued)),
        )

    async def close(self) -> None:
        await self.engine.dispose()
