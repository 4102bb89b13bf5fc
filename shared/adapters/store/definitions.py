"""Definitions (segments, templates, campaigns, programmes) on SQLAlchemy Core, PostgreSQL
and SQLite alike.

A change is one conditional statement: an ``UPDATE … WHERE key = :key AND version =
:expected`` (or an insert that does nothing when the key exists), so two writers
racing on one version cannot both win, whatever the dialect; the loser reads the
current version for its :class:`~shared.ports.definitions.StaleVersion`.

Beside the definitions, a few read-only queries of the base for the console and the
segmenter (segment sizes, the buyers page by page: :attr:`SqlDefinitions.buyers`) and
the ``segment_recomputes``
rows that say how far the base was evaluated against each segment's rule. A programme's
every version is kept in ``programme_versions``, written in the change's transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.adapters.clock import SystemClock
from shared.adapters.store import schema as t
from shared.adapters.store.buyers import SqlBuyerPages, current_profile, live_count
from shared.adapters.store.dialect import dialect_of
from shared.adapters.store.engine import create_engine
from shared.adapters.store.errors import database_errors
from shared.adapters.store.rows import from_row
from shared.domain.profile import Profile
from shared.ports.clock import Clock
from shared.ports.definitions import (
    CHANNELS,
    CampaignDefinition,
    Channel,
    ProgrammeDefinition,
    Recompute,
    SegmentDefinition,
    StaleVersion,
    Stamps,
    TemplateDefinition,
)

__all__ = ["SqlDefinitions", "open_definitions"]

_MAX_KEY = 100
_MAX_NAME = 200
_MAX_STATUS = 20

D = TypeVar("D")


def _checked_key(key: str) -> str:
    if not key or len(key) > _MAX_KEY or key != key.strip():
        raise ValueError(f"a key is 1 to {_MAX_KEY} characters, with no surrounding spaces")
    return key


class _Shelf(Generic[D]):
    """One table of versioned definitions: reads, the conditional write, the archive."""

    def __init__(self, owner: SqlDefinitions, table: Table, read: Callable[[Any], D]) -> None:
        self._owner = owner
        self._table = table
        self._read = read

    async def _written(self, conn: AsyncConnection, row: Any) -> None:
        """Called with each row written, in its transaction, before the commit."""

    async def get(self, key: str) -> D | None:
        async with self._owner.connection() as conn:
            row = (await conn.execute(select(self._table).where(self._table.c.key == key))).first()
        return None if row is None else self._read(row)

    async def list(self, *, archived: bool = False) -> Sequence[D]:
        stmt = select(self._table).order_by(self._table.c.key)
        if not archived:
            stmt = stmt.where(self._table.c.archived_at.is_(None))
        async with self._owner.connection() as conn:
            return [self._read(row) for row in await conn.execute(stmt)]

    async def archive(self, key: str, expected_version: int) -> D:
        return await self._write(key, expected_version, {"archived_at": self._owner.now()})

    async def stamp(self) -> int:
        async with self._owner.connection() as conn:
            total = await conn.scalar(select(func.coalesce(func.sum(self._table.c.version), 0)))
        return int(total or 0)

    async def _put(self, key: str, expected_version: int | None, values: dict[str, Any]) -> D:
        """Create the row (``expected_version`` ``None``) or change it, bringing it back
        from the archive."""
        key = _checked_key(key)
        if expected_version is not None:
            return await self._write(key, expected_version, {**values, "archived_at": None})
        now = self._owner.now()
        row = {**values, "key": key, "version": 1, "created_at": now, "updated_at": now}
        insert = self._owner.insert(self._table).values(row)
        async with self._owner.connection() as conn:
            created = (
                await conn.execute(
                    insert.on_conflict_do_nothing(index_elements=["key"]).returning(*self._table.c)
                )
            ).first()
            if created is None:
                current = await conn.scalar(
                    select(self._table.c.version).where(self._table.c.key == key)
                )
                raise StaleVersion(key, None, current)
            await self._written(conn, created)
            await conn.commit()
        return self._read(created)

    async def _write(self, key: str, expected_version: int, values: dict[str, Any]) -> D:
        table = self._table
        async with self._owner.connection() as conn:
            result = await conn.execute(
                update(table)
                .where(table.c.key == key, table.c.version == expected_version)
                .values(**values, version=table.c.version + 1, updated_at=self._owner.now())
                .returning(*table.c)
            )
            row = result.first()
            if row is None:
                current = await conn.scalar(select(table.c.version).where(table.c.key == key))
                raise StaleVersion(key, expected_version, current)
            await self._written(conn, row)
            await conn.commit()
        return self._read(row)


def _segment(row: Any) -> SegmentDefinition:
    return from_row(SegmentDefinition, row)


def _template(row: Any) -> TemplateDefinition:
    return from_row(TemplateDefinition, row)


def _campaign(row: Any) -> CampaignDefinition:
    return from_row(CampaignDefinition, row)


class SqlSegmentDefinitions(_Shelf[SegmentDefinition]):
    async def put(
        self,
        key: str,
        *,
        name: str,
        description: str,
        rule: Mapping[str, Any],
        expected_version: int | None,
    ) -> SegmentDefinition:
        name = name.strip()
        if not name or len(name) > _MAX_NAME:
            raise ValueError(f"a segment's name is 1 to {_MAX_NAME} characters")
        values = {"name": name, "description": description, "rule": dict(rule)}
        return await self._put(key, expected_version, values)


class SqlTemplateDefinitions(_Shelf[TemplateDefinition]):
    async def put(
        self,
        key: str,
        *,
        channel: Channel,
        content: Mapping[str, str],
        expected_version: int | None,
    ) -> TemplateDefinition:
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}; one of {', '.join(CHANNELS)}")
        values = {"channel": channel, "content": dict(content)}
        return await self._put(key, expected_version, values)


class SqlCampaignDefinitions(_Shelf[CampaignDefinition]):
    def __init__(
        self,
        owner: SqlDefinitions,
        validate: Callable[[str, Mapping[str, Any]], object] | None,
    ) -> None:
        super().__init__(owner, t.campaign_definitions, _campaign)
        self._validate = validate

    async def put(
        self,
        key: str,
        *,
        definition: Mapping[str, Any],
        status: str,
        expected_version: int | None,
    ) -> CampaignDefinition:
        if not status or len(status) > _MAX_STATUS:
            raise ValueError(f"a campaign's status is 1 to {_MAX_STATUS} characters")
        if self._validate is not None:
            self._validate(key, definition)
        values = {"definition": dict(definition), "status": status}
        return await self._put(key, expected_version, values)


def _programme(row: Any) -> ProgrammeDefinition:
    return from_row(ProgrammeDefinition, row)


class SqlProgrammeDefinitions(_Shelf[ProgrammeDefinition]):
    """Programmes, each version also kept in ``programme_versions`` in the same
    transaction as the change."""

    def __init__(
        self,
        owner: SqlDefinitions,
        validate: Callable[[str, Mapping[str, Any]], object] | None,
    ) -> None:
        super().__init__(owner, t.programme_definitions, _programme)
        self._validate = validate

    async def put(
        self,
        key: str,
        *,
        definition: Mapping[str, Any],
        status: str,
        expected_version: int | None,
    ) -> ProgrammeDefinition:
        if not status or len(status) > _MAX_STATUS:
            raise ValueError(f"a programme's status is 1 to {_MAX_STATUS} characters")
        if self._validate is not None:
            self._validate(key, definition)
        values = {"definition": dict(definition), "status": status}
        return await self._put(key, expected_version, values)

    async def version(self, key: str, version: int) -> ProgrammeDefinition | None:
        v, current = t.programme_versions, t.programme_definitions
        stmt = (
            select(
                v.c.key,
                v.c.definition,
                v.c.status,
                v.c.version,
                current.c.created_at,
                v.c.saved_at.label("updated_at"),
                v.c.archived_at,
            )
            .join(current, current.c.key == v.c.key)
            .where(v.c.key == key, v.c.version == version)
        )
        async with self._owner.connection() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else _programme(row)

    async def _written(self, conn: AsyncConnection, row: Any) -> None:
        await conn.execute(
            self._owner.insert(t.programme_versions).values(
                key=row.key,
                version=row.version,
                definition=row.definition,
                status=row.status,
                saved_at=row.updated_at,
                archived_at=row.archived_at,
            )
        )


class SqlDefinitions:
    """A :class:`~shared.ports.definitions.Definitions` over an async SQLAlchemy engine.

    ``validate_campaign(key, definition)`` checks a campaign before it is stored (the
    campaign model's own parser, e.g. ``parse_campaign(definition, key=key)``; raise
    :class:`ValueError` to refuse it).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock | None = None,
        validate_campaign: Callable[[str, Mapping[str, Any]], object] | None = None,
        validate_programme: Callable[[str, Mapping[str, Any]], object] | None = None,
    ) -> None:
        self.engine = engine
        self.dialect = dialect_of(engine)
        self._clock = clock or SystemClock()
        self.segments = SqlSegmentDefinitions(self, t.segment_definitions, _segment)
        self.templates = SqlTemplateDefinitions(self, t.template_definitions, _template)
        self.campaigns = SqlCampaignDefinitions(self, validate_campaign)
        self.programmes = SqlProgrammeDefinitions(self, validate_programme)
        self.buyers = SqlBuyerPages(engine)

    def now(self) -> datetime:
        return self._clock.now()

    def insert(self, table: Table) -> Any:
        return self.dialect.insert(table)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        with database_errors():
            async with self.engine.connect() as conn:
                yield conn

    async def stamps(self) -> Stamps:
        def total(table: Table) -> Any:
            return select(func.coalesce(func.sum(table.c.version), 0)).scalar_subquery()

        tables = (
            t.segment_definitions,
            t.template_definitions,
            t.campaign_definitions,
            t.programme_definitions,
        )
        async with self.connection() as conn:
            row = (await conn.execute(select(*(total(table) for table in tables)))).one()
        return Stamps(*(int(n or 0) for n in row))

    # --- reads of the base ------------------------------------------------------------

    async def segment_sizes(self) -> dict[str, int]:
        m = t.memberships
        async with self.connection() as conn:
            rows = await conn.execute(select(m.c.segment, func.count()).group_by(m.c.segment))
            return {segment: int(count) for segment, count in rows}

    async def count_profiles(self) -> int:
        async with self.connection() as conn:
            return await live_count(conn)

    async def find_profile(self, profile_id: str) -> Profile | None:
        async with self.connection() as conn:
            return await current_profile(conn, profile_id)

    # --- recomputes -------------------------------------------------------------------

    async def recomputes(self) -> dict[str, Recompute]:
        async with self.connection() as conn:
            rows = await conn.execute(select(t.segment_recomputes))
            return {row.segment: _recompute(row) for row in rows}

    async def start_recompute(self, segment: str, fingerprint: str, at: datetime) -> Recompute:
        values = {
            "fingerprint": fingerprint,
            "cursor": None,
            "evaluated": 0,
            "started_at": at,
            "finished_at": None,
        }
        stmt = (
            self.insert(t.segment_recomputes)
            .values(segment=segment, **values)
            .on_conflict_do_update(index_elements=["segment"], set_=values)
        )
        async with self.connection() as conn:
            await conn.execute(stmt)
            await conn.commit()
        return Recompute(segment, fingerprint, None, 0, at)

    async def advance_recompute(
        self,
        segment: str,
        fingerprint: str,
        *,
        cursor: str,
        evaluated: int,
        finished_at: datetime | None,
    ) -> Recompute | None:
        r = t.segment_recomputes
        async with self.connection() as conn:
            row = (
                await conn.execute(
                    update(r)
                    .where(r.c.segment == segment, r.c.fingerprint == fingerprint)
                    .values(cursor=cursor, evaluated=evaluated, finished_at=finished_at)
                    .returning(*r.c)
                )
            ).first()
            await conn.commit()
        return None if row is None else _recompute(row)

    async def close(self) -> None:
        await self.engine.dispose()


def _recompute(row: Any) -> Recompute:
    return from_row(Recompute, row)


def open_definitions(url: str, *, clock: Clock | None = None) -> SqlDefinitions:
    """The definitions in the database at ``url``."""
    return SqlDefinitions(create_engine(url), clock=clock)
