"""The scheduled-sends table: messages waiting for their moment, read by due time.

A row is deleted when its send wakes (the messages table keeps the history), so
every row is pending and ``ix_scheduled_sends_due_at`` is all the due-sends loop
reads: the cost of :meth:`SqlSchedule.due` follows what is due, not what waits.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.adapters.store import schema as t
from shared.adapters.store.dialect import Dialect
from shared.adapters.store.rows import from_row
from shared.domain.decisions import ScheduledSend
from shared.ports.store import ScheduledRecord

__all__ = ["SqlSchedule", "due_query"]

_CHUNK = 1000


def due_query(now: datetime, limit: int) -> Select[Any]:
    """The rows due at ``now``, earliest first, skipping rows another replica holds."""
    return (
        select(t.scheduled_sends)
        .where(t.scheduled_sends.c.due_at <= now)
        .order_by(t.scheduled_sends.c.due_at, t.scheduled_sends.c.key)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


class SqlSchedule:
    """A :class:`~shared.ports.store.Schedule` in one transaction."""

    def __init__(self, conn: AsyncConnection, dialect: Dialect) -> None:
        self.conn = conn
        self.dialect = dialect

    async def add(self, records: Sequence[ScheduledRecord], at: datetime) -> None:
        latest = {r.send.key: r for r in records}  # one key once per statement
        rows = [_row(r, at) for r in latest.values()]
        if not rows:
            return
        # One statement whatever the rows (an executemany): compiled once, cached after.
        stmt = self.dialect.insert(t.scheduled_sends)
        moved = {
            name: stmt.excluded[name]
            for name in ("channel", "priority", "due_at", "context", "triggered_at")
        }
        upsert = stmt.on_conflict_do_update(index_elements=["key"], set_=moved)
        for start in range(0, len(rows), _CHUNK):
            await self.conn.execute(upsert, rows[start : start + _CHUNK])

    async def due(self, now: datetime, limit: int) -> list[ScheduledRecord]:
        return [_record(row) for row in await self.conn.execute(due_query(now, limit))]

    async def remove(self, keys: Collection[str]) -> None:
        ordered = sorted(keys)
        for start in range(0, len(ordered), _CHUNK):
            await self.conn.execute(
                delete(t.scheduled_sends).where(
                    t.scheduled_sends.c.key.in_(ordered[start : start + _CHUNK])
                )
            )

    async def pending(self, profile_ids: Collection[str]) -> dict[str, list[ScheduledSend]]:
        found: dict[str, list[ScheduledSend]] = {p: [] for p in profile_ids}
        ordered = sorted(profile_ids)
        for start in range(0, len(ordered), _CHUNK):
            rows = await self.conn.execute(
                select(t.scheduled_sends)
                .where(t.scheduled_sends.c.profile_id.in_(ordered[start : start + _CHUNK]))
                .order_by(t.scheduled_sends.c.due_at, t.scheduled_sends.c.key)
            )
            for row in rows:
                found[row.profile_id].append(_send(row))
        return found

    async def count_pending(self, due_by: datetime | None = None) -> int:
        stmt = select(func.count()).select_from(t.scheduled_sends)
        if due_by is not None:
            stmt = stmt.where(t.scheduled_sends.c.due_at <= due_by)
        return int(await self.conn.scalar(stmt) or 0)


def _row(record: ScheduledRecord, at: datetime) -> dict[str, Any]:
    send = record.send
    return {
        "key": send.key,
        "campaign": send.campaign,
        "profile_id": send.profile_id,
        "occurrence_id": send.occurrence_id,
        "channel": send.channel,
        "priority": send.priority,
        "triggered_at": send.triggered_at,
        "due_at": send.due_at,
        "created_at": at,
        "context": dict(record.context),
    }


def _send(row: Any) -> ScheduledSend:
    return from_row(ScheduledSend, row)


def _record(row: Any) -> ScheduledRecord:
    return ScheduledRecord(_send(row), dict(row.context))
