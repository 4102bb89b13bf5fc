"""``nudge dlq``: dead letters, records a service could not apply
(:mod:`services.tools.dlq`)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from services.cli.common import console, errors, fail, settings
from shared.ports.bus import Bus
from shared.settings import Settings

__all__ = ["app"]

app = typer.Typer(help="Dead letters: records a service could not apply.", no_args_is_help=True)

TopicOption = Annotated[
    str, typer.Option(help="The topic whose dead letters: events or segment-changes.")
]


def _dead_letter_bus() -> tuple[Settings, Bus]:
    """The settings, and the bus whose dead letters (see
    :func:`services.bootstrap.open_dead_letter_bus`)."""
    from services.bootstrap import open_dead_letter_bus  # noqa: PLC0415

    found = settings()
    try:
        return found, open_dead_letter_bus(found)
    except ValueError as exc:
        fail(str(exc), 2)


def _position(value: str) -> tuple[int, int]:
    partition, separator, offset = value.partition(":")
    if not (separator and partition.isdigit() and offset.isdigit()):
        raise typer.BadParameter(
            f"{value!r}: expected PARTITION:OFFSET, as `nudge dlq list` shows them (e.g. 0:17)"
        )
    return int(partition), int(offset)


@app.command("list")
def dlq_list(
    *,
    topic: TopicOption = "events",
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 50,
    everything: Annotated[
        bool, typer.Option("--all", help="Replayed dead letters too, not only waiting ones.")
    ] = False,
) -> None:
    """Dead letters waiting for a replay: where they failed and why (keys masked)."""
    from services.tools.dlq import list_dead_letters, masked_key  # noqa: PLC0415

    found, bus = _dead_letter_bus()

    async def main() -> Any:
        try:
            return await list_dead_letters(bus, found, topic, limit=limit, everything=everything)
        finally:
            await bus.close()

    page = asyncio.run(main())
    table = Table(
        title=f"dead letters of {found.topic(topic)}: {page.waiting} waiting, "
        f"{page.total - page.waiting} replayed",
        box=box.SIMPLE_HEAD,
    )
    for column in ("partition:offset", "key", "error", "failed in", "failed at (UTC)"):
        table.add_column(column, overflow="fold")
    if everything:
        table.add_column("replayed at (UTC)")
    for letter in page.shown:
        source = f"{letter.source_topic} {letter.source_partition}:{letter.source_offset}"
        row = [
            f"{letter.record.partition}:{letter.record.offset}",
            escape(masked_key(letter.record.key)),
            escape(letter.error),
            escape(source),
            f"{letter.failed_at:%Y-%m-%d %H:%M:%S}" if letter.failed_at else "",
        ]
        if everything:
            row.append(f"{letter.replayed_at:%Y-%m-%d %H:%M:%S}" if letter.replayed_at else "")
        table.add_row(*row)
    console.print(table)
    hidden = (page.total if everything else page.waiting) - len(page.shown)
    if hidden > 0:
        console.print(f"... and {hidden} more (--limit)")


@app.command("replay")
def dlq_replay(
    *,
    topic: TopicOption = "events",
    offset: Annotated[
        list[str] | None,
        typer.Option(help="A dead letter to replay, as PARTITION:OFFSET; repeatable."),
    ] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Every dead letter not replayed yet.")
    ] = False,
) -> None:
    """Publish dead letters to the topic they failed in again (each one once)."""
    from services.tools.dlq import replay_dead_letters  # noqa: PLC0415

    if everything == bool(offset):
        errors.print("Name the dead letters with --offset PARTITION:OFFSET, or pass --all.")
        raise typer.Exit(2)
    chosen = None if everything else [_position(value) for value in offset or ()]
    found, bus = _dead_letter_bus()

    async def main() -> Any:
        try:
            return await replay_dead_letters(bus, found, topic, chosen=chosen)
        finally:
            await bus.close()

    outcome = asyncio.run(main())
    for letter in outcome.replayed:
        console.print(
            f"replayed {letter.record.partition}:{letter.record.offset} to {letter.source_topic}",
            markup=False,
        )
    for partition, position in outcome.already:
        errors.print(f"{partition}:{position} was replayed before: not sent again")
    for partition, position in outcome.missing:
        errors.print(f"{partition}:{position} holds no dead letter", style="red")
    console.print(f"{len(outcome.replayed)} dead letters replayed")
    if outcome.missing:
        raise typer.Exit(1)
