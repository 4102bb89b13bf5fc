"""The scheduled-sends table, the decision kept with each message, and the two look-ups the
dispatcher needs (events already applied, a buyer's app installs), on SQLite and PostgreSQL.

One contract (the port's promises) for both adapters; then what only the SQL can
show: the due-sends loop reads through the due-time index, replicas never take the
same row, and migration 0008 matches schema.py and keeps old messages countable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.adapters.store import schema
from shared.adapters.store.engine import open_store
from shared.adapters.store.migrate import alembic_config, upgrade_async
from shared.adapters.store.schedule import due_query
from shared.adapters.store.sql import SqlStore
from shared.domain.decisions import Reason, ScheduledSend, SentMessage
from shared.domain.events import Channel
from shared.ports.store import MessageOutcome, MessageRecord, ScheduledRecord
from tests.conftest import T0
from tests.contract.on_store import OnStore
from tests.support import infra

HOUR = timedelta(hours=1)


def _send(
    key: str,
    due_at: datetime,
    *,
    profile_id: str = "p1",
    channel: Channel | None = None,
    priority: int = 0,
    context: dict[str, Any] | None = None,
) -> ScheduledRecord:
    send = ScheduledSend(
        key=key,
        campaign="cart-abandoned",
        profile_id=profile_id,
        occurrence_id=f"o-{key}",
        triggered_at=T0,
        due_at=due_at,
        channel=channel,
        priority=priority,
    )
    return ScheduledRecord(send, context or {})


def _message(
    key: str,
    *,
    profile_id: str = "p1",
    status: str = "sent",
    sent_at: datetime | None = T0,
    campaign: str = "win-back-30d",
    channel: str = "email",
    priority: int = 0,
) -> MessageRecord:
    return MessageRecord(
        key=key,
        campaign=campaign,
        profile_id=profile_id,
        channel=channel,
        occurrence_id=f"o-{key}",
        status=status,
        created_at=sent_at or T0,
        priority=priority,
        sent_at=sent_at,
    )


class ScheduleContract(OnStore):
    async def test_only_due_sends_wake_earliest_first(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            await uow.schedule.add(
                [
                    _send("later", T0 + 2 * HOUR),
                    _send("soon", T0 + HOUR),
                    _send("x", T0 + 30 * HOUR),
                ],
                T0,
            )
            await uow.commit()
        async with store.unit_of_work() as uow:
            assert await uow.schedule.due(T0, 10) == []
            woken = await uow.schedule.due(T0 + 2 * HOUR, 10)
            assert [r.send.key for r in woken] == ["soon", "later"]
            assert [r.send.key for r in await uow.schedule.due(T0 + 2 * HOUR, 1)] == ["soon"]
        assert woken[0].send == _send("soon", T0 + HOUR).send

    async def test_a_send_scheduled_again_moves_to_its_new_moment(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            await uow.schedule.add([_send("m-1", T0 + HOUR)], T0)
            await uow.commit()
        async with store.unit_of_work() as uow:
            await uow.schedule.add(
                [_send("m-1", T0 + 9 * HOUR, channel="sms", priority=5, context={"n": 2})], T0
            )
            await uow.commit()
        async with store.unit_of_work() as uow:
            assert await uow.schedule.due(T0 + 8 * HOUR, 10) == []
            (moved,) = await uow.schedule.due(T0 + 9 * HOUR, 10)
            assert await uow.schedule.count_pending() == 1
        assert (moved.send.due_at, moved.send.channel, moved.send.priority) == (
            T0 + 9 * HOUR,
            "sms",
            5,
        )
        assert moved.context == {"n": 2}

    async def test_the_trigger_context_comes_back_as_it_went_in(self, store: SqlStore) -> None:
        context = {
            "event": {"type": "track", "name": "cart_updated", "items": [{"sku": "a", "q": 2}]},
            "segment": "cart-abandoned",
            "total": 4999.5,
            "first": True,
        }
        async with store.unit_of_work() as uow:
            await uow.schedule.add([_send("m-1", T0, context=context)], T0)
            await uow.commit()
        async with store.unit_of_work() as uow:
            (record,) = await uow.schedule.due(T0, 10)
        assert record.context == context
        assert record.send.triggered_at == T0
        assert record.send.due_at.tzinfo is not None

    async def test_a_woken_send_is_gone_only_once_the_unit_of_work_commits(
        self, store: SqlStore
    ) -> None:
        async with store.unit_of_work() as uow:
            await uow.schedule.add([_send("a", T0), _send("b", T0)], T0)
            await uow.commit()
        async with store.unit_of_work() as uow:
            await uow.schedule.remove(["a", "b"])
        async with store.unit_of_work() as uow:
            assert await uow.schedule.count_pending() == 2
            await uow.schedule.remove(["a", "unknown"])
            await uow.commit()
        async with store.unit_of_work() as uow:
            assert [r.send.key for r in await uow.schedule.due(T0, 10)] == ["b"]

    async def test_each_buyer_s_waiting_sends_and_the_queue_depth(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            await uow.schedule.add(
                [
                    _send("p1-late", T0 + 5 * HOUR, priority=9),
                    _send("p1-soon", T0 + HOUR),
                    _send("p2", T0 + 2 * HOUR, profile_id="p2"),
                ],
                T0,
            )
            await uow.commit()
        async with store.unit_of_work() as uow:
            pending = await uow.schedule.pending(["p1", "p3"])
            assert await uow.schedule.count_pending() == 3
            assert await uow.schedule.count_pending(due_by=T0 + 2 * HOUR) == 2
            assert await uow.schedule.count_pending(due_by=T0) == 0
        assert [s.key for s in pending["p1"]] == ["p1-soon", "p1-late"]
        assert pending["p1"][1].priority == 9
        assert pending["p3"] == []

    async def test_a_merged_buyer_s_waiting_sends_follow_the_survivor(
        self, store: SqlStore
    ) -> None:
        async with store.unit_of_work() as uow:
            known, anonymous = (
                await uow.profiles.resolve([{"loyalty_card": "L-1"}, {"bank_card_token": "t"}], T0)
            ).profiles
            await uow.schedule.add([_send("m-1", T0 + HOUR, profile_id=anonymous.id)], T0)
            await uow.commit()
        async with store.unit_of_work() as uow:
            await uow.profiles.merge(anonymous.id, known.id)
            await uow.commit()
        async with store.unit_of_work() as uow:
            pending = await uow.schedule.pending([known.id, anonymous.id])
        assert [s.key for s in pending[known.id]] == ["m-1"]
        assert pending[anonymous.id] == []

    async def test_the_events_already_applied_are_seen(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            await uow.inbox.claim(["e-1", "e-2"], T0)
            await uow.commit()
        async with store.unit_of_work() as uow:
            assert await uow.inbox.seen({"e-1", "e-3"}) == {"e-1"}
            assert await uow.inbox.seen(set()) == set()

    async def test_a_buyer_s_app_installs_are_where_push_goes(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            anna, boris = (
                await uow.profiles.resolve(
                    [{"id": "c1", "app_install_id": "i-2"}, {"id": "c2"}], T0
                )
            ).profiles
            await uow.profiles.resolve([{"id": "c1", "app_install_id": "i-1"}], T0)
            await uow.commit()
        async with store.unit_of_work() as uow:
            installs = await uow.profiles.identifiers([anna.id, boris.id], "app_install_id")
        assert installs == {anna.id: ["i-1", "i-2"], boris.id: []}

    async def test_a_message_keeps_the_decision_behind_it(self, store: SqlStore) -> None:
        trail = (
            Reason("quiet_hours", "quiet_hours", "quiet hours in Europe/Moscow until 06:00"),
            Reason("channel", "only", "email"),
        )
        held_out = MessageRecord(
            key="m-held",
            campaign="win-back-30d",
            profile_id="p1",
            channel="email",
            occurrence_id="o",
            status="skipped",
            created_at=T0,
            reason="holdout",
            holdout=True,
            decision=(Reason("holdout", "holdout", "the buyer is in the control group"),),
        )
        waiting = MessageRecord(
            key="m-wait",
            campaign="second-order",
            profile_id="p1",
            channel="email",
            occurrence_id="o",
            status="scheduled",
            created_at=T0,
            reason="quiet_hours",
            priority=40,
            scheduled_for=T0 + 3 * HOUR,
            decision=trail,
        )
        async with store.unit_of_work() as uow:
            assert await uow.messages.begin(held_out)
            assert await uow.messages.begin(waiting)
            await uow.commit()
        async with store.unit_of_work() as uow:
            assert await uow.messages.get("m-held") == held_out
            assert await uow.messages.get("m-wait") == waiting
            # Woken: the channel is chosen again; what is not given is kept.
            await uow.messages.finish(
                "m-wait",
                MessageOutcome("sending", T0 + 3 * HOUR, channel="sms", sent_at=T0 + 3 * HOUR),
            )
            await uow.commit()
        async with store.unit_of_work() as uow:
            sending = await uow.messages.get("m-wait")
            await uow.messages.finish(
                "m-wait",
                MessageOutcome(
                    "dropped", T0 + 4 * HOUR, reason="converted", error="ordered at 10:00"
                ),
            )
            await uow.commit()
        async with store.unit_of_work() as uow:
            dropped = await uow.messages.get("m-wait")
        assert sending is not None
        assert (sending.status, sending.channel, sending.sent_at) == (
            "sending",
            "sms",
            T0 + 3 * HOUR,
        )
        assert (sending.reason, sending.priority, sending.decision) == ("quiet_hours", 40, trail)
        assert dropped is not None
        assert (dropped.status, dropped.reason, dropped.error) == (
            "dropped",
            "converted",
            "ordered at 10:00",
        )
        assert dropped.scheduled_for == T0 + 3 * HOUR

    async def test_recent_messages_are_those_handed_to_a_provider(self, store: SqlStore) -> None:
        day = timedelta(days=1)
        async with store.unit_of_work() as uow:
            for record in (
                _message("old", sent_at=T0 - 30 * day, priority=10),
                _message("week", sent_at=T0 - 3 * day, channel="sms", campaign="second-order"),
                _message("today", sent_at=T0),
                _message("failed", sent_at=T0, status="failed"),
                _message("rejected", sent_at=T0, status="rejected"),
                _message("held-out", sent_at=None, status="skipped"),
                _message("waiting", sent_at=None, status="scheduled"),
                _message("in-flight", sent_at=T0 - day, status="sending"),
                _message("other", sent_at=T0, profile_id="p2"),
            ):
                assert await uow.messages.begin(record)
            await uow.commit()
        async with store.unit_of_work() as uow:
            week = await uow.messages.recent(["p1", "p3"], T0 - 7 * day)
            last_four = await uow.messages.recent(["p1"], T0 - 7 * day, at_least=4)
            last_two = await uow.messages.recent(["p1"], T0, at_least=2)
        assert [m.key for m in week["p1"]] == ["week", "in-flight", "today"]
        assert week["p1"][0] == SentMessage("second-order", 0, T0 - 3 * day, "sms", "week")
        assert week["p3"] == []
        assert [m.key for m in last_four["p1"]] == ["old", "week", "in-flight", "today"]
        assert last_four["p1"][0].priority == 10
        assert [m.key for m in last_two["p1"]] == ["in-flight", "today"]


class TestSqliteSchedule(ScheduleContract):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url

    async def test_due_sends_are_read_through_the_due_time_index(self, store: SqlStore) -> None:
        async with store.engine.connect() as conn:
            plan = await _explain(conn, "EXPLAIN QUERY PLAN", T0.replace(tzinfo=None))
        assert "USING INDEX ix_scheduled_sends_due_at" in " ".join(str(r[-1]) for r in plan)


@pytest.mark.postgres
class TestPostgresSchedule(ScheduleContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url

    async def test_due_sends_are_read_through_the_due_time_index(self, store: SqlStore) -> None:
        async with store.engine.connect() as conn:
            # Told to avoid full scans, the planner still does one unless the index exists.
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = await _explain(conn, "EXPLAIN", T0)
        assert "ix_scheduled_sends_due_at" in " ".join(r[0] for r in plan)

    async def test_replicas_waking_sends_never_take_the_same_row(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            await uow.schedule.add([_send(f"m-{n}", T0) for n in range(6)], T0)
            await uow.commit()
        async with store.unit_of_work() as first, store.unit_of_work() as second:
            mine = await first.schedule.due(T0, 4)
            theirs = await asyncio.wait_for(second.schedule.due(T0, 10), timeout=5)
        assert len(mine) == 4
        assert len(theirs) == 2
        assert not {r.send.key for r in mine} & {r.send.key for r in theirs}


async def _explain(conn: AsyncConnection, explain: str, now: datetime) -> list[Any]:
    """The plan of the very statement :meth:`SqlSchedule.due` runs."""
    compiled = due_query(now, 100).compile(dialect=conn.dialect)
    values = {**compiled.params, "due_at_1": now}  # as the driver gets it (SQLite: naive)
    names = compiled.positiontup or []
    result = await conn.exec_driver_sql(
        f"{explain} {compiled}", tuple(values[name] for name in names)
    )
    return list(result)


class MigrationContract:
    @pytest.fixture
    def empty_url(self) -> str:
        raise NotImplementedError

    async def test_0008_builds_what_schema_py_declares(self, empty_url: str) -> None:
        await upgrade_async(empty_url)
        store = open_store(empty_url)

        def differences(conn: Connection) -> list[Any]:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            mine = {"scheduled_sends", "messages"}
            return [
                diff
                for diff in compare_metadata(context, schema.metadata)
                if mine & {str(getattr(part, "name", "")) for part in _parts(diff)}
            ]

        try:
            async with store.engine.connect() as conn:
                assert await conn.run_sync(differences) == []
        finally:
            await store.close()

    async def test_messages_sent_before_0008_count_for_the_caps(self, empty_url: str) -> None:
        await upgrade_async(empty_url, "0007")
        store = open_store(empty_url)
        try:
            async with store.engine.begin() as conn:
                for key, status in (("m-sent", "sent"), ("m-none", "no_address")):
                    await conn.execute(
                        schema.messages.insert().values(
                            key=key,
                            campaign="win-back-30d",
                            profile_id="p1",
                            channel="email",
                            occurrence_id="o",
                            status=status,
                            created_at=T0,
                        )
                    )
            await upgrade_async(empty_url)
            async with store.unit_of_work() as uow:
                recent = await uow.messages.recent(["p1"], T0 - timedelta(days=7))
                refused = await uow.messages.get("m-none")
        finally:
            await store.close()
        assert [(m.key, m.at) for m in recent["p1"]] == [("m-sent", T0)]
        assert refused is not None
        assert (refused.reason, refused.holdout, refused.priority) == ("no_address", False, 0)

    def test_0008_goes_down_and_up_again(self, empty_url: str) -> None:
        config = alembic_config(empty_url)
        command.upgrade(config, "head")
        command.downgrade(config, "0007")
        command.upgrade(config, "head")


def _parts(diff: Any) -> list[Any]:
    """The schema objects one autogenerate difference names (nested for column changes)."""
    if isinstance(diff, list):
        return [part for item in diff for part in _parts(item)]
    found = [part for part in diff if hasattr(part, "name")]
    tables = [part.table for part in found if getattr(part, "table", None) is not None]
    names = [_Named(part) for part in diff if isinstance(part, str)]
    return found + tables + names


class _Named:
    def __init__(self, name: str) -> None:
        self.name = name


class TestSqliteMigration0008(MigrationContract):
    @pytest.fixture
    def empty_url(self, tmp_path: Path) -> str:
        return f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"


@pytest.mark.postgres
class TestPostgresMigration0008(MigrationContract):
    @pytest.fixture
    def empty_url(self) -> Iterator[str]:
        if not infra.answers("127.0.0.1:5432"):
            pytest.fail(
                "PostgreSQL is not running on 127.0.0.1:5432: run the tests with `make test`"
            )
        name = infra.unique("nudge_m8_")
        yield infra.create_database(infra.DATABASE_URL, name)
        infra.drop_database(infra.DATABASE_URL, name)
