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
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.common import KAFKA, Figure, console, report, timed, unique
from bench.ingest import realistic_events
from bench.segmenter import BATCH, raw_upsert
from bench.stack import (
    NUDGE,
    Service,
    database,
    delete_topics,
    end_offsets,
    lag,
    members,
    run_command,
    service_env,
    until,
)
from services.bootstrap import TOPICS
from shared.adapters.store.migrate import upgrade_async
from shared.logging import configure_logging
from shared.settings import Settings

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
    prefix = unique("benchreplay")
    work = Path(tempfile.mkdtemp(prefix="nudge-bench-replay-"))
    async with database("bench_replay_") as url:
        try:
            await upgrade_async(url)
            env = service_env(url, prefix, work, batch_size=BATCH, scoring_interval_hours=0)
            settings = Settings(topic_prefix=prefix, group_prefix=prefix, data_dir=work)
            path = work / "transactions.csv"
            write_transactions(events, path)
            segmenter = Service("segmenter", env, work / "segmenter.log")
            try:
                await segmenter.start()
                group = settings.group("segmenter")

                async def joined() -> bool:
                    segmenter.alive()
                    return await members(group) == 1

                await until(joined, JOIN_TIMEOUT, "the segmenter in its group", 0.2)
                with timed() as whole:
                    with timed() as publishing:
                        await run_command(str(NUDGE), "replay", str(path), env=env,
                                          timeout=RUN_TIMEOUT)  # fmt: skip
                    ends = await end_offsets(settings.topic("events"))
                    if sum(ends.values()) != len(events):
                        raise RuntimeError(
                            f"{sum(ends.values())} events on the topic, not {len(events)}"
                        )

                    async def done() -> bool:
                        segmenter.alive()
                        return await lag(group, ends) == 0

                    await until(done, RUN_TIMEOUT, f"{len(events)} purchases applied", 0.05)
            finally:
                await segmenter.stop()
                await delete_topics([f"{prefix}.{topic}" for topic in TOPICS])
        finally:
            shutil.rmtree(work, ignore_errors=True)
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
