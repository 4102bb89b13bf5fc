"""``nudge segments``: the segmenter's commands for an operator.

``nudge segments recompute KEY`` evaluates the whole base against one segment's
current rule again, batch by batch, with a progress bar. It writes its ``entered`` /
``exited`` changes to the outbox like the running segmenter does, and the running
segmenter's relay publishes them; it needs the database only, no broker. The lead
registers :data:`app` in ``services/cli/`` (``app.add_typer(segments_app,
name="segments")``).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from shared.logging import configure_logging
from shared.ports.definitions import Recompute
from shared.settings import Settings

__all__ = ["app", "recompute_segment"]

app = typer.Typer(
    help="Segments: evaluate the base against a segment's rule.", no_args_is_help=True
)
console = Console()
errors = Console(stderr=True)


@app.callback()
def segments() -> None:
    """Segments: evaluate the base against a segment's rule."""


async def recompute_segment(
    settings: Settings, key: str, *, batch: int = 1000, progress: Progress | None = None
) -> int:
    """Evaluate every buyer against segment ``key`` from the start; return how many were.

    Raises :class:`KeyError` for a segment that is neither built in, stored nor archived.
    """
    from services.segmenter.handlers import Segmenter  # noqa: PLC0415 - keeps --help fast
    from shared.adapters.clock import SystemClock  # noqa: PLC0415
    from shared.adapters.store.definitions import SqlDefinitions  # noqa: PLC0415
    from shared.adapters.store.engine import open_store  # noqa: PLC0415
    from shared.adapters.store.migrate import upgrade_async  # noqa: PLC0415
    from shared.domain.segments import BUILTIN_SEGMENTS  # noqa: PLC0415

    if settings.db_url.startswith("sqlite"):
        await upgrade_async(settings.db_url)
    store = open_store(settings.db_url)
    clock = SystemClock()
    definitions = SqlDefinitions(store.engine, clock=clock)
    segmenter = Segmenter(
        store=store,
        clock=clock,
        segments=BUILTIN_SEGMENTS,
        changes_topic=settings.topic("segment-changes"),
        definitions=definitions,
        recompute_size=batch,
    )
    try:
        total = await definitions.count_profiles()
        state: Recompute | None = await segmenter.restart_recompute(key)
        task = progress.add_task(key, total=total) if progress is not None else None
        while state is not None and state.finished_at is None:
            state = await segmenter.recompute_batch(key, state)
            if progress is not None and task is not None and state is not None:
                progress.update(task, completed=state.evaluated, total=max(total, state.evaluated))
        if state is None:
            raise RuntimeError(f"{key}: the rule changed while recomputing; run it again")
        return state.evaluated
    finally:
        await store.close()


@app.command("recompute")
def recompute(
    key: Annotated[str, typer.Argument(metavar="KEY", help="The segment's key.")],
    *,
    db: Annotated[
        str | None, typer.Option("--db", help="Database URL; default from NUDGE_DATABASE_URL.")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Buyers per transaction.")] = 1000,
) -> None:
    """Evaluate the whole base against one segment's rule again, from the start."""
    settings = Settings() if db is None else Settings(database_url=db)
    configure_logging("WARNING", settings.log_format)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        try:
            done = asyncio.run(recompute_segment(settings, key, batch=batch, progress=progress))
        except KeyError:
            errors.print(f"no segment {key}", style="red", markup=False)
            raise typer.Exit(1) from None
    console.print(f"{key}: {done} buyers evaluated", markup=False)
