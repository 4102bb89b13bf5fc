"""``nudge score``: the whole base scored now, with a progress bar per stage."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from services.cli.common import DbOption, console, run, settings
from shared.settings import Settings

__all__ = ["score"]


def score(
    *,
    as_of: Annotated[
        str | None,
        typer.Option(
            help="Score the base as it stood at this moment: only orders placed before it "
            "count, and it is the moment scored at. ISO 8601, e.g. 2026-06-30 (the end of "
            "that day) or 2026-06-30T12:00+03:00; UTC where no offset is given."
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Score the whole base now (or --as-of a moment): RFM, purchase and spend predictions, CLV.

    The segmenter does it on its own every NUDGE_SCORING_INTERVAL_HOURS; the segment
    changes this writes are published by the running segmenter's outbox relay.
    """
    from services.tools.validation import moment_option  # noqa: PLC0415

    moment = None
    if as_of is not None:
        try:
            moment = moment_option(as_of)
        except ValueError:
            raise typer.BadParameter(
                "expected an ISO 8601 date or date and time, e.g. 2026-06-30 or "
                "2026-06-30T12:00+03:00",
                param_hint="--as-of",
            ) from None
    found = settings(database_url=db)
    run(lambda: _score(found, moment))


async def _score(found: Settings, as_of: datetime | None) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn  # noqa: PLC0415

    from services.bootstrap import bootstrap  # noqa: PLC0415
    from services.segmenter.service import SegmenterService  # noqa: PLC0415

    runtime = await bootstrap(found, create_topics=False)
    try:
        service = SegmenterService(runtime)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console) as progress:
            tasks: dict[str, Any] = {}

            def advance(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = progress.add_task(f"{stage:>5} buyers", total=total)
                progress.update(tasks[stage], completed=done, total=total)

            scored = await service.score(advance, as_of=as_of)
    finally:
        await runtime.close()
    if scored is None:
        console.print("[yellow]another segmenter is scoring the base now; nothing done[/yellow]")
        raise typer.Exit(1)
    table = Table(title="base scored", box=box.SIMPLE)
    table.add_column("measure")
    table.add_column("value", justify="right")
    if scored.scored_at is not None:
        table.add_row("scored as of", f"{scored.scored_at:%Y-%m-%d %H:%M:%S %Z}")
    table.add_row("buyers", f"{scored.buyers:,}")
    table.add_row("with orders (scored)", f"{scored.scored:,}")
    table.add_row("scores changed", f"{scored.changed:,}")
    table.add_row("customer equity", f"{scored.customer_equity:,.2f}")
    models = scored.models
    table.add_row("purchase model", models.purchase_model if models else "none (no orders)")
    table.add_row("spend model", models.spend_model if models else "none (no orders)")
    table.add_row("seconds", f"{scored.seconds:.1f}")
    console.print(table)
    for note in scored.notes:
        console.print(f"note: {escape(note)}")
