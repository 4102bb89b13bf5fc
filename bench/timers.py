"""One timer tick with 1,000 due buyers, in a base of 10,000 and in a base of 1,000,000.

Time moves memberships with no event ("30 days without an order"): every buyer
carries the next moment one of their memberships can flip, and the segmenter's
timer loop wakes the buyers whose moment has come. The claim: a tick costs what
is due, not the size of the base. So the benchmark builds two PostgreSQL bases
(``COPY``: every buyer with one order and a next timer; 1,000 of them due, the
rest due in the coming months), runs the segmenter's own tick
(``Segmenter.fire_timers``: claim the due buyers with ``FOR UPDATE SKIP LOCKED``,
evaluate every segment, write memberships, next timers and outbox rows, one
transaction) on each, several times (the due buyers put back in between), and
prints the median tick of each base and their ratio, which should stay near 1.
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
from services.segmenter.service import SegmenterService
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.migrate import upgrade_async
from shared.logging import configure_logging

DUE = 1_000
BASES = (10_000, 1_000_000)
TICKS = 5
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
COPY_CHUNK = 50_000


def _rows(start: int, stop: int) -> list[tuple[object, ...]]:
    """Buyers ``start`` to ``stop``: the first ``DUE`` of the base due now, the rest later."""
    rows = []
    for n in range(start, stop):
        last_order = NOW - timedelta(days=30, minutes=n % 600) if n < DUE else NOW
        timer = last_order + timedelta(days=30) if n < DUE else NOW + timedelta(days=1 + n % 90)
        rows.append((f"b{n:08d}", 1, 250_000, last_order, last_order, timer, last_order, NOW, NOW))
    return rows


async def _fill(dsn: str, size: int, progress: Progress) -> None:
    task = progress.add_task(f"base of {size:,} buyers", total=size)
    conn = await asyncpg.connect(dsn)
    try:
        for start in range(0, size, COPY_CHUNK):
            await conn.copy_records_to_table(
                "profiles",
                records=_rows(start, min(size, start + COPY_CHUNK)),
                columns=[
                    "id", "orders_count", "revenue_total", "first_order_at", "last_order_at",
                    "next_timer_at", "evaluated_at", "created_at", "updated_at",
                ],
            )  # fmt: skip
            progress.advance(task, min(COPY_CHUNK, size - start))
        await conn.execute("ANALYZE profiles")
    finally:
        await conn.close()


async def _put_back_due(dsn: str) -> None:
    """The due buyers as they were before a tick: due again, in no segment, nothing sent."""
    conn = await asyncpg.connect(dsn)
    try:
        ids = [f"b{n:08d}" for n in range(DUE)]
        async with conn.transaction():
            await conn.execute(
                "UPDATE profiles SET next_timer_at = last_order_at + interval '30 days', "
                "evaluated_at = last_order_at WHERE id = ANY($1)",
                ids,
            )
            await conn.execute("DELETE FROM memberships WHERE profile_id = ANY($1)", ids)
            await conn.execute("DELETE FROM outbox")
    finally:
        await conn.close()


async def tick_seconds(size: int, progress: Progress) -> list[float]:
    name = unique("bench_timers_")
    url = await create_database(name)
    dsn = url.replace("+asyncpg", "")
    try:
        await upgrade_async(url)
        await _fill(dsn, size, progress)
        # The bus is not used by a tick, but PostgreSQL goes with Kafka.
        settings = kafka_settings(
            url, unique("bench"), Path(tempfile.mkdtemp(prefix="nudge-bench-"))
        )
        runtime = await bootstrap(settings, clock=SimulatedClock(NOW))
        service = SegmenterService(runtime)
        seconds: list[float] = []
        try:
            for _ in range(TICKS):
                await _put_back_due(dsn)
                with timed() as tick:
                    woken = await service.segmenter.fire_timers(DUE)
                if woken != DUE:
                    raise RuntimeError(f"a tick woke {woken} buyers, not {DUE}")
                seconds.append(tick.seconds)
        finally:
            await runtime.close()
    finally:
        await drop_database(name)
    return seconds


async def main(large_base: int = BASES[1]) -> None:
    configure_logging("WARNING")
    bases = (BASES[0], large_base)
    console.print(
        f"timers benchmark: one tick with {DUE:,} due buyers, in bases of "
        f"{', '.join(f'{b:,}' for b in bases)} (PostgreSQL at {DATABASE_URL.rsplit('@', 1)[-1]})"
    )
    medians: dict[int, float] = {}
    with Progress(console=console, transient=True) as progress:
        for size in bases:
            ticks = await tick_seconds(size, progress)
            medians[size] = statistics.median(ticks)
            console.print(
                f"base {size:>9,}: median tick {medians[size] * 1000:7.1f} ms over {TICKS} ticks "
                f"(min {min(ticks) * 1000:.1f}, max {max(ticks) * 1000:.1f})"
            )
    small, large = bases
    record(
        "timers.tick_1m_over_10k",
        medians[large] * 1000,
        "ms a tick",
        baseline=medians[small] * 1000,
        baseline_name=f"the tick in a base of {small:,} (the value's: {large:,})",
        n=DUE,
    )
    console.print(
        f"tick cost, base of {large:,} over base of {small:,}: "
        f"{medians[large] / medians[small]:.2f} (1.00: the cost follows what is due)"
    )
