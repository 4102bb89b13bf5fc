"""One contract for the console-session port, run against SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from argon2 import PasswordHasher
from sqlalchemy import Connection, select

from shared.adapters.clock import SimulatedClock
from shared.adapters.store import schema
from shared.adapters.store.engine import create_engine
from shared.adapters.store.sessions import SEEN_EVERY, SqlSessions, session_hash
from shared.adapters.store.users import SqlUsers
from shared.ports.users import ConsoleUser
from tests.conftest import T0

EIGHT_HOURS = timedelta(hours=8)


class SessionsContract:
    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    async def sessions(self, url: str, clock: SimulatedClock) -> AsyncIterator[SqlSessions]:
        sessions = SqlSessions(create_engine(url), clock=clock)
        yield sessions
        await sessions.close()

    @pytest.fixture
    async def users(self, sessions: SqlSessions, clock: SimulatedClock) -> SqlUsers:
        hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        return SqlUsers(sessions.engine, clock=clock, hasher=hasher)

    @pytest.fixture
    async def olga(self, users: SqlUsers) -> ConsoleUser:
        return await users.create("olga", "a long enough password", "marketer")

    @pytest.fixture
    async def ivan(self, users: SqlUsers) -> ConsoleUser:
        return await users.create("ivan", "a long enough password", "analyst")

    async def test_a_session_names_its_user_until_it_expires(
        self, sessions: SqlSessions, olga: ConsoleUser, clock: SimulatedClock
    ) -> None:
        session_id = await sessions.start(olga.id, EIGHT_HOURS)
        assert len(session_id) >= 43, "256 random bits"
        assert await sessions.user_of(session_id) == olga.id
        clock.advance(EIGHT_HOURS - timedelta(seconds=1))
        assert await sessions.user_of(session_id) == olga.id
        clock.advance(timedelta(seconds=1))
        assert await sessions.user_of(session_id) is None, "a fixed lifetime, however active"

    async def test_each_login_is_a_session_of_its_own(
        self, sessions: SqlSessions, olga: ConsoleUser
    ) -> None:
        first = await sessions.start(olga.id, EIGHT_HOURS)
        second = await sessions.start(olga.id, EIGHT_HOURS)
        assert first != second
        await sessions.end(first)
        assert await sessions.user_of(first) is None
        assert await sessions.user_of(second) == olga.id

    async def test_an_ended_session_names_nobody_and_ending_again_is_no_error(
        self, sessions: SqlSessions, olga: ConsoleUser
    ) -> None:
        session_id = await sessions.start(olga.id, EIGHT_HOURS)
        await sessions.end(session_id)
        assert await sessions.user_of(session_id) is None
        await sessions.end(session_id)
        await sessions.end("never a session")
        assert await sessions.user_of(session_id) is None

    @pytest.mark.parametrize("forged", ["", "x", "a" * 43, "a" * 10_000])
    async def test_an_id_that_was_never_a_session_names_nobody(
        self, sessions: SqlSessions, olga: ConsoleUser, forged: str
    ) -> None:
        await sessions.start(olga.id, EIGHT_HOURS)
        assert await sessions.user_of(forged) is None

    async def test_ending_a_users_sessions_ends_every_one_of_theirs_only(
        self, sessions: SqlSessions, olga: ConsoleUser, ivan: ConsoleUser
    ) -> None:
        at_work = await sessions.start(olga.id, EIGHT_HOURS)
        at_home = await sessions.start(olga.id, EIGHT_HOURS)
        ended = await sessions.start(olga.id, EIGHT_HOURS)
        await sessions.end(ended)
        his = await sessions.start(ivan.id, EIGHT_HOURS)
        assert await sessions.end_all(olga.id) == 2, "the ended one is not counted again"
        assert await sessions.user_of(at_work) is None
        assert await sessions.user_of(at_home) is None
        assert await sessions.user_of(his) == ivan.id
        assert await sessions.end_all(olga.id) == 0

    async def test_only_a_hash_of_the_session_id_is_kept(
        self, sessions: SqlSessions, olga: ConsoleUser
    ) -> None:
        session_id = await sessions.start(olga.id, EIGHT_HOURS)
        async with sessions.engine.connect() as conn:
            row = (await conn.execute(select(schema.console_sessions))).one()
        assert session_id not in "".join(str(value) for value in row)
        assert row.id_hash == session_hash(session_id)
        assert (row.user_id, row.created_at, row.expires_at) == (olga.id, T0, T0 + EIGHT_HOURS)
        assert row.revoked_at is None

    async def test_when_a_session_was_last_seen_is_written_at_most_once_a_minute(
        self, sessions: SqlSessions, olga: ConsoleUser, clock: SimulatedClock
    ) -> None:
        session_id = await sessions.start(olga.id, EIGHT_HOURS)

        async def last_seen() -> Any:
            async with sessions.engine.connect() as conn:
                return await conn.scalar(select(schema.console_sessions.c.last_seen_at))

        clock.advance(SEEN_EVERY - timedelta(seconds=1))
        await sessions.user_of(session_id)
        assert await last_seen() == T0
        clock.advance(timedelta(seconds=1))
        await sessions.user_of(session_id)
        assert await last_seen() == T0 + SEEN_EVERY

    async def test_expired_sessions_are_cleared_at_a_later_login(
        self, sessions: SqlSessions, olga: ConsoleUser, clock: SimulatedClock
    ) -> None:
        await sessions.start(olga.id, timedelta(hours=1))
        kept = await sessions.start(olga.id, EIGHT_HOURS)
        clock.advance(timedelta(hours=2))
        await sessions.start(olga.id, EIGHT_HOURS)
        async with sessions.engine.connect() as conn:
            hashes = set(await conn.scalars(select(schema.console_sessions.c.id_hash)))
        assert len(hashes) == 2
        assert session_hash(kept) in hashes

    async def test_0013_builds_what_schema_py_declares(self, sessions: SqlSessions) -> None:
        def differences(conn: Connection) -> list[Any]:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return [
                diff
                for diff in compare_metadata(context, schema.metadata)
                if "console_sessions" in repr(diff)
            ]

        async with sessions.engine.connect() as conn:
            assert await conn.run_sync(differences) == []


class TestSqliteSessions(SessionsContract):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestPostgresSessions(SessionsContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url
