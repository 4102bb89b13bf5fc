"""One contract for the event-id port, run against memory, SQLite (embedded) and PostgreSQL.

Two "replicas" of an index are two adapters on one database, each with its own
engine (connections), as two ingest processes would have.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, event, select

from shared.adapters.clock import SimulatedClock
from shared.adapters.event_ids import MemoryEventIds
from shared.adapters.store import schema
from shared.adapters.store.engine import create_engine
from shared.adapters.store.event_ids import SqlEventIds
from shared.adapters.store.sql import SqlStore
from shared.ports.event_ids import EventIds
from tests.conftest import T0
from tests.contract.test_schedule import _parts

Replica = Callable[[], Awaitable[EventIds]]


def _no_busy_wait(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.cursor().execute("PRAGMA busy_timeout=0")


V1, V2 = b"\x00\x00\x00\x01", b"\x00\x00\x00\x02"  # two deployments' digest versions


def digest(content: str, version: bytes = V1) -> bytes:
    return version + hashlib.blake2b(content.encode(), digest_size=16).digest()


A, B, C = digest("anna buys"), digest("zed buys"), digest("someone else")


async def shop_wide(ids: EventIds, digests: dict[str, bytes]) -> set[str]:
    """Claim ``digests`` in the shop-wide tenant; the conflicting ids."""
    conflicts = await ids.claim({("", event_id): d for event_id, d in digests.items()})
    assert {tenant for tenant, _ in conflicts} <= {""}
    return {event_id for _, event_id in conflicts}


class EventIdsContract:
    @pytest.fixture
    def replica(self) -> Replica:
        """A new index on the shared storage of this test."""
        raise NotImplementedError

    @pytest.fixture
    async def ids(self, replica: Replica) -> EventIds:
        return await replica()

    async def test_new_ids_are_claimed_without_conflict(self, ids: EventIds) -> None:
        assert await shop_wide(ids, {"e-0001": A, "e-0002": B}) == set()

    async def test_an_empty_claim_is_no_conflict(self, ids: EventIds) -> None:
        assert await shop_wide(ids, {}) == set()

    async def test_the_same_ids_with_the_same_content_are_no_conflict_however_often(
        self, ids: EventIds
    ) -> None:
        await shop_wide(ids, {"e-0001": A, "e-0002": B})
        assert await shop_wide(ids, {"e-0001": A, "e-0002": B}) == set()
        assert await shop_wide(ids, {"e-0002": B, "e-0003": C}) == set()

    async def test_an_id_claimed_with_other_content_is_a_conflict(self, ids: EventIds) -> None:
        await shop_wide(ids, {"e-0001": A})
        assert await shop_wide(ids, {"e-0001": B}) == {"e-0001"}
        assert await shop_wide(ids, {"e-0001": A}) == set()

    async def test_a_claim_with_a_conflict_claims_nothing(self, ids: EventIds) -> None:
        await shop_wide(ids, {"e-0001": A, "e-0002": A})
        assert await shop_wide(ids, {"e-0000": A, "e-0001": B, "e-0002": A, "e-0003": A}) == {
            "e-0001"
        }
        # e-0000 and e-0003 were not claimed: other content for them is no conflict
        assert await shop_wide(ids, {"e-0000": C, "e-0003": C}) == set()

    async def test_every_conflict_is_named(self, ids: EventIds) -> None:
        first = {f"e-{n:04}": A for n in range(1500)}
        assert await shop_wide(ids, first) == set()
        again = {f"e-{n:04}": (B if n % 500 == 7 else A) for n in range(1500)}
        assert await shop_wide(ids, again) == {"e-0007", "e-0507", "e-1007"}

    async def test_a_tenant_never_sees_nor_blocks_another_tenants_ids(self, ids: EventIds) -> None:
        assert await ids.claim({("A", "order-1001"): A}) == set()
        assert await ids.claim({("B", "order-1001"): B, ("", "order-1001"): C}) == set()
        assert await ids.claim({("A", "order-1001"): A, ("B", "order-1001"): B}) == set()
        assert await ids.claim({("A", "order-1001"): B, ("B", "order-1002"): B}) == {
            ("A", "order-1001")
        }
        # the claim with a conflict claimed nothing: B's order-1002 is free still
        assert await ids.claim({("B", "order-1002"): C}) == set()

    async def test_a_digest_of_another_version_is_the_same_content_and_replaces_it(
        self, ids: EventIds
    ) -> None:
        await shop_wide(ids, {"e-0001": A, "e-0002": B})
        # after a deploy: e-0001 sent again (its digest now another), e-0003 new
        redeployed = {"e-0001": digest("anna buys, as published now", V2), "e-0003": C}
        assert await shop_wide(ids, redeployed) == set()
        assert await shop_wide(ids, {"e-0001": digest("zed buys", V2)}) == {"e-0001"}
        assert await shop_wide(ids, redeployed) == set()

    async def test_a_claim_is_seen_by_every_replica(self, replica: Replica) -> None:
        first, second = await replica(), await replica()
        await shop_wide(first, {"e-0001": A})
        assert await shop_wide(second, {"e-0001": B}) == {"e-0001"}
        assert await shop_wide(second, {"e-0001": A}) == set()

    async def test_of_two_racing_claims_of_the_same_ids_one_wins_whole(
        self, replica: Replica
    ) -> None:
        first, second = await replica(), await replica()
        for round_ in range(5):
            # the same ids, written in opposite orders: no deadlock, one claim wins whole
            names = [f"r{round_}-{n:03}" for n in range(200)]
            outcomes = await asyncio.gather(
                shop_wide(first, dict.fromkeys(names, A)),
                shop_wide(second, dict.fromkeys(reversed(names), B)),
            )
            assert sorted(len(conflicts) for conflicts in outcomes) == [0, 200]
            winner = A if outcomes[0] == set() else B
            assert await shop_wide(first, dict.fromkeys(names, winner)) == set()


class TestMemoryEventIds(EventIdsContract):
    @pytest.fixture
    def replica(self) -> Replica:
        shared = MemoryEventIds()

        async def same() -> EventIds:
            return shared

        return same


class SqlEventIdsContract(EventIdsContract):
    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    async def replica(self, url: str, clock: SimulatedClock) -> AsyncIterator[Replica]:
        opened: list[SqlEventIds] = []

        async def new() -> EventIds:
            opened.append(SqlEventIds(create_engine(url), clock=clock))
            return opened[-1]

        yield new
        for ids in opened:
            await ids.engine.dispose()

    async def test_a_claim_keeps_its_digest_and_when_it_was_made(self, ids: EventIds) -> None:
        assert isinstance(ids, SqlEventIds)
        await shop_wide(ids, {"e-0001": A})
        async with ids.engine.connect() as conn:
            row = (await conn.execute(select(schema.event_ids))).one()
        assert (row.tenant, row.event_id, bytes(row.digest), row.claimed_at) == (
            "",
            "e-0001",
            A,
            T0,
        )

    async def test_migration_0012_makes_the_table_the_schema_describes(self, ids: EventIds) -> None:
        assert isinstance(ids, SqlEventIds)

        def differences(conn: Connection) -> list[Any]:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return [
                diff
                for diff in compare_metadata(context, schema.metadata)
                if "event_ids" in {str(getattr(part, "name", "")) for part in _parts(diff)}
            ]

        async with ids.engine.connect() as conn:
            assert await conn.run_sync(differences) == []


class TestSqliteEventIds(SqlEventIdsContract):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url

    async def test_claims_and_the_stores_units_of_work_queue_for_one_writer(
        self, sqlite_url: str, clock: SimulatedClock
    ) -> None:
        # one engine, as bootstrap builds it; SQLite's busy wait turned off, so that any
        # write meeting another of this process fails instead of waiting
        engine = create_engine(sqlite_url)
        event.listen(engine.sync_engine, "connect", _no_busy_wait)
        store, ids = SqlStore(engine), SqlEventIds(engine, clock=clock)

        async def apply(n: int) -> None:
            async with store.unit_of_work() as uow:
                await uow.inbox.claim([f"applied-{n}"], T0)
                await uow.inbox.claim([f"applied-{n}-again"], T0)
                await uow.commit()

        async def accept(n: int) -> set[str]:
            return await shop_wide(ids, {f"e-{n}": A})

        try:
            outcomes = await asyncio.gather(
                *(apply(n) if n % 2 else accept(n) for n in range(40)), return_exceptions=True
            )
        finally:
            await engine.dispose()
        assert [o for o in outcomes if isinstance(o, BaseException)] == []


@pytest.mark.postgres
class TestPostgresEventIds(SqlEventIdsContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url
