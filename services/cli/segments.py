"""``nudge segments``: the segmenter's commands for an operator
(:mod:`services.tools.recompute`)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from services.cli.common import DbOption, console, fail, settings
from shared.logging import configure_logging

__all__ = ["app"]

app = typer.Typer(
    help="Segments: evaluate the base against a segment's rule.", no_args_is_help=True
)


@app.callback()
def segments() -> None:
    """Segments: evaluate the base against a segment's rule."""


@app.command("recompute")
def recompute(
    key: Annotated[str, typer.Argument(metavar="KEY", help="The segment's key.")],
    *,
    db: DbOption = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Buyers per transaction.")] = 1000,
) -> None:
    """Evaluate the whole base against one segment's rule again, from the start."""
    from services.tools.recompute import (  # noqa: PLC0415 - keeps --help fast
        RecomputeRestarted,
        recompute_segment,
    )

    found = settings(database_url=db)
    configure_logging("WARNING", found.log_format)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bar:
        tasks: list[TaskID] = []

        def advance(evaluated: int, total: int) -> None:
            if not tasks:
                tasks.append(bar.add_task(key, total=total))
            bar.update(tasks[0], completed=evaluated, total=total)

        try:
            done = asyncio.run(recompute_segment(found, key, batch=batch, progress=advance))
        except KeyError:
            fail(
                f"no segment {key}: name a built-in or stored one (GET /v1/segments lists them)", 2
            )
        except RecomputeRestarted as exc:
            fail(str(exc))
    console.print(f"{key}: {done} buyers evaluated", markup=False)
