"""``nudge replay`` of a transactions file on Kafka and PostgreSQL: purchases applied per second.

The file: ``--replay-events`` orders (100,000 by default: ``replay.100k``) of the
synthetic buyers of ``shared/synthetic.py`` (90 days), one CSV row per order with
``customer_id``, ``order_id``, ``date``, ``amount`` and ``category``, written by the
benchmark to a temporary folder. The run has a PostgreSQL database (migrated) and
topics of its own; ``nudge segmenter`` runs in a process of its own (built-in
segments, its system clock, the nightly scoring off) and has joined its group before
``nudge replay FILE`` (production mode: ingest's publisher, the event ids claimed in
the database) starts, in a process of its own too. Timed from the replay's start until
the segmenter's consumer group has committed every purchase: the file read, the
purchases published and applied. Baseline: asyncpg upserting one profile row per
purchase, 500 a transaction (the segmenter benchmark's raw upsert), on the same
purchases. Every wait has a deadline; the database, topics and file are gone after.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from bench.common import KAFKA, Figure, console, report, timed
from bench.ingest import realistic_events
from bench.segmenter import BATCH, raw_upsert
from bench.stack import (
    NUDGE,
    end_offsets,
    lag,
    run_command,
    stack,
    until,
)
from shared.logging import configure_logging

JOIN_TIMEOUT = 90.0
RUN_TIMEOUT = 900.0


def write_transactions(events: list[dict[str, Any]], path: Path) -> None:
    """One CSV row per purchase, as a shop's export would have it."""
    with path.open("w", newline="", encoding="utf-8") as file:
        out = csv.writer(file)
        out.writerow(["customer_id", "order_id", "date", "amount", "category"])
        for e in events:
            items = e["data"].get("items") or [{}]
            out.writerow(
                [
                    e["customer"]["id"],
                    e["data"]["order_id"],
                    e["occurred_at"],
                    e["data"]["total"],
                    items[0].get("category", ""),
                ]
            )


async def replay_run(events: list[dict[str, Any]]) -> tuple[Figure, float]:
    """``nudge replay`` of ``events`` with a segmenter applying them; the figure, and the
    seconds the replay command itself took (read and publish)."""
    async with stack("replay") as run:
        path = run.work / "transactions.csv"
        write_transactions(events, path)
        await run.start("segmenter", batch_size=BATCH, scoring_interval_hours=0)
        await run.joined("segmenter", 1, JOIN_TIMEOUT)
        group = run.settings.group("segmenter")
        with timed() as whole:
            with timed() as publishing:
                await run_command(str(NUDGE), "replay", str(path), env=run.services[0].env,
                                  timeout=RUN_TIMEOUT)  # fmt: skip
            ends = await end_offsets(run.settings.topic("events"))
            if sum(ends.values()) != len(events):
                raise RuntimeError(f"{sum(ends.values())} events on the topic, not {len(events)}")

            async def done() -> bool:
                run.alive()
                return await lag(group, ends) == 0

            await until(done, RUN_TIMEOUT, f"{len(events)} purchases applied", 0.05)
    figure = Figure("nudge replay, read + published + applied", len(events), whole.seconds,
                    "replay.100k")  # fmt: skip
    return figure, publishing.seconds


async def main(count: int) -> None:
    configure_logging("WARNING")
    events = realistic_events(count)
    console.print(
        f"replay benchmark: `{NUDGE.name} replay` of {len(events):,} purchases of "
        f"{len({e['customer']['id'] for e in events}):,} buyers, a segmenter applying them; "
        f"Kafka {KAFKA}"
    )
    applied, publishing = await replay_run(events)
    upsert = await raw_upsert(events)
    report(
        "a transactions file replayed on Kafka and PostgreSQL, purchases applied",
        [(applied, upsert), (upsert, None)],
    )
    console.print(
        f"of which `nudge replay` itself (read the file, publish): {publishing:.2f} s, "
        f"{len(events) / publishing:,.0f} events/s"
    )
