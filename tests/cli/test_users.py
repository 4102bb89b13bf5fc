"""``nudge users``: create, list, set-role and disable console users on a temporary SQLite
database."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from services.cli import app
from shared.adapters.store.engine import create_engine
from shared.adapters.store.sessions import SqlSessions
from shared.adapters.store.users import open_users
from shared.ports.users import ConsoleUser

runner = CliRunner()
PASSWORD = "a long enough password"


@pytest.fixture
def db(sqlite_url: str) -> str:
    return sqlite_url


def authenticate(db: str, username: str, password: str) -> ConsoleUser | None:
    async def main() -> ConsoleUser | None:
        users = open_users(db)
        try:
            return await users.authenticate(username, password)
        finally:
            await users.close()

    return asyncio.run(main())


def test_create_asks_the_password_twice_and_the_user_can_log_in(db: str) -> None:
    result = runner.invoke(
        app,
        ["users", "create", "--username", "Olga", "--role", "marketer", "--db", db],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "olga (marketer) created" in result.stdout
    assert PASSWORD not in result.output, "the password is never echoed"
    user = authenticate(db, "olga", PASSWORD)
    assert user is not None
    assert user.role == "marketer"


def test_create_refuses_two_passwords_that_differ(db: str) -> None:
    result = runner.invoke(
        app,
        ["users", "create", "--username", "olga", "--role", "admin", "--db", db],
        input=f"{PASSWORD}\nsomething else entirely\n",
    )
    assert result.exit_code != 0
    assert authenticate(db, "olga", PASSWORD) is None


def test_create_reads_the_password_from_stdin_for_scripts(db: str) -> None:
    result = runner.invoke(
        app,
        [
            "users",
            "create",
            "--username",
            "ops",
            "--role",
            "admin",
            "--password-stdin",
            *("--db", db),
        ],
        input=f"{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert authenticate(db, "ops", PASSWORD) is not None


@pytest.mark.parametrize(
    ("args", "password"),
    [
        (["--username", "olga", "--role", "owner"], PASSWORD),
        (["--username", "olga", "--role", "analyst"], "short"),
        (["--username", "bad name", "--role", "analyst"], PASSWORD),
    ],
    ids=["unknown-role", "short-password", "bad-username"],
)
def test_create_refuses_a_bad_user(db: str, args: list[str], password: str) -> None:
    result = runner.invoke(
        app, ["users", "create", *args, "--password-stdin", "--db", db], input=password + "\n"
    )
    assert result.exit_code == 2
    assert authenticate(db, "olga", password) is None


def test_list_set_role_and_disable(db: str) -> None:
    for username, role in (("olga", "marketer"), ("ivan", "analyst")):
        args = ["--username", username, "--role", role, "--password-stdin", "--db", db]
        created = runner.invoke(app, ["users", "create", *args], input=PASSWORD + "\n")
        assert created.exit_code == 0, created.output

    listed = runner.invoke(app, ["users", "list", "--db", db])
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    body = lines[next(i for i, line in enumerate(lines) if "───" in line) + 1 :]
    rows = {line.split()[0]: line.split()[1] for line in body if line.strip()}
    assert rows == {"olga": "marketer", "ivan": "analyst"}
    assert "argon2" not in listed.stdout

    promoted = runner.invoke(app, ["users", "set-role", "ivan", "--role", "marketer", "--db", db])
    assert promoted.exit_code == 0, promoted.output
    disabled = runner.invoke(app, ["users", "disable", "olga", "--db", db])
    assert disabled.exit_code == 0, disabled.output
    assert authenticate(db, "olga", PASSWORD) is None
    ivan = authenticate(db, "ivan", PASSWORD)
    assert ivan is not None
    assert ivan.role == "marketer"
    assert runner.invoke(app, ["users", "disable", "nobody", "--db", db]).exit_code == 2
    assert (
        runner.invoke(app, ["users", "set-role", "nobody", "--role", "admin", "--db", db]).exit_code
        == 2
    )


def test_disabling_a_user_ends_their_sessions_on_the_server(db: str) -> None:
    for username in ("olga", "ivan"):
        args = ["--username", username, "--role", "marketer", "--password-stdin", "--db", db]
        assert runner.invoke(app, ["users", "create", *args], input=PASSWORD + "\n").exit_code == 0

    async def log_in_twice_and_once() -> tuple[str, str, str]:
        users = open_users(db)
        sessions = SqlSessions(users.engine)
        try:
            olga, ivan = await users.find("olga"), await users.find("ivan")
            assert olga is not None
            assert ivan is not None
            day = timedelta(hours=8)
            return (
                await sessions.start(olga.id, day),
                await sessions.start(olga.id, day),
                await sessions.start(ivan.id, day),
            )
        finally:
            await users.close()

    async def users_of(*session_ids: str) -> list[str | None]:
        sessions = SqlSessions(create_engine(db))
        try:
            return [await sessions.user_of(session_id) for session_id in session_ids]
        finally:
            await sessions.close()

    at_work, at_home, his = asyncio.run(log_in_twice_and_once())
    disabled = runner.invoke(app, ["users", "disable", "olga", "--db", db])
    assert disabled.exit_code == 0, disabled.output
    assert "2 sessions ended" in disabled.stdout
    ended = asyncio.run(users_of(at_work, at_home, his))
    assert ended[:2] == [None, None]
    assert ended[2] is not None, "ivan stays logged in"
