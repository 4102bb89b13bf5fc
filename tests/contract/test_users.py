"""One contract for the console-user port, run against SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from shared.adapters.clock import SimulatedClock
from shared.adapters.store import schema
from shared.adapters.store.engine import create_engine
from shared.adapters.store.users import SqlUsers
from shared.ports.users import ROLES, ConsoleUser
from tests.conftest import T0

PASSWORD = "correct horse battery"


class CountingHasher(PasswordHasher):
    """argon2 with cheap parameters (the tests stay quick), counting the verifications."""

    def __init__(self, time_cost: int = 1) -> None:
        super().__init__(time_cost=time_cost, memory_cost=8, parallelism=1)
        self.verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Any:
        self.verifications += 1
        return super().verify(hash, password)


class UsersContract:
    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def hasher(self) -> CountingHasher:
        return CountingHasher()

    @pytest.fixture
    async def users(
        self, url: str, clock: SimulatedClock, hasher: CountingHasher
    ) -> AsyncIterator[SqlUsers]:
        users = SqlUsers(create_engine(url), clock=clock, hasher=hasher)
        yield users
        await users.close()

    async def test_a_new_user_logs_in_with_their_password(self, users: SqlUsers) -> None:
        user = await users.create("  Olga.Marketing ", PASSWORD, "marketer")
        assert user == ConsoleUser(
            id=user.id, username="olga.marketing", role="marketer", created_at=T0
        )
        assert await users.authenticate("olga.marketing", PASSWORD) == user
        assert await users.authenticate("OLGA.Marketing", PASSWORD) == user, "any case"
        assert await users.get(user.id) == user
        assert await users.find("Olga.Marketing") == user

    async def test_a_wrong_password_or_an_unknown_user_is_nobody(self, users: SqlUsers) -> None:
        await users.create("olga", PASSWORD, "marketer")
        assert await users.authenticate("olga", PASSWORD + "!") is None
        assert await users.authenticate("olga", "") is None
        assert await users.authenticate("olga", "x" * 5000) is None
        assert await users.authenticate("ivan", PASSWORD) is None
        assert await users.get("0123456789abcdef") is None
        assert await users.find("ivan") is None

    async def test_an_unknown_user_costs_a_password_check_too(
        self, users: SqlUsers, hasher: CountingHasher
    ) -> None:
        await users.create("olga", PASSWORD, "marketer")
        before = hasher.verifications
        assert await users.authenticate("ivan", PASSWORD) is None
        assert hasher.verifications == before + 1, "a dummy hash is verified"
        assert await users.authenticate("olga", "wrong password") is None
        assert hasher.verifications == before + 2

    async def test_only_an_argon2id_hash_of_the_password_is_kept(self, users: SqlUsers) -> None:
        await users.create("olga", PASSWORD, "analyst")
        async with users.engine.connect() as conn:
            row = (await conn.execute(select(schema.users))).one()
        assert PASSWORD not in "".join(str(value) for value in row)
        assert row.password_hash.startswith("$argon2id$")

    async def test_a_hash_with_old_parameters_is_replaced_at_login(
        self, users: SqlUsers, url: str, clock: SimulatedClock
    ) -> None:
        await users.create("olga", PASSWORD, "analyst")
        stronger = SqlUsers(create_engine(url), clock=clock, hasher=CountingHasher(time_cost=2))
        try:
            assert await stronger.authenticate("olga", "not the password") is None
            async with users.engine.connect() as conn:
                before = await conn.scalar(select(schema.users.c.password_hash))
            assert "t=1" in before, "a failed login changes nothing"
            assert await stronger.authenticate("olga", PASSWORD) is not None
            async with users.engine.connect() as conn:
                after = await conn.scalar(select(schema.users.c.password_hash))
            assert "t=2" in after
            assert await stronger.authenticate("olga", PASSWORD) is not None
            assert await users.authenticate("olga", PASSWORD) is not None
        finally:
            await stronger.close()

    async def test_a_disabled_user_cannot_log_in_and_stays_listed(
        self, users: SqlUsers, clock: SimulatedClock
    ) -> None:
        user = await users.create("olga", PASSWORD, "admin")
        clock.advance(timedelta(hours=1))
        assert await users.disable("OLGA")
        assert await users.authenticate("olga", PASSWORD) is None
        clock.advance(timedelta(hours=1))
        assert await users.disable("olga"), "disabling again is no error"
        (listed,) = await users.list()
        assert listed.id == user.id
        assert not listed.active
        assert listed.disabled_at == T0 + timedelta(hours=1), "the first time stands"
        assert not await users.disable("ivan")

    async def test_a_role_and_a_password_can_change(self, users: SqlUsers) -> None:
        await users.create("olga", PASSWORD, "analyst")
        changed = await users.set_role("olga", "marketer")
        assert changed is not None
        assert changed.role == "marketer"
        assert await users.set_role("ivan", "admin") is None
        assert await users.set_password("olga", "a brand new secret")
        assert await users.authenticate("olga", PASSWORD) is None
        assert await users.authenticate("olga", "a brand new secret") == changed
        assert not await users.set_password("ivan", "a brand new secret")
        with pytest.raises(ValueError, match="characters"):
            await users.set_password("olga", "short")

    async def test_the_list_is_oldest_first(self, users: SqlUsers, clock: SimulatedClock) -> None:
        assert await users.list() == []
        first = await users.create("olga", PASSWORD, "admin")
        clock.advance(timedelta(minutes=1))
        second = await users.create("ivan", PASSWORD, "analyst")
        assert await users.list() == [first, second]

    @pytest.mark.parametrize(
        ("username", "password", "role"),
        [
            ("", PASSWORD, "marketer"),
            ("-olga", PASSWORD, "marketer"),
            ("olga smith", PASSWORD, "marketer"),
            ("o" * 101, PASSWORD, "marketer"),
            ("olga", "short", "marketer"),
            ("olga", "x" * 1025, "marketer"),
            ("olga", PASSWORD, "owner"),
        ],
        ids=[
            "empty",
            "leading-dash",
            "space",
            "too-long",
            "short-password",
            "huge-password",
            "unknown-role",
        ],
    )
    async def test_a_bad_user_is_refused(
        self, users: SqlUsers, username: str, password: str, role: str
    ) -> None:
        with pytest.raises(ValueError):  # noqa: PT011 - the message varies with the reason
            await users.create(username, password, role)  # type: ignore[arg-type]
        assert await users.list() == []

    async def test_a_username_is_taken_once_whatever_its_case(self, users: SqlUsers) -> None:
        await users.create("olga", PASSWORD, "marketer")
        with pytest.raises(ValueError, match="taken"):
            await users.create("Olga", "another password", "admin")
        assert len(await users.list()) == 1

    async def test_ping_answers(self, users: SqlUsers) -> None:
        await users.ping()


class TestSqliteUsers(UsersContract):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestPostgresUsers(UsersContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url


def test_each_role_has_the_rights_of_the_ones_before_it() -> None:
    def user(role: str) -> ConsoleUser:
        return ConsoleUser("u", "u", role, T0)  # type: ignore[arg-type]

    assert ROLES == ("analyst", "marketer", "admin")
    assert user("admin").has("marketer")
    assert user("admin").has("analyst")
    assert user("marketer").has("analyst")
    assert not user("marketer").has("admin")
    assert not user("analyst").has("marketer")
