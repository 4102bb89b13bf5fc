"""One contract for the console's read model, run against SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import delete, insert

from shared.adapters.store import schema
from shared.adapters.store.console_queries import SqlConsoleQueries
from shared.adapters.store.engine import create_engine
from tests.conftest import T0


class ConsoleQueriesContract:
    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    async def queries(self, url: str) -> AsyncIterator[SqlConsoleQueries]:
        queries = SqlConsoleQueries(create_engine(url))
        yield queries
        await queries.close()

    async def test_an_empty_base_counts_nothing(self, queries: SqlConsoleQueries) -> None:
        assert await queries.buyer_count() == 0
        assert await queries.segment_sizes(["lead", "loyal"]) == {"lead": 0, "loyal": 0}
        assert await queries.segment_sizes([]) == {}

    async def test_buyers_and_segment_sizes_are_counted_once_each(
        self, queries: SqlConsoleQueries
    ) -> None:
        async with queries.engine.begin() as conn:
            await conn.execute(
                insert(schema.profiles),
                [
                    {"id": "a", "created_at": T0, "updated_at": T0, "merged_into": None},
                    {"id": "b", "created_at": T0, "updated_at": T0, "merged_into": None},
                    {"id": "c", "created_at": T0, "updated_at": T0, "merged_into": "a"},
                ],
            )
            await conn.execute(
                insert(schema.memberships),
                [
                    {"profile_id": "a", "segment": "loyal", "entered_at": T0},
                    {"profile_id": "b", "segment": "loyal", "entered_at": T0},
                    {"profile_id": "b", "segment": "no-order-30d", "entered_at": T0},
                ],
            )
        assert await queries.buyer_count() == 2, "a merged profile is the buyer it joined"
        assert await queries.segment_sizes(["lead", "loyal"]) == {"lead": 0, "loyal": 2}

    async def test_ping_answers(self, queries: SqlConsoleQueries) -> None:
        await queries.ping()

    async def _seed(self, queries: SqlConsoleQueries) -> None:
        async with queries.engine.begin() as conn:
            await conn.execute(
                insert(schema.profiles).values(created_at=T0, updated_at=T0),
                [
                    {"id": "a", "orders_count": 1, "merged_into": None},
                    {"id": "b", "orders_count": 2, "merged_into": None},
                    {"id": "c", "orders_count": 0, "merged_into": "a"},
                ],
            )
            await conn.execute(
                insert(schema.identifiers),
                [
                    {"kind": "phone", "value": "+79161234567", "profile_id": "a"},
                    {"kind": "loyalty_card", "value": "LC-9", "profile_id": "c"},
                ],
            )
            await conn.execute(
                insert(schema.memberships),
                [
                    {"profile_id": "a", "segment": "lifecycle-new", "entered_at": T0},
                    {"profile_id": "a", "segment": "vip", "entered_at": T0},
                    {"profile_id": "b", "segment": "vip", "entered_at": T0},
                ],
            )

    async def test_buyers_are_scanned_in_id_order_with_their_recorded_stage(
        self, queries: SqlConsoleQueries
    ) -> None:
        await self._seed(queries)
        stages = {"lifecycle-new": "new", "lifecycle-loyal": "loyal"}
        first = await queries.scan_buyers(after=None, limit=1, stage_segments=stages)
        assert [(b.profile.id, b.stage) for b in first] == [("a", "new")]
        rest = await queries.scan_buyers(after="a", limit=10, stage_segments=stages)
        assert [(b.profile.id, b.stage) for b in rest] == [("b", None)], "c is merged into a"
        assert rest[0].profile.orders_count == 2

    async def test_a_buyer_is_found_by_identifier_through_merges(
        self, queries: SqlConsoleQueries
    ) -> None:
        await self._seed(queries)
        by_phone = await queries.find_buyer_by("phone", "+79161234567")
        assert by_phone is not None
        assert by_phone.id == "a"
        by_card = await queries.find_buyer_by("loyalty_card", "LC-9")
        assert by_card is not None
        assert by_card.id == "a", "c was merged into a"
        by_id = await queries.find_buyer_by("profile_id", "b")
        assert by_id is not None
        assert by_id.id == "b"
        assert await queries.find_buyer_by("email", "nobody@example.com") is None
        merged = await queries.find_buyer("c")
        assert merged is not None
        assert merged.id == "a"
        assert await queries.buyer_segments("a") == [("lifecycle-new", T0), ("vip", T0)]

    async def test_a_buyers_messages_come_newest_first_with_their_decision(
        self, queries: SqlConsoleQueries
    ) -> None:
        await self._seed(queries)
        decision = [{"step": "holdout", "code": "holdout", "detail": "in the 10% held out"}]
        async with queries.engine.begin() as conn:
            await conn.execute(
                insert(schema.messages),
                [
                    {
                        "key": "m1",
                        "campaign": "welcome",
                        "profile_id": "a",
                        "channel": "email",
                        "occurrence_id": "o1",
                        "status": "sent",
                        "reason": None,
                        "holdout": False,
                        "decision": None,
                        "created_at": T0,
                        "sent_at": T0,
                    },
                    {
                        "key": "m2",
                        "campaign": "win-back",
                        "profile_id": "a",
                        "channel": "sms",
                        "occurrence_id": "o2",
                        "status": "skipped",
                        "reason": "holdout",
                        "holdout": True,
                        "decision": decision,
                        "created_at": T0 + timedelta(days=1),
                        "sent_at": None,
                    },
                ],
            )
        messages = await queries.buyer_messages("a", limit=10)
        assert [(m.key, m.status, m.reason, m.holdout) for m in messages] == [
            ("m2", "skipped", "holdout", True),
            ("m1", "sent", None, False),
        ]
        assert messages[0].decision == decision
        assert messages[1].decision == []
        assert messages[1].sent_at == T0
        assert len(await queries.buyer_messages("a", limit=1)) == 1

    async def test_segment_sizes_are_snapshotted_once_a_day_and_read_back_over_time(
        self, queries: SqlConsoleQueries
    ) -> None:
        await self._seed(queries)
        day1, day2 = T0.date(), T0.date() + timedelta(days=1)
        assert await queries.snapshot_segment_sizes(day1, T0) == 2
        async with queries.engine.begin() as conn:
            await conn.execute(
                delete(schema.memberships).where(schema.memberships.c.segment == "lifecycle-new")
            )
        assert await queries.snapshot_segment_sizes(day2, T0) == 1
        assert await queries.snapshot_segment_sizes(day2, T0) == 1, "a day's snapshot is replaced"
        history = await queries.segment_size_history(["vip", "lifecycle-new", "x"], since=day1)
        assert history == {
            "vip": [(day1, 2), (day2, 2)],
            "lifecycle-new": [(day1, 1), (day2, 0)],
            "x": [(day1, 0), (day2, 0)],
        }
        assert await queries.segment_size_history(["vip"], since=day2) == {"vip": [(day2, 2)]}


class TestSqliteConsoleQueries(ConsoleQueriesContract):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestPostgresConsoleQueries(ConsoleQueriesContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url
