"""``nudge export``: what nudge knows, as files (:mod:`services.tools.export`).

``--unmasked`` writes the contact identifiers as they are. Only someone who could read
them anyway may ask: the holder of an API key with the ``admin`` scope (``NUDGE_API_KEY``),
or, on SQLite, the owner of the database file (whoever can read that file reads every
identifier in it). Each unmasked export is logged (who, how many buyers, where to),
never with an identifier.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from services.cli.common import DbOption, errors, fail, settings, with_database
from shared.logging import get_logger

if TYPE_CHECKING:
    from services.bootstrap import Database

__all__ = ["app"]

app = typer.Typer(help="What nudge knows, as files.", no_args_is_help=True)

log = get_logger(__name__)


class _NotAllowed(Exception):
    pass


def _file_owner(url: str) -> int | None:
    """The user owning the SQLite database file at ``url``; ``None`` for PostgreSQL."""
    from services.bootstrap import sqlite_path  # noqa: PLC0415

    try:
        return sqlite_path(url).stat().st_uid
    except ValueError:
        return None


async def _unmasking_allowed(database: Database, owner: int | None, key: str | None) -> str:
    """Who asks for identifiers unmasked, if they may: an admin key's holder, else the
    ``owner`` of the SQLite database file; :class:`_NotAllowed` for anyone else."""
    if key:
        found = await database.api_keys.authenticate(key)
        if found is not None and found.allows("admin"):
            return f"admin key {found.id}"
        raise _NotAllowed("NUDGE_API_KEY is not an active key with the admin scope")
    if owner is not None and owner == os.geteuid():
        return f"owner of the database file (uid {owner})"
    raise _NotAllowed(
        "--unmasked needs an API key with the admin scope in NUDGE_API_KEY, or, on SQLite, "
        "the owner of the database file"
    )


def _private_file(path: Path) -> int:
    """``path`` opened for writing, emptied, readable by its owner only (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return fd


@app.command("profiles")
def export_profiles(
    *,
    db: DbOption = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write to this file (created 0600) instead of standard output."),
    ] = None,
    form: Annotated[
        str,
        typer.Option("--format", help="jsonl (one JSON object a line), csv or parquet."),
    ] = "jsonl",
    unmasked: Annotated[
        bool,
        typer.Option(
            help="Contact identifiers as they are: an admin key (NUDGE_API_KEY) or, on "
            "SQLite, the database file's owner only; logged."
        ),
    ] = False,
    key: Annotated[
        str | None,
        typer.Option(envvar="NUDGE_API_KEY", hidden=True, help="An admin API key, for --unmasked."),
    ] = None,
) -> None:
    """Every buyer, in id order: the shop's customer id as it is, contacts masked."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn  # noqa: PLC0415

    from services.tools.export import FORMATS  # noqa: PLC0415
    from services.tools.export import export_profiles as export  # noqa: PLC0415

    if form not in FORMATS:
        fail(f"--format: one of {', '.join(FORMATS)}, not {form!r}", 2)
    if form == "parquet" and out is None:
        fail("--format parquet writes a file: give it with --out FILE", 2)
    url = settings(database_url=db).db_url
    columns = (TextColumn("buyers exported"), BarColumn(), MofNCompleteColumn())

    who = None
    if unmasked:
        try:
            owner = _file_owner(url)
            who = with_database(db, lambda database: _unmasking_allowed(database, owner, key))
        except _NotAllowed as exc:
            fail(str(exc), 2)

    def main(write: Callable[[bytes], object]) -> int:
        async def run(database: Database) -> int:
            total = await database.definitions.count_profiles()
            with Progress(*columns, console=errors, transient=True) as bar:
                task = bar.add_task("export", total=total)
                count = await export(
                    database.exports,
                    write,
                    unmasked=unmasked,
                    form=form,
                    on_batch=lambda n: bar.advance(task, n),
                )
            return count

        return with_database(db, run)

    if out is None:
        count = main(lambda chunk: typer.echo(chunk, nl=False))
    else:
        with os.fdopen(_private_file(out), "wb") as file:
            count = main(file.write)
    if who is not None:
        log.warning(
            "profiles exported unmasked", by=who, buyers=count, to=str(out or "standard output")
        )
    errors.print(f"{count} buyers exported" + (f" to {out}" if out else ""), markup=False)
