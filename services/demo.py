"""``nudge demo``: the embedded pipeline on synthetic buyers over simulated days."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import groupby
from pathlib import Path

from rich.progress import Progress

from services.bootstrap import bootstrap
from services.embedded import Pipeline
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.clock import SimulatedClock
from shared.adapters.providers.email import EmlFolderProvider
from shared.codec import decode_change
from shared.domain.segments import MembershipChange
from shared.settings import Settings
from shared.synthetic import synthetic_events

__all__ = ["DEMO_START", "DemoSummary", "run_demo"]

DEMO_START = datetime(2026, 1, 5, tzinfo=UTC)


@dataclass
class DemoSummary:
    customers: int
    days: int
    events: int = 0
    segment_entries: Counter[str] = field(default_factory=Counter)
    messages: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(campaign, channel, status) to count."""
    out: Path = Path()


def _fresh_folder(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("demo.db", "demo.db-wal", "demo.db-shm"):
        (out / stale).unlink(missing_ok=True)
    for eml in (out / "email").glob("*.eml"):
        eml.unlink()


async def run_demo(
    customers: int, days: int, seed: int, out: Path, *, progress: bool = True
) -> DemoSummary:
    await asyncio.to_thread(_fresh_folder, out)
    settings = Settings(data_dir=out, database_url=f"sqlite+aiosqlite:///{out / 'demo.db'}")
    clock = SimulatedClock(DEMO_START)
    bus = MemoryBus(partitions=settings.kafka_partitions)
    email = EmlFolderProvider(out / "email", settings.smtp_sender)
    runtime = await bootstrap(settings, clock=clock, bus=bus, email=email)
    summary = DemoSummary(customers=customers, days=days, out=out)
    events = list(synthetic_events(customers, days, seed, DEMO_START))
    by_day = {
        day: list(group)
        for day, group in groupby(
            events, key=lambda e: (datetime.fromisoformat(e["occurred_at"]) - DEMO_START).days
        )
    }
    try:
        async with Pipeline(runtime) as pipeline:
            with Progress(disable=not progress, transient=True) as bar:
                task = bar.add_task("simulating days", total=days)
                for day in range(days):
                    clock.set(DEMO_START + timedelta(days=day + 1))
                    todays = by_day.get(day, [])
                    if todays:
                        await pipeline.post_events(todays)
                        summary.events += len(todays)
                    await pipeline.settle()
                    bar.advance(task)
        changes = [decode_change(r.value) for r in bus.records(settings.topic("segment-changes"))]
        summary.segment_entries.update(
            c.segment for c in changes if isinstance(c, MembershipChange) and c.kind == "entered"
        )
        async with runtime.store.unit_of_work() as uow:
            for message in await uow.messages.all():
                summary.messages[(message.campaign, message.channel, message.status)] += 1
    finally:
        await runtime.close()
    return summary
