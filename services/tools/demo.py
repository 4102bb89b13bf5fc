"""``nudge demo``: the embedded pipeline on synthetic buyers over simulated days.

Besides the win-back campaign every shop has, the demo switches on two ready-made
campaigns with a holdout (second order after the first, pre-churn rescue) and three
ready-made programmes (welcome, second order, win-back; their messages per step are in
the summary), scores
the base at the end (RFM, predictions, CLV) and makes a console user, so that
``NUDGE_DATA_DIR=<out> nudge serve --embedded`` shows a populated console.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import groupby
from pathlib import Path

from rich.progress import Progress

from services.bootstrap import bootstrap, simulated_clock
from services.segmenter.snapshots import record_segment_sizes
from services.tools.embedded import Pipeline
from shared.codec import decode_change
from shared.domain.campaigns import BUILTIN_CAMPAIGNS
from shared.domain.programmes import BUILTIN_PROGRAMMES, split_step_campaign_key
from shared.domain.segments import MembershipChange
from shared.ports.definitions import Definitions
from shared.settings import Settings
from shared.synthetic import synthetic_events

__all__ = ["DEMO_CAMPAIGNS", "DEMO_PROGRAMMES", "DEMO_START", "DemoSummary", "run_demo"]

DEMO_START = datetime(2026, 1, 5, tzinfo=UTC)
DAYTIME_TICKS = (9, 13, 18)
"""Hours (UTC) of each simulated day at which the pipeline runs again after the night's
events: the time scheduled sends wait for (the end of quiet hours, a buyer's hour)."""
DEMO_CAMPAIGNS = ("second-order", "pre-churn-rescue")
"""Ready-made campaigns the demo switches on, beside the win-back every shop has."""
DEMO_PROGRAMMES = ("welcome", "second-order", "win-back")
"""Ready-made programmes the demo switches on, as a shop would (docs/programmes.md)."""


@dataclass
class DemoSummary:
    customers: int
    days: int
    events: int = 0
    segment_entries: Counter[str] = field(default_factory=Counter)
    messages: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(campaign, channel, status) to count."""
    out: Path = Path()
    console_user: str = ""
    console_password: str = ""
    """A console login made for the demo's database (printed once, never stored)."""
    customer_equity: float = 0.0
    programme_steps: Counter[tuple[str, int, str]] = field(default_factory=Counter)
    """(programme, step number, step id) to the messages that step sent."""

    @property
    def held_out(self) -> int:
        """Messages not sent because the buyer is in the campaign's holdout."""
        return sum(n for (_c, _ch, status), n in self.messages.items() if status == "holdout")


def _fresh_folder(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("nudge.db", "nudge.db-wal", "nudge.db-shm", "demo.db"):
        (out / stale).unlink(missing_ok=True)
    for eml in (out / "email").glob("*.eml"):
        eml.unlink()


async def run_demo(
    customers: int,
    days: int,
    seed: int,
    out: Path,
    *,
    progress: bool = True,
    start: datetime = DEMO_START,
) -> DemoSummary:
    """Simulate ``days`` days from ``start`` (give ``start`` as ``days`` before today for
    a console whose data ends now)."""
    await asyncio.to_thread(_fresh_folder, out)
    # The database nudge serve --embedded opens with NUDGE_DATA_DIR=<out>.
    settings = Settings(data_dir=out, database_url=f"sqlite+aiosqlite:///{out / 'nudge.db'}")
    clock = simulated_clock(start)
    # The embedded bus, durable in nudge.db, as `nudge serve --embedded` has it.
    runtime = await bootstrap(settings, clock=clock, mail_folder=out / "email")
    summary = DemoSummary(customers=customers, days=days, out=out)
    events = list(synthetic_events(customers, days, seed, start))
    by_day = {
        day: list(group)
        for day, group in groupby(
            events, key=lambda e: (datetime.fromisoformat(e["occurred_at"]) - start).days
        )
    }
    try:
        await _switch_on(runtime.definitions, DEMO_CAMPAIGNS)
        await _switch_on_programmes(runtime.definitions, DEMO_PROGRAMMES)
        sizes = runtime.database.sizes
        async with Pipeline(runtime) as pipeline:
            with Progress(disable=not progress, transient=True) as bar:
                task = bar.add_task("simulating days", total=days)
                for day in range(days):
                    clock.set(start + timedelta(days=day + 1))
                    todays = by_day.get(day, [])
                    if todays:
                        await pipeline.post_events(todays)
                        summary.events += len(todays)
                    await pipeline.settle()
                    for hour in DAYTIME_TICKS:  # sends held for quiet hours go out by day
                        clock.set(start + timedelta(days=day + 1, hours=hour))
                        await pipeline.settle()
                    await record_segment_sizes(sizes, clock)  # the console's size charts
                    bar.advance(task)
            scored = await pipeline.segmenter.score()
            summary.customer_equity = scored.customer_equity if scored else 0.0
            await pipeline.settle()
        summary.console_user = "marketer"
        summary.console_password = secrets.token_urlsafe(12)
        await runtime.accounts.users.create(
            summary.console_user, summary.console_password, "marketer"
        )
        changes = [
            decode_change(r.value)
            async for r in runtime.bus.read(settings.topic("segment-changes"))
        ]
        summary.segment_entries.update(
            c.segment for c in changes if isinstance(c, MembershipChange) and c.kind == "entered"
        )
        async with runtime.store.unit_of_work() as uow:
            for message in await uow.messages.all():
                summary.messages[(message.campaign, message.channel, message.status)] += 1
                step = _programme_step(message.campaign)
                if step is not None and message.status == "sent":
                    summary.programme_steps[step] += 1
    finally:
        await runtime.close()
    return summary


def _programme_step(campaign: str) -> tuple[str, int, str] | None:
    """A ready-made programme's step message as (programme, step number, step id)."""
    parts = split_step_campaign_key(campaign)
    if parts is None:
        return None
    programme = next((p for p in BUILTIN_PROGRAMMES if p.key == parts[0]), None)
    if programme is None or parts[1] not in programme.steps:
        return None
    return parts[0], list(programme.steps).index(parts[1]) + 1, parts[1]


async def _switch_on_programmes(definitions: Definitions, keys: Sequence[str]) -> None:
    """Store the ready-made programmes ``keys`` as active, as a shop switching them on."""
    for programme in BUILTIN_PROGRAMMES:
        if programme.key in keys:
            await definitions.programmes.put(
                programme.key,
                definition={**programme.document, "status": "active"},
                status="active",
                expected_version=None,
            )


async def _switch_on(definitions: Definitions, keys: Sequence[str]) -> None:
    """Store the ready-made campaigns ``keys`` as active, as a marketer would."""
    for campaign in BUILTIN_CAMPAIGNS:
        if campaign.key in keys:
            await definitions.campaigns.put(
                campaign.key,
                definition=campaign.to_dict(),
                status="active",
                expected_version=None,
            )
