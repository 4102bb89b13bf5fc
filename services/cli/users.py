"""``nudge users`` (console users) and ``nudge console`` (the console alone).

Registered on the ``nudge`` command in :mod:`services.cli`. Imports stay inside the
commands, so that ``nudge --help`` stays quick.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.logging import configure_logging
from shared.ports.users import ROLES
from shared.settings import Settings

if TYPE_CHECKING:
    from services.bootstrap import ConsoleAccounts
    from shared.adapters.store.users import SqlUsers
    from shared.ports.users import ConsoleUser, Role

__all__ = ["console_command", "users_app"]

users_app = typer.Typer(help="Console users: marketers, analysts, admins.", no_args_is_help=True)
out = Console()
errors = Console(stderr=True)

DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL; default from NUDGE_DATABASE_URL.")
]
ROLE_HELP = f"{', '.join(ROLES)}: analysts read, marketers also edit, admins also manage users."


def _settings(**overrides: Any) -> Settings:
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _database(db: str | None) -> str:
    """The URL of ``db`` (default from settings); SQLite is migrated first."""
    from shared.adapters.store.migrate import upgrade  # noqa: PLC0415

    url = _settings(database_url=db).db_url
    if url.startswith("sqlite"):
        upgrade(url)
    return url


def _user_store(db: str | None) -> SqlUsers:
    """The users in ``db`` (default from settings); SQLite is migrated first."""
    from shared.adapters.store.users import open_users  # noqa: PLC0415

    return open_users(_database(db))


def _accounts(db: str | None) -> ConsoleAccounts:
    """The users in ``db`` and their sessions, on one engine, as the console wires them."""
    from services.bootstrap import console_accounts  # noqa: PLC0415
    from shared.adapters.store.engine import create_engine  # noqa: PLC0415

    return console_accounts(create_engine(_database(db)))


def _known_role(value: str) -> str:
    if value not in ROLES:
        raise typer.BadParameter(f"unknown role {value}; one of {', '.join(ROLES)}")
    return value


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_app.command("create")
def users_create(
    *,
    username: Annotated[str, typer.Option(help="The login name (any case; kept lower-case).")],
    role: Annotated[str, typer.Option(callback=_known_role, help=ROLE_HELP)],
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
    ] = False,
    db: DbOption = None,
) -> None:
    """Create a console user; the password is asked twice (or read from stdin)."""
    password = _read_password(password_stdin)
    users = _user_store(db)

    async def main() -> ConsoleUser:
        try:
            return await users.create(username, password, cast("Role", role))
        finally:
            await users.close()

    try:
        user = asyncio.run(main())
    except ValueError as exc:
        errors.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from None
    out.print(f"console user {escape(user.username)} ({user.role}) created")


@users_app.command("list")
def users_list(*, db: DbOption = None) -> None:
    """Every console user, disabled ones too (never a password)."""
    users = _user_store(db)

    async def main() -> Sequence[ConsoleUser]:
        try:
            return await users.list()
        finally:
            await users.close()

    table = Table(title="Console users", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("username", overflow="fold")
    table.add_column("role", no_wrap=True)
    table.add_column("created (UTC)", min_width=10)
    table.add_column("disabled (UTC)", min_width=10)
    for user in asyncio.run(main()):
        table.add_row(
            escape(user.username),
            user.role,
            f"{user.created_at:%Y-%m-%d %H:%M}",
            f"{user.disabled_at:%Y-%m-%d %H:%M}" if user.disabled_at else "",
        )
    out.print(table)


@users_app.command("set-role")
def users_set_role(
    username: Annotated[str, typer.Argument(help="The user's login name.")],
    *,
    role: Annotated[str, typer.Option(callback=_known_role, help=ROLE_HELP)],
    db: DbOption = None,
) -> None:
    """Give a console user another role."""
    users = _user_store(db)

    async def main() -> ConsoleUser | None:
        try:
            return await users.set_role(username, cast("Role", role))
        finally:
            await users.close()

    user = asyncio.run(main())
    if user is None:
        errors.print(f"no console user {username}", style="red", markup=False)
        raise typer.Exit(1)
    out.print(f"{escape(user.username)} is now {user.role}")


@users_app.command("disable")
def users_disable(
    username: Annotated[str, typer.Argument(help="The user's login name.")],
    *,
    db: DbOption = None,
) -> None:
    """Disable a console user for good: they can no longer log in, and every session of
    theirs ends at once, on the server."""
    from services.console.security import disable_user  # noqa: PLC0415

    accounts = _accounts(db)

    async def main() -> int | None:
        try:
            return await disable_user(accounts.users, accounts.sessions, username)
        finally:
            await accounts.close()

    ended = asyncio.run(main())
    if ended is None:
        errors.print(f"no console user {username}", style="red", markup=False)
        raise typer.Exit(1)
    out.print(
        f"console user {username} is disabled; {ended} session{'' if ended == 1 else 's'} ended",
        markup=False,
    )


def console_command(
    *,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """The marketer's console alone (settings from NUDGE_* variables)."""
    settings = _settings(http_host=host, http_port=port)
    asyncio.run(serve_console(settings))


async def serve_console(settings: Settings) -> None:
    """Serve the console alone until interrupted; SQLite is migrated first."""
    import uvicorn  # noqa: PLC0415

    from services.console.wiring import build_console  # noqa: PLC0415
    from shared.adapters.clock import SystemClock  # noqa: PLC0415
    from shared.adapters.store.api_keys import SqlApiKeys  # noqa: PLC0415
    from shared.adapters.store.engine import create_engine  # noqa: PLC0415
    from shared.adapters.store.migrate import upgrade_async  # noqa: PLC0415

    if settings.db_url.startswith("sqlite"):
        await upgrade_async(settings.db_url)
    engine = create_engine(settings.db_url)
    app = build_console(settings, engine, SystemClock(), SqlApiKeys(engine))
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            log_level="warning",
            proxy_headers=False,  # NUDGE_TRUSTED_PROXIES is the only rule (operations.md)
        )
    )
    out.print(f"nudge console on http://{settings.http_host}:{settings.http_port}")
    try:
        await server.serve()
    finally:
        await engine.dispose()
