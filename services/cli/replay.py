"""``nudge replay``: a transactions CSV replayed as purchase events
(:mod:`services.tools.replay`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from services.cli.common import DbOption, console, errors, fail, refuse_memory_bus, settings

__all__ = ["replay"]


def replay(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="The transactions CSV to replay."
        ),
    ],
    *,
    embedded: Annotated[
        bool,
        typer.Option(help="Run the pipeline in this process, on SQLite (--db or NUDGE_DATA_DIR)."),
    ] = False,
    db: DbOption = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="Embedded only: run due timers day by day up to this moment."),
    ] = None,
    timezone: Annotated[
        str, typer.Option(help="Time zone of dates written without an offset.")
    ] = "UTC",
    currency: Annotated[
        str | None,
        typer.Option(help="Currency of the amounts (ISO 4217); default: the shop's."),
    ] = None,
    skip_bad: Annotated[
        bool, typer.Option(help="Replay the other orders when some rows are bad.")
    ] = False,
) -> None:
    """Replay a transactions CSV as purchase events (replaying it again changes nothing)."""
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from services.bootstrap import ConsumedElsewhere  # noqa: PLC0415
    from services.tools import replay as replaying  # noqa: PLC0415

    zone = _zone_option(timezone)
    moment = _moment_option(as_of, zone)
    found_settings = settings(database_url=db)
    if embedded:
        found_settings = found_settings.model_copy(update={"bus": "memory", "email": "folder"})
    elif as_of is not None:
        fail(
            "--as-of needs --embedded: on the production stack the segmenter fires timers "
            "on its own (system) clock, as time passes.",
            2,
        )
    elif db is not None:
        fail("--db needs --embedded: production replays through the bus.", 2)
    else:
        refuse_memory_bus(found_settings)

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=errors, transient=True) as bar:
        reading = bar.add_task("rows read", total=None)
        try:
            found, summary = replaying.read_file(
                file,
                timezone=zone,
                currency=(currency or found_settings.currency).upper(),
                skip_bad=skip_bad,
                on_row=lambda: bar.advance(reading),
            )
        except (replaying.ReplayRefused, ValueError) as exc:
            bar.stop()
            _print_bad_rows(getattr(exc, "bad_rows", []))
            fail(str(exc))
        publishing = bar.add_task("events published", total=len(found.events))
        try:
            done = asyncio.run(
                replaying.replay(
                    found_settings,
                    found,
                    summary,
                    lambda count: bar.advance(publishing, count),
                    embedded=embedded,
                    as_of=moment,
                )
            )
        except (replaying.ReplayRefused, ConsumedElsewhere) as exc:
            bar.stop()
            fail(str(exc))
    _print_bad_rows(done.bad_rows)
    table = Table(title="nudge replay", box=box.SIMPLE_HEAD)
    table.add_column("what")
    table.add_column("value", justify="right")
    for what, value in done.report(embedded=embedded):
        table.add_row(what, escape(str(value)))
    console.print(table)


def _moment_option(value: str | None, zone: tzinfo) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            "expected an ISO 8601 date or date and time, e.g. 2026-06-30 or 2026-06-30T12:00+03:00",
            param_hint="--as-of",
        ) from None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def _zone_option(name: str) -> tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise typer.BadParameter(
            f"unknown time zone {name!r}; e.g. UTC or Europe/Moscow", param_hint="--timezone"
        ) from None


def _print_bad_rows(bad_rows: Sequence[Any], shown: int = 50) -> None:
    for bad in bad_rows[:shown]:
        errors.print(str(bad), markup=False)
    if len(bad_rows) > shown:
        errors.print(f"... and {len(bad_rows) - shown} more bad rows")
