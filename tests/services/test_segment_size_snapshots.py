"""Segment sizes are recorded once a day, so the console can draw them over time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert

from services.segmenter.snapshots import seconds_to_next_snapshot, snapshot_daily
from shared.adapters.clock import SimulatedClock
from shared.adapters.store import schema
from shared.adapters.store.console_queries import SqlConsoleQueries, open_console_queries
from tests.support.waiting import eventually

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def queries(sqlite_url: str) -> AsyncIterator[SqlConsoleQueries]:
    queries = open_console_queries(sqlite_url)
    async with queries.engine.begin() as conn:
        await conn.execute(
            insert(schema.profiles), [{"id": "a", "created_at": START, "updated_at": START}]
        )
        await conn.execute(
            insert(schema.memberships),
            [{"profile_id": "a", "segment": "lifecycle-new", "entered_at": START}],
        )
    yield queries
    await queries.close()


def test_the_next_snapshot_is_just_after_midnight_utc() -> None:
    assert seconds_to_next_snapshot(START) == (15 * 60 + 5) * 60
    assert seconds_to_next_snapshot(datetime(2026, 3, 2, 0, 5, tzinfo=UTC)) == 24 * 3600


async def test_sizes_are_recorded_at_start_and_after_each_midnight(
    queries: SqlConsoleQueries,
) -> None:
    clock = SimulatedClock(START)
    stopping = asyncio.Event()
    loop = asyncio.create_task(snapshot_daily(queries, clock, stopping))

    async def days() -> list[date]:
        history = await queries.segment_size_history(["lifecycle-new"], since=START.date())
        return [day for day, _size in history["lifecycle-new"]]

    async def recorded(*expected: date) -> bool:
        return await days() == list(expected)

    await eventually(lambda: recorded(date(2026, 3, 2)), what="the first snapshot")
    clock.advance(timedelta(hours=16))
    await eventually(
        lambda: recorded(date(2026, 3, 2), date(2026, 3, 3)), what="the next day's snapshot"
    )
    stopping.set()
    await asyncio.wait_for(loop, timeout=5)
