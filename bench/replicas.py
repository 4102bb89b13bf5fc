"""The segmenter with one replica, then two: events per second and CPU per event of each.

The events are the segmenter benchmark's (``--events`` of them, seven tenths synthetic
purchases, the rest the same buyers' identify, track and open events). Each run has a
PostgreSQL database (migrated) and topics of its own, the events topic made with the
partitions ``NUDGE_KAFKA_PARTITIONS`` says (the deployment's default). ``nudge
segmenter`` runs in processes of its own, one then two, in one consumer group over the
same topic and database (on its system clock, with the built-in segments, logging at
WARNING, the nightly scoring off); once the group is stable with every replica a member,
the events are published as ingest publishes them (key, JSON value), and the run is
timed from the group's first committed batch until it has committed every event (the
segmenter commits its offsets after its database transaction). The CPU figure is the
replicas' processes' (user and system, from ``/proc``) over the same span, per event;
their peak resident memory (``VmHWM``) is read before they stop; the one-replica run's
is ``segmenter.peak_rss_mb``. The ratio ``replicas.2_over_1`` is the two replicas' rate
over the one's: 2.0 would be perfect scaling, on a machine with the cores for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.common import KAFKA, console, record, timed
from bench.segmenter import BATCH, bench_events, records
from bench.stack import (
    end_offsets,
    lag,
    partitions_of,
    stack,
    until,
)
from shared.logging import configure_logging

JOIN_TIMEOUT = 90.0
RUN_TIMEOUT = 600.0


@dataclass(frozen=True)
class ReplicasRun:
    replicas: int
    events: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float | None
    partitions: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / self.events * 1e6


async def replicas_run(keyed: list[tuple[bytes, bytes]], replicas: int) -> ReplicasRun:
    """``replicas`` segmenter processes applying ``keyed`` (see the module's docstring)."""
    async with stack("replicas") as run:
        for _ in range(replicas):
            await run.start("segmenter", batch_size=BATCH, scoring_interval_hours=0)
        await run.joined("segmenter", replicas, JOIN_TIMEOUT)
        events_topic = run.settings.topic("events")
        publisher = run.runtime.bus.publisher()
        try:
            for start in range(0, len(keyed), BATCH):
                await publisher.publish(events_topic, keyed[start : start + BATCH])
        finally:
            await publisher.close()
        ends = await end_offsets(events_topic)
        group = run.settings.group("segmenter")
        first = len(keyed)

        async def started() -> bool:
            nonlocal first
            run.alive()
            first = await lag(group, ends)
            return first < len(keyed)

        async def done() -> bool:
            run.alive()
            return await lag(group, ends) == 0

        await until(started, JOIN_TIMEOUT, "the replicas' first batch", 0.01)
        cpu_before = sum(s.cpu_seconds() for s in run.services)
        with timed() as applying:
            await until(done, RUN_TIMEOUT, f"{len(keyed)} events applied", 0.05)
        cpu = sum(s.cpu_seconds() for s in run.services) - cpu_before
        partitions = len(await partitions_of(events_topic))
    peaks = [s.peak_rss_mb for s in run.services if s.peak_rss_mb is not None]
    return ReplicasRun(
        replicas, first, applying.seconds, cpu, max(peaks) if peaks else None, partitions
    )


async def main(count: int) -> None:
    configure_logging("WARNING")
    events = bench_events(count)
    keyed = records(events)
    console.print(
        f"replicas benchmark: {len(keyed):,} events, `nudge segmenter` in 1 then 2 processes "
        f"of one consumer group, Kafka {KAFKA}"
    )
    one = await replicas_run(keyed, 1)
    two = await replicas_run(keyed, 2)
    for run in (one, two):
        record(f"replicas.{run.replicas}", run.rate, "per second", n=run.events)
        record(
            f"replicas.{run.replicas}_cpu_us",
            run.cpu_us,
            "µs CPU per event",
            baseline=one.cpu_us if run is two else None,
            baseline_name="one replica" if run is two else "",
            n=run.events,
        )
        console.print(
            f"{run.replicas} replica(s), {run.partitions} partitions: {run.rate:,.0f} events/s "
            f"({run.events:,} in {run.seconds:.2f} s), {run.cpu_us:,.0f} µs CPU per event, "
            f"peak RSS {run.peak_rss_mb or 0:,.0f} MB (the largest replica)"
        )
    record(
        "replicas.2_over_1", two.rate, "per second", baseline=one.rate,
        baseline_name="one replica", n=two.events,
    )  # fmt: skip
    if one.peak_rss_mb is not None:
        record("segmenter.peak_rss_mb", one.peak_rss_mb, "MB", n=one.events)
    console.print(f"two replicas over one: {two.rate / one.rate:.2f}×")
