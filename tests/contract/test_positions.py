"""The programme positions table on SQLite and PostgreSQL: an entry is written once, a
position moves in place, waking reads only what is due, and replicas never take the same
row."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from shared.adapters.store.sql import SqlStore
from shared.domain.programmes import Position
from shared.ports.store import Activation, PositionRecord
from tests.conftest import T0
from tests.contract.on_store import OnStore

DAY = timedelta(days=1)


def _position(
    profile_id: str = "p1", *, entry: str = "e1", step: str = "pause", due_in: timedelta = DAY
) -> PositionRecord:
    return PositionRecord(
        Position("win-back", 1, profile_id, entry, T0, step, T0, T0 + due_in), holdout=False
    )


class PositionsContract(OnStore):
    async def test_an_entry_is_written_once_and_read_back_when_due(self, store: SqlStore) -> None:
        first = _position()
        async with store.unit_of_work() as uow:
            assert await uow.positions.enter([first], T0) == {first.position}
            await uow.commit()
        async with store.unit_of_work() as uow:
            again = replace(first, position=replace(first.position, step="email"))
            assert await uow.positions.enter([again], T0) == set()
            assert await uow.positions.due(T0 + DAY - timedelta(seconds=1), 10) == []
            assert await uow.positions.due(T0 + DAY, 10) == [first]

    async def test_a_position_moves_in_place_and_an_exited_one_is_never_due(
        self, store: SqlStore
    ) -> None:
        record = _position()
        async with store.unit_of_work() as uow:
            await uow.positions.enter([record, _position("p2")], T0)
            await uow.commit()
        moved = replace(
            record,
            position=replace(record.position, step="sms", version=2, due_at=T0 + 3 * DAY),
        )
        ended = replace(_position("p2"), exited_at=T0 + DAY, exit_reason="goal")
        async with store.unit_of_work() as uow:
            await uow.positions.save([moved, ended], T0 + DAY)
            await uow.commit()
        async with store.unit_of_work() as uow:
            assert await uow.positions.due(T0 + 10 * DAY, 10) == [moved]
            assert await uow.positions.waiting(["p1", "p2", "p3"]) == [moved]
            counts = await uow.positions.count("win-back")
        assert counts == {"sms": 1, "exited:goal": 1, "holdout": 0}

    async def test_due_positions_come_earliest_first_up_to_the_limit(self, store: SqlStore) -> None:
        records = [_position(f"p{n}", due_in=DAY * (5 - n)) for n in range(5)]
        async with store.unit_of_work() as uow:
            await uow.positions.enter(records, T0)
            await uow.commit()
        async with store.unit_of_work() as uow:
            due = await uow.positions.due(T0 + 10 * DAY, 3)
        assert [r.position.profile_id for r in due] == ["p4", "p3", "p2"]

    async def test_held_out_entries_are_counted_apart(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            await uow.positions.enter(
                [
                    replace(_position("p1"), holdout=True, exited_at=T0, exit_reason="holdout"),
                    _position("p2"),
                ],
                T0,
            )
            await uow.commit()
        async with store.unit_of_work() as uow:
            assert await uow.positions.count("win-back") == {"pause": 1, "holdout": 1}
            assert await uow.positions.due(T0 + 10 * DAY, 10) == [_position("p2")]

    async def test_an_activation_begins_once_and_keeps_how_far_it_went(
        self, store: SqlStore
    ) -> None:
        async with store.unit_of_work() as uow:
            begun = await uow.positions.activation("everyone", T0)
            assert begun == Activation("everyone", T0)
            await uow.positions.advance(replace(begun, after="p7", entered=7))
            await uow.commit()
        async with store.unit_of_work() as uow:
            again = await uow.positions.activation("everyone", T0 + DAY)
        assert again == Activation("everyone", T0, "p7", 7)


class TestSqlitePositions(PositionsContract):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestPostgresPositions(PositionsContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url

    async def test_replicas_waking_positions_never_take_the_same_row(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            await uow.positions.enter([_position(f"p{n}") for n in range(6)], T0)
            await uow.commit()
        async with store.unit_of_work() as first, store.unit_of_work() as second:
            mine = await first.positions.due(T0 + DAY, 4)
            theirs = await asyncio.wait_for(second.positions.due(T0 + DAY, 10), timeout=5)
        assert len(mine) == 4
        assert len(theirs) == 2
        assert not {r.position for r in mine} & {r.position for r in theirs}

    async def test_replicas_never_enter_the_same_activation_batch(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            await uow.positions.activation("everyone", T0)
            await uow.commit()
        async with store.unit_of_work() as first, store.unit_of_work() as second:
            assert await first.positions.activation("everyone", T0) is not None
            held = second.positions.activation("everyone", T0)
            assert await asyncio.wait_for(held, timeout=5) is None
