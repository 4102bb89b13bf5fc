"""``nudge demo``: the whole pipeline embedded on synthetic buyers (:mod:`services.tools.demo`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from services.cli.common import console
from shared.logging import configure_logging

__all__ = ["demo"]


def demo(
    *,
    customers: Annotated[int, typer.Option(min=1, help="Synthetic buyers.")] = 200,
    days: Annotated[int, typer.Option(min=1, help="Simulated days.")] = 60,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed, the same shop.")] = 1,
    out: Annotated[Path, typer.Option(help="Where sent messages and the demo database go.")] = Path(
        "demo-out"
    ),
) -> None:
    """Run the whole pipeline embedded on synthetic buyers over simulated days."""
    from services.tools.demo import run_demo  # noqa: PLC0415 - keeps `nudge --help` fast

    configure_logging("WARNING")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=days + 1)  # the simulated days end yesterday
    summary = asyncio.run(run_demo(customers, days, seed, out, start=start))
    table = Table(title=f"nudge demo: {customers} buyers over {days} simulated days")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("events accepted", str(summary.events))
    for segment, count in sorted(summary.segment_entries.items()):
        table.add_row(f"entered segment {segment}", str(count))
    for (campaign, channel, status), count in sorted(summary.messages.items()):
        table.add_row(f"messages {campaign} / {channel} / {status}", str(count))
    for (programme, number, step), count in sorted(summary.programme_steps.items()):
        table.add_row(f"programme {programme} step {number} ({step}) sent", str(count))
    table.add_row("messages held out (holdout arms)", str(summary.held_out))
    table.add_row("customer equity (CLV of the base)", f"{summary.customer_equity:,.2f}")
    console.print(table)
    console.print(f"Sent messages are under {summary.out / 'email'} (open the .eml files).")
    console.print(
        f"See it in the console: NUDGE_DATA_DIR={summary.out} nudge serve --embedded, then "
        f"log in at http://127.0.0.1:8000/login as {summary.console_user} / "
        f"{summary.console_password}"
    )
