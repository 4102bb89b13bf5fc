"""The store on SQLAlchemy Core: one implementation, two dialects (PostgreSQL, SQLite).

The dialects differ in three places only, kept in :class:`Dialect` subclasses:
the ``INSERT … ON CONFLICT`` construct, row locks (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL; SQLite has one writer at a time anyway) and the single outbox relay
(a transaction-level advisory lock on PostgreSQL).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.adapters.store import schema as t
from shared.domain.profile import Profile
from shared.domain.segments import MembershipChange
from shared.errors import StoreUnavailable
from shared.ports.store import MessageRecord, OutboxRecord

__all__ = ["SqlStore", "SqlUnitOfWork"]

_OUTBOX_RELAY_LOCK = 0x6E75646765  # "nudge"


class SqlStore:
    """A :class:`~shared.ports.store.Store` over an async SQLAlchemy engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # SQLite allows one writer: serialise units of work in this process rather than
        # meet "database is locked" half-way through one.
        self._writer = asyncio.Lock() if self.dialect == "sqlite" else None

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[SqlUnitOfWork]:
        if self._writer is not None:
            async with self._writer, self._transaction() as uow:
                yield uow
        else:
            async with self._transaction() as uow:
                yield uow

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[SqlUnitOfWork]:
        try:
            async with self.engine.connect() as conn:
                tx = await conn.begin()
                uow = SqlUnitOfWork(conn, self.dialect)
                try:
                    yield uow
                finally:
                    if tx.is_active:
                        await tx.rollback()
        except (OperationalError, InterfaceError, OSError) as exc:
            raise StoreUnavailable(f"database unavailable: {type(exc).__name__}") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise StoreUnavailable("database connection lost") from exc
            raise

    async def close(self) -> None:
        await self.engine.dispose()


class _Repository:
    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect

    def insert(self, table: Any) -> Any:
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)


class SqlInbox(_Repository):
    async def claim(self, event_id: str, at: datetime) -> bool:
        stmt = (
            self.insert(t.processed_events)
            .values(event_id=event_id, processed_at=at)
            .on_conflict_do_nothing(index_elements=["event_id"])
        )
        result = await self.conn.execute(stmt)
        return bool(result.rowcount)


def _profile(row: Any) -> Profile:
    return Profile(
        id=row.id,
        email=row.email,
        phone=row.phone,
        orders_count=row.orders_count,
        revenue_total=row.revenue_total,
        first_order_at=row.first_order_at,
        last_order_at=row.last_order_at,
        next_timer_at=row.next_timer_at,
        evaluated_at=row.evaluated_at,
    )


class SqlProfiles(_Repository):
    async def resolve(self, identifiers: Mapping[str, str], at: datetime) -> Profile:
        pairs = list(identifiers.items())
        known = await self._lookup(pairs)
        profile_id = known or str(uuid.uuid4())
        if known is None:
            await self.conn.execute(
                self.insert(t.profiles).values(id=profile_id, created_at=at, updated_at=at)
            )
        await self.conn.execute(
            self.insert(t.identifiers)
            .values([{"kind": k, "value": v, "profile_id": profile_id} for k, v in pairs])
            .on_conflict_do_nothing(index_elements=["kind", "value"])
        )
        if known is None:
            # A concurrent writer may have claimed one of the identifiers first: follow it.
            winner = await self._lookup(pairs)
            if winner is not None and winner != profile_id:
                await self.conn.execute(delete(t.profiles).where(t.profiles.c.id == profile_id))
                profile_id = winner
        profile = await self.get(profile_id, lock=True)
        assert profile is not None
        return profile

    async def _lookup(self, pairs: Sequence[tuple[str, str]]) -> str | None:
        for kind, value in pairs:  # strongest first
            found = await self.conn.scalar(
                select(t.identifiers.c.profile_id).where(
                    t.identifiers.c.kind == kind, t.identifiers.c.value == value
                )
            )
            if found is not None:
                return str(found)
        return None

    async def get(self, profile_id: str, *, lock: bool = False) -> Profile | None:
        stmt = select(t.profiles).where(t.profiles.c.id == profile_id)
        if lock:
            stmt = stmt.with_for_update()
        row = (await self.conn.execute(stmt)).first()
        return _profile(row) if row is not None else None

    async def find(self, kind: str, value: str) -> Profile | None:
        found = await self._lookup([(kind, value)])
        return None if found is None else await self.get(found)

    async def save(self, profile: Profile, at: datetime) -> None:
        await self.conn.execute(
            update(t.profiles)
            .where(t.profiles.c.id == profile.id)
            .values(
                email=profile.email,
                phone=profile.phone,
                orders_count=profile.orders_count,
                revenue_total=profile.revenue_total,
                first_order_at=profile.first_order_at,
                last_order_at=profile.last_order_at,
                next_timer_at=profile.next_timer_at,
                evaluated_at=profile.evaluated_at,
                updated_at=at,
            )
        )


class SqlMemberships(_Repository):
    async def of(self, profile_id: str) -> dict[str, datetime]:
        rows = await self.conn.execute(
            select(t.memberships.c.segment, t.memberships.c.entered_at).where(
                t.memberships.c.profile_id == profile_id
            )
        )
        return {row.segment: row.entered_at for row in rows}

    async def apply(self, changes: Sequence[MembershipChange]) -> None:
        for change in changes:
            if change.kind == "entered":
                await self.conn.execute(
                    self.insert(t.memberships).values(
                        profile_id=change.profile_id, segment=change.segment, entered_at=change.at
                    )
                )
            else:
                await self.conn.execute(
                    delete(t.memberships).where(
                        t.memberships.c.profile_id == change.profile_id,
                        t.memberships.c.segment == change.segment,
                    )
                )


class SqlTimers(_Repository):
    async def due(self, now: datetime, limit: int) -> list[str]:
        stmt = (
            select(t.profiles.c.id)
            .where(t.profiles.c.next_timer_at <= now)
            .order_by(t.profiles.c.next_timer_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.conn.scalars(stmt)).all())


class SqlOutbox(_Repository):
    async def add(self, topic: str, key: bytes | None, value: bytes, at: datetime) -> None:
        await self.conn.execute(
            t.outbox.insert().values(topic=topic, key=key, value=value, created_at=at)
        )

    async def claim(self, limit: int) -> list[OutboxRecord]:
        if self.dialect == "postgresql":
            # One relay at a time keeps each buyer's changes in order across replicas.
            got = await self.conn.scalar(select(func.pg_try_advisory_xact_lock(_OUTBOX_RELAY_LOCK)))
            if not got:
                return []
        rows = await self.conn.execute(
            select(t.outbox.c.id, t.outbox.c.topic, t.outbox.c.key, t.outbox.c.value)
            .where(t.outbox.c.published_at.is_(None))
            .order_by(t.outbox.c.id)
            .limit(limit)
        )
        return [OutboxRecord(r.id, r.topic, r.key, r.value) for r in rows]

    async def mark_published(self, ids: Sequence[int], at: datetime) -> None:
        if ids:
            await self.conn.execute(
                update(t.outbox).where(t.outbox.c.id.in_(ids)).values(published_at=at)
            )


class SqlMessages(_Repository):
    async def begin(self, record: MessageRecord) -> bool:
        stmt = (
            self.insert(t.messages)
            .values(
                key=record.key,
                campaign=record.campaign,
                profile_id=record.profile_id,
                channel=record.channel,
                occurrence_id=record.occurrence_id,
                status=record.status,
                created_at=record.created_at,
            )
            .on_conflict_do_nothing(index_elements=["key"])
        )
        return bool((await self.conn.execute(stmt)).rowcount)

    async def finish(
        self,
        key: str,
        status: str,
        at: datetime,
        provider_message_id: str | None = None,
        error: str | None = None,
    ) -> None:
        await self.conn.execute(
            update(t.messages)
            .where(t.messages.c.key == key)
            .values(
                status=status,
                finished_at=at,
                provider_message_id=provider_message_id,
                error=error,
            )
        )

    async def get(self, key: str) -> MessageRecord | None:
        row = (await self.conn.execute(select(t.messages).where(t.messages.c.key == key))).first()
        return _message(row) if row is not None else None

    async def all(self) -> list[MessageRecord]:
        rows = await self.conn.execute(select(t.messages).order_by(t.messages.c.created_at))
        return [_message(r) for r in rows]


def _message(row: Any) -> MessageRecord:
    return MessageRecord(
        key=row.key,
        campaign=row.campaign,
        profile_id=row.profile_id,
        channel=row.channel,
        occurrence_id=row.occurrence_id,
        status=row.status,
        created_at=row.created_at,
        provider_message_id=row.provider_message_id,
        error=row.error,
    )


class SqlUnitOfWork:
    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn = conn
        self.inbox = SqlInbox(conn, dialect)
        self.profiles = SqlProfiles(conn, dialect)
        self.memberships = SqlMemberships(conn, dialect)
        self.timers = SqlTimers(conn, dialect)
        self.outbox = SqlOutbox(conn, dialect)
        self.messages = SqlMessages(conn, dialect)

    async def commit(self) -> None:
        await self.conn.commit()
