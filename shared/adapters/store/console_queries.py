"""The console's read model on SQLAlchemy Core, over the store's tables (read only), and
the daily snapshots of segment sizes (the one table it writes)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, bindparam, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.adapters.store import schema as t
from shared.adapters.store.buyers import current_profile, live_count, page_query
from shared.adapters.store.engine import create_engine
from shared.adapters.store.errors import connected, database_errors
from shared.adapters.store.rows import from_row
from shared.adapters.store.sql import _from_json
from shared.domain.profile import Profile, Purchases
from shared.ports.console import BuyerMessage, StagedBuyer

__all__ = ["SqlConsoleQueries", "open_console_queries"]


class SqlConsoleQueries:
    """A :class:`~shared.ports.console.ConsoleQueries` and
    :class:`~shared.ports.console.SegmentSizeHistory` over an async SQLAlchemy engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def buyer_count(self) -> int:
        async with connected(self.engine) as conn:
            return await live_count(conn)

    async def segment_sizes(self, segments: Collection[str]) -> Mapping[str, int]:
        sizes = dict.fromkeys(segments, 0)
        if not sizes:
            return sizes
        m = t.memberships
        async with connected(self.engine) as conn:
            rows = await conn.execute(
                select(m.c.segment, func.count())
                .where(m.c.segment.in_(list(sizes)))
                .group_by(m.c.segment)
            )
            for segment, count in rows:
                sizes[segment] = int(count)
        return sizes

    async def scan_buyers(
        self, *, after: str | None, limit: int, stage_segments: Mapping[str, str]
    ) -> Sequence[StagedBuyer]:
        p, m = t.profiles, t.memberships
        stmt = page_query(*(p.c[name] for name in _SCANNED), after=after, limit=limit)
        async with connected(self.engine) as conn:
            profiles = [_scanned_profile(row) for row in await conn.execute(stmt)]
            stages: dict[str, str] = {}
            if profiles and stage_segments:
                rows = await conn.execute(
                    select(m.c.profile_id, m.c.segment).where(
                        m.c.profile_id.in_([profile.id for profile in profiles]),
                        m.c.segment.in_(list(stage_segments)),
                    )
                )
                order = list(stage_segments)
                for profile_id, segment in sorted(rows, key=lambda r: order.index(r.segment)):
                    stages.setdefault(profile_id, stage_segments[segment])
        return [StagedBuyer(profile, stages.get(profile.id)) for profile in profiles]

    async def find_buyer(self, profile_id: str) -> Profile | None:
        async with connected(self.engine) as conn:
            return await current_profile(conn, profile_id)

    async def find_buyer_by(self, kind: str, value: str) -> Profile | None:
        i = t.identifiers
        async with connected(self.engine) as conn:
            owner = await conn.scalar(
                select(i.c.profile_id).where(i.c.kind == kind, i.c.value == value)
            )
        if owner is None and kind == "profile_id":
            owner = value
        return None if owner is None else await self.find_buyer(owner)

    async def buyer_segments(self, profile_id: str) -> Sequence[tuple[str, datetime]]:
        m = t.memberships
        async with connected(self.engine) as conn:
            rows = await conn.execute(
                select(m.c.segment, m.c.entered_at)
                .where(m.c.profile_id == profile_id)
                .order_by(m.c.segment)
            )
            return [(row.segment, row.entered_at) for row in rows]

    async def buyer_messages(self, profile_id: str, *, limit: int) -> Sequence[BuyerMessage]:
        x = t.messages
        async with connected(self.engine) as conn:
            rows = await conn.execute(
                select(x)
                .where(x.c.profile_id == profile_id)
                .order_by(x.c.created_at.desc(), x.c.key)
                .limit(limit)
            )
            return [_message(row) for row in rows]

    async def snapshot_segment_sizes(self, day: date, at: datetime) -> int:
        m, s = t.memberships, t.segment_sizes
        counted = select(
            bindparam("day", day, type_=Date),
            m.c.segment,
            func.count(),
            bindparam("taken_at", at, type_=t.UTCDateTime),
        ).group_by(m.c.segment)
        with database_errors():
            async with self.engine.begin() as conn:
                await conn.execute(delete(s).where(s.c.day == day))
                await conn.execute(
                    insert(s).from_select(["day", "segment", "size", "taken_at"], counted)
                )
                recorded = await conn.scalar(
                    select(func.count()).select_from(s).where(s.c.day == day)
                )
        return int(recorded or 0)

    async def segment_size_history(
        self, segments: Collection[str], *, since: date
    ) -> Mapping[str, Sequence[tuple[date, int]]]:
        s = t.segment_sizes
        wanted = list(dict.fromkeys(segments))
        if not wanted:
            return {}
        async with connected(self.engine) as conn:
            days = list(
                await conn.scalars(
                    select(s.c.day).where(s.c.day >= since).distinct().order_by(s.c.day)
                )
            )
            rows = await conn.execute(
                select(s.c.day, s.c.segment, s.c.size).where(
                    s.c.day >= since, s.c.segment.in_(wanted)
                )
            )
            sizes = {(row.day, row.segment): int(row.size) for row in rows}
        # a day with a snapshot but no row for a segment: it was empty that day
        return {key: [(day, sizes.get((day, key), 0)) for day in days] for key in wanted}

    async def ping(self) -> None:
        async with connected(self.engine) as conn:
            await conn.scalar(select(1))

    async def close(self) -> None:
        await self.engine.dispose()


_SCANNED = (
    "id",
    "orders_count",
    "revenue_total",
    "first_order_at",
    "last_order_at",
    "order_moments",
    "stores",
    "traits",
    "rfm_r",
    "rfm_f",
    "rfm_m",
    "rfm_segment",
    "p_alive",
    "clv",
)
"""What a scan of the base reads of each profile: its order facts, stores, traits and
scores, not its behaviour tallies (a third of the time of a whole row, on SQLite)."""


def _scanned_profile(row: Any) -> Profile:
    facts = {name: getattr(row, name) for name in _SCANNED if name not in _DECODED}
    return Profile(
        **facts,
        order_moments=[datetime.fromisoformat(m) for m in row.order_moments],
        stores={k: _from_json(Purchases, v) for k, v in row.stores.items()},
        traits=dict(row.traits),
    )


_DECODED = frozenset({"order_moments", "stores", "traits"})


def _message(row: Any) -> BuyerMessage:
    decision = row.decision if isinstance(row.decision, list) else []
    return from_row(
        BuyerMessage,
        row,
        holdout=bool(row.holdout),
        decision=[step for step in decision if isinstance(step, dict)],
    )


def open_console_queries(url: str) -> SqlConsoleQueries:
    """The console's read model on the database at ``url``."""
    return SqlConsoleQueries(create_engine(url))
