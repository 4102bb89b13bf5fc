"""``nudge users``: console users, their roles, and disabling them for good.

Imports stay inside the commands, so that ``nudge --help`` stays quick.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from services.cli.common import DbOption, console, fail, with_database
from shared.ports.users import ROLES

if TYPE_CHECKING:
    from shared.ports.users import Role

__all__ = ["app"]

app = typer.Typer(help="Console users: marketers, analysts, admins.", no_args_is_help=True)

ROLE_HELP = f"{', '.join(ROLES)}: analysts read, marketers also edit, admins also manage users."


def _known_role(value: str) -> str:
    if value not in ROLES:
        raise typer.BadParameter(f"unknown role {value}; one of {', '.join(ROLES)}")
    return value


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@app.command("create")
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
    try:
        user = with_database(
            db,
            lambda database: database.accounts.users.create(username, password, cast("Role", role)),
        )
    except ValueError as exc:
        fail(str(exc), 2)
    console.print(f"console user {escape(user.username)} ({user.role}) created")


@app.command("list")
def users_list(*, db: DbOption = None) -> None:
    """Every console user, disabled ones too (never a password)."""
    table = Table(title="Console users", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("username", overflow="fold")
    table.add_column("role", no_wrap=True)
    table.add_column("created (UTC)", min_width=10)
    table.add_column("disabled (UTC)", min_width=10)
    for user in with_database(db, lambda database: database.accounts.users.list()):
        table.add_row(
            escape(user.username),
            user.role,
            f"{user.created_at:%Y-%m-%d %H:%M}",
            f"{user.disabled_at:%Y-%m-%d %H:%M}" if user.disabled_at else "",
        )
    console.print(table)


@app.command("set-role")
def users_set_role(
    username: Annotated[str, typer.Argument(help="The user's login name.")],
    *,
    role: Annotated[str, typer.Option(callback=_known_role, help=ROLE_HELP)],
    db: DbOption = None,
) -> None:
    """Give a console user another role."""
    user = with_database(
        db, lambda database: database.accounts.users.set_role(username, cast("Role", role))
    )
    if user is None:
        fail(f"no console user {username}: `nudge users list` shows them", 2)
    console.print(f"{escape(user.username)} is now {user.role}")


@app.command("disable")
def users_disable(
    username: Annotated[str, typer.Argument(help="The user's login name.")],
    *,
    db: DbOption = None,
) -> None:
    """Disable a console user for good: they can no longer log in, and every session of
    theirs ends at once, on the server."""
    from services.console.security import disable_user  # noqa: PLC0415

    ended = with_database(
        db,
        lambda database: disable_user(
            database.accounts.users, database.accounts.sessions, username
        ),
    )
    if ended is None:
        fail(f"no console user {username}: `nudge users list` shows them", 2)
    console.print(
        f"console user {username} is disabled; {ended} session{'' if ended == 1 else 's'} ended",
        markup=False,
    )
