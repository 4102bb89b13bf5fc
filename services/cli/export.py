"""``nudge export``: what nudge knows, as files (:mod:`services.tools.export`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from services.cli.common import DbOption, errors, with_database

__all__ = ["app"]

app = typer.Typer(help="What nudge knows, as files.", no_args_is_help=True)


@app.command("profiles")
def export_profiles(
    *,
    db: DbOption = None,
    out: Annotated[
        Path | None, typer.Option(help="Write to this file instead of standard output.")
    ] = None,
) -> None:
    """Every buyer as one JSON line (identifiers masked), in id order."""
    from services.tools.export import export_profiles as export  # noqa: PLC0415

    def main(write: Callable[[bytes], object]) -> int:
        return with_database(db, lambda database: export(database.exports, write))

    if out is None:
        count = main(lambda lines: typer.echo(lines, nl=False))
    else:
        with out.open("wb") as file:
            count = main(file.write)
    errors.print(f"{count} buyers exported" + (f" to {out}" if out else ""), markup=False)
