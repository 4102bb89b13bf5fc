"""``nudge db``: the database schema."""

from __future__ import annotations

import typer

from services.cli.common import DbOption, console, settings

__all__ = ["app"]

app = typer.Typer(help="The database schema.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade(*, db: DbOption = None) -> None:
    """Bring the database schema to the newest migration."""
    from services.bootstrap import upgrade_database  # noqa: PLC0415

    upgrade_database(settings(database_url=db).db_url)
    console.print("database schema is up to date")
