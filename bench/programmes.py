"""Entering everyone in a segment at a programme's activation, on PostgreSQL.

The claim (docs/programmes.md): an ``everyone_in`` programme's activation enters the
members a batch at a time, one statement reading the next members and one writing
their entries, so its cost per buyer stays flat as the segment grows. The benchmark
fills a base (``COPY``: every buyer in the segment ``no-order-30d``), stores an active
``everyone_in`` programme and runs the dispatcher's own activation
(``ProgrammeSteps.activate``, batches of 1,000) until every member entered, then
prints entries per second, the median batch, and checks that every member entered
once.
"""

from __future__ import annotations

import statistics
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from rich.progress import Progress

from bench.common import DATABASE_URL, console, record, timed, unique
from bench.stack import create_database, drop_database, kafka_settings
from services.bootstrap import bootstrap
from services.dispatcher.service import DispatcherService
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.migrate import upgrade_async
from shared.logging import configure_logging

BUYERS = 100_000
BATCH = 1_000
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
COPY_CHUNK = 50_000
PROGRAMME = {
    "name": "Everyone who has not ordered for 30 days",
    "status": "active",
    "trigger": {"everyone_in": "no-order-30d"},
    "holdout": 0.1,
    "steps": [
        {"id": "email", "send": {"channels": ["email"], "templates": {"email": "win-back-email"}}}
    ],
}


async def _fill(dsn: str, size: int, progress: Progress) -> None:
    task = progress.add_task(f"segment of {size:,} buyers", total=size)
    conn = await asyncpg.connect(dsn)
    last = NOW - timedelta(days=40)
    try:
        for start in range(0, size, COPY_CHUNK):
            ids = [f"b{n:08d}" for n in range(start, min(size, start + COPY_CHUNK))]
            await conn.copy_records_to_table(
                "profiles",
                records=[(i, 1, 250_000, last, last, last, NOW, NOW) for i in ids],
                columns=[
                    "id", "orders_count", "revenue_total", "first_order_at", "last_order_at",
                    "evaluated_at", "created_at", "updated_at",
                ],
            )  # fmt: skip
            await conn.copy_records_to_table(
                "memberships",
                records=[(i, "no-order-30d", last + timedelta(days=30)) for i in ids],
                columns=["profile_id", "segment", "entered_at"],
            )
            progress.advance(task, len(ids))
        await conn.execute("ANALYZE profiles")
        await conn.execute("ANALYZE memberships")
    finally:
        await conn.close()


async def activation(size: int, progress: Progress) -> tuple[float, list[float], int]:
    """Seconds of the whole activation, each batch's seconds, and the entries written."""
    name = unique("bench_programmes_")
    url = await create_database(name)
    dsn = url.replace("+asyncpg", "")
    try:
        await upgrade_async(url)
        await _fill(dsn, size, progress)
        settings = kafka_settings(
            url, unique("bench"), Path(tempfile.mkdtemp(prefix="nudge-bench-"))
        )
        runtime = await bootstrap(settings, clock=SimulatedClock(NOW))
        try:
            await runtime.definitions.programmes.put(
                "everyone", definition=PROGRAMME, status="active", expected_version=None
            )
            steps = DispatcherService(runtime).programmes
            await steps.catalogue.refresh_programmes()
            batches: list[float] = []
            with timed() as whole:
                while True:
                    with timed() as one:
                        entered = await steps.activate(BATCH)
                    if not entered:
                        break
                    batches.append(one.seconds)
        finally:
            await runtime.close()
        conn = await asyncpg.connect(dsn)
        try:
            written = int(await conn.fetchval("SELECT count(*) FROM programme_positions"))
        finally:
            await conn.close()
    finally:
        await drop_database(name)
    return whole.seconds, batches, written


async def main(buyers: int = BUYERS) -> None:
    configure_logging("WARNING")
    console.print(
        f"programmes benchmark: an everyone_in activation over {buyers:,} members "
        f"(PostgreSQL at {DATABASE_URL.rsplit('@', 1)[-1]})"
    )
    with Progress(console=console, transient=True) as progress:
        seconds, batches, written = await activation(buyers, progress)
    if written != buyers:
        raise RuntimeError(f"{written} entries written for {buyers} members")
    console.print(
        f"activation: {buyers:,} entered in {seconds:.2f} s ({buyers / seconds:,.0f} entries/s), "
        f"median batch of {BATCH:,} {statistics.median(batches) * 1000:.1f} ms "
        f"(max {max(batches) * 1000:.1f})"
    )
    record("programmes.activation", buyers / seconds, "entries/s", n=buyers)
