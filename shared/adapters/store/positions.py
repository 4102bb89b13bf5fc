"""The programme positions table: where each buyer is in each programme.

One row per programme, buyer and entry; an entry is inserted once (a trigger delivered
again writes nothing; on PostgreSQL a batch of entries is one statement of arrays) and
changed in place as the buyer walks. Only a waiting row has ``due_at``, and
``ix_programme_positions_due_at`` holds only those, so :meth:`SqlPositions.due` reads
what is due, not everyone inside a programme.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Integer, String, and_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.adapters.store import schema as t
from shared.adapters.store.dialect import Dialect
from shared.domain.programmes import Position
from shared.ports.store import Activation, PositionRecord

__all__ = ["SqlPositions"]

_CHUNK = 1000
_P = t.programme_positions
_A = t.programme_activations


_COLUMNS: dict[str, Any] = {
    "programme": String,
    "profile_id": String,
    "entry": String,
    "version": Integer,
    "step": String,
    "entered_at": DateTime(timezone=True),
    "arrived_at": DateTime(timezone=True),
    "due_at": DateTime(timezone=True),
    "holdout": Boolean,
    "exited_at": DateTime(timezone=True),
    "exit_reason": String,
    "updated_at": DateTime(timezone=True),
}


def _pg_enter() -> Any:
    """New entries on PostgreSQL: the batch as one array per column (``unnest``), an entry
    that exists skipped, the ones written returned."""
    arrays: list[Any] = [
        bindparam(f"{c}s", type_=postgresql.ARRAY(kind)) for c, kind in _COLUMNS.items()
    ]
    batch = func.unnest(*arrays).table_valued(*_COLUMNS).render_derived(name="batch")
    return (
        postgresql.insert(_P)
        .from_select(list(_COLUMNS), select(*(batch.c[c] for c in _COLUMNS)))
        .on_conflict_do_nothing(index_elements=["programme", "profile_id", "entry"])
        .returning(_P.c.programme, _P.c.profile_id, _P.c.entry)
    )


_PG_ENTER = _pg_enter()


class SqlPositions:
    """A :class:`~shared.ports.store.Positions` in one transaction."""

    def __init__(self, conn: AsyncConnection, dialect: Dialect) -> None:
        self.conn = conn
        self.dialect = dialect

    async def enter(self, records: Sequence[PositionRecord], at: datetime) -> set[Position]:
        written: set[Position] = set()
        rows = [_row(r, at) for r in records]
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            if self.dialect.arrays:  # one statement of arrays, compiled once
                params = {f"{c}s": [r[c] for r in chunk] for c in _COLUMNS}
                found = await self.conn.execute(_PG_ENTER, params)
            else:
                stmt = (
                    self.dialect.insert(_P)
                    .values(chunk)
                    .on_conflict_do_nothing(index_elements=["programme", "profile_id", "entry"])
                    .returning(_P.c.programme, _P.c.profile_id, _P.c.entry)
                )
                found = await self.conn.execute(stmt)
            keys = {(r.programme, r.profile_id, r.entry) for r in found}
            written |= {
                r.position
                for r in records[start : start + _CHUNK]
                if (r.position.programme, r.position.profile_id, r.position.entry) in keys
            }
        return written

    async def save(self, records: Sequence[PositionRecord], at: datetime) -> None:
        if not records:
            return
        stmt = (
            update(_P)
            .where(
                and_(
                    _P.c.programme == bindparam("k_programme"),
                    _P.c.profile_id == bindparam("k_profile_id"),
                    _P.c.entry == bindparam("k_entry"),
                )
            )
            .values(
                version=bindparam("version"),
                step=bindparam("step"),
                arrived_at=bindparam("arrived_at"),
                due_at=bindparam("due_at"),
                exited_at=bindparam("exited_at"),
                exit_reason=bindparam("exit_reason"),
                updated_at=bindparam("updated_at"),
            )
        )
        rows = []
        for r in records:
            p = r.position
            rows.append(
                {
                    "k_programme": p.programme,
                    "k_profile_id": p.profile_id,
                    "k_entry": p.entry,
                    "version": p.version,
                    "step": p.step,
                    "arrived_at": p.arrived_at,
                    "due_at": None if r.exited_at is not None else p.due_at,
                    "exited_at": r.exited_at,
                    "exit_reason": r.exit_reason,
                    "updated_at": at,
                }
            )
        for start in range(0, len(rows), _CHUNK):
            await self.conn.execute(stmt, rows[start : start + _CHUNK])

    async def due(self, now: datetime, limit: int) -> list[PositionRecord]:
        stmt = (
            select(_P)
            .where(_P.c.due_at.is_not(None), _P.c.due_at <= now)
            .order_by(_P.c.due_at, _P.c.programme, _P.c.profile_id, _P.c.entry)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_record(row) for row in await self.conn.execute(stmt)]

    async def waiting(self, profile_ids: Collection[str]) -> list[PositionRecord]:
        found: list[PositionRecord] = []
        ordered = sorted(profile_ids)
        for start in range(0, len(ordered), _CHUNK):
            stmt = (
                select(_P)
                .where(
                    _P.c.profile_id.in_(ordered[start : start + _CHUNK]),
                    _P.c.exited_at.is_(None),
                )
                .order_by(_P.c.profile_id, _P.c.programme, _P.c.entry)
                .with_for_update()
            )
            found += [_record(row) for row in await self.conn.execute(stmt)]
        return found

    async def activation(self, programme: str, at: datetime) -> Activation | None:
        await self.conn.execute(
            self.dialect.insert(_A)
            .values(programme=programme, activated_at=at, entered=0)
            .on_conflict_do_nothing(index_elements=["programme"])
        )
        row = (
            await self.conn.execute(
                select(_A).where(_A.c.programme == programme).with_for_update(skip_locked=True)
            )
        ).first()
        if row is None:
            return None
        return Activation(
            row.programme, row.activated_at, row.after, int(row.entered), row.finished_at
        )

    async def advance(self, activation: Activation) -> None:
        await self.conn.execute(
            update(_A)
            .where(_A.c.programme == activation.programme)
            .values(
                after=activation.after,
                entered=activation.entered,
                finished_at=activation.finished_at,
            )
        )

    async def count(self, programme: str) -> dict[str, int]:
        inside = await self.conn.execute(
            select(_P.c.step, func.count())
            .where(_P.c.programme == programme, _P.c.exited_at.is_(None), ~_P.c.holdout)
            .group_by(_P.c.step)
        )
        counts = {str(step): int(n) for step, n in inside}
        ended = await self.conn.execute(
            select(_P.c.exit_reason, func.count())
            .where(_P.c.programme == programme, _P.c.exited_at.is_not(None), ~_P.c.holdout)
            .group_by(_P.c.exit_reason)
        )
        counts.update({f"exited:{reason}": int(n) for reason, n in ended})
        held = await self.conn.scalar(
            select(func.count()).where(_P.c.programme == programme, _P.c.holdout)
        )
        counts["holdout"] = int(held or 0)
        return counts


def _row(record: PositionRecord, at: datetime) -> dict[str, Any]:
    p = record.position
    return {
        "programme": p.programme,
        "profile_id": p.profile_id,
        "entry": p.entry,
        "version": p.version,
        "step": p.step,
        "entered_at": p.entered_at,
        "arrived_at": p.arrived_at,
        "due_at": None if record.exited_at is not None else p.due_at,
        "holdout": record.holdout,
        "exited_at": record.exited_at,
        "exit_reason": record.exit_reason,
        "updated_at": at,
    }


def _record(row: Any) -> PositionRecord:
    position = Position(
        programme=row.programme,
        version=row.version,
        profile_id=row.profile_id,
        entry=row.entry,
        entered_at=row.entered_at,
        step=row.step,
        arrived_at=row.arrived_at,
        due_at=row.due_at,
    )
    return PositionRecord(position, bool(row.holdout), row.exited_at, row.exit_reason)
