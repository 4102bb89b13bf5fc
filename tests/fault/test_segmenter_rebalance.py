"""A second segmenter replica joins the consumer group while a replay is being applied,
then one of the two is killed (SIGKILL): every buyer's figures and segments come out as a
single replica makes them, nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.adapters.store import schema
from shared.adapters.store.engine import create_engine
from shared.adapters.store.migrate import upgrade_async
from shared.settings import Settings
from tests.fault.test_replay_segmenter_killed import environment, start_segmenter
from tests.support.replaying import caught_up, exported_figures_by_customer, nudge, processed_events
from tests.support.transactions import START, figures_of, synthetic_rows, write_csv
from tests.support.waiting import eventually

__all__ = ["environment"]  # the fixture, shared with the kill test

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.fault]


async def segments_by_customer(engine: AsyncEngine) -> dict[str, frozenset[str]]:
    """Each customer's segments, by the shop's customer id."""
    ids, members = schema.identifiers, schema.memberships
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(ids.c.value, members.c.segment)
            .join(members, members.c.profile_id == ids.c.profile_id)
            .where(ids.c.kind == "id")
        )
        found: dict[str, set[str]] = {}
        for row in rows:
            found.setdefault(row.value, set()).add(row.segment)
    return {customer: frozenset(segments) for customer, segments in found.items()}


async def members_of(bootstrap: str, group: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    # DescribeGroups v2: (error, group, state, protocol type, protocol, members)
    ((_error, _group, _state, _kind, _protocol, members),) = described.groups
    return len(members)


async def test_a_replica_joining_then_one_killed_mid_replay_gives_one_replicas_results(
    kafka_settings: Settings, environment: dict[str, str], tmp_path: Path
) -> None:
    rows = synthetic_rows(buyers=1200, days=240, seed=11, start=START)
    orders = len({row["order_id"] for row in rows})
    csv_file = write_csv(tmp_path / "sales.csv", rows)
    assert kafka_settings.database_url is not None
    engine = create_engine(kafka_settings.database_url)
    bootstrap, group = kafka_settings.kafka_bootstrap, kafka_settings.group("segmenter")

    async def processed() -> int:
        return await processed_events(engine)

    log = tmp_path / "segmenter.log"
    first = await start_segmenter(environment, log)
    second: asyncio.subprocess.Process | None = None
    try:
        replay = asyncio.create_task(nudge("replay", str(csv_file)))

        async def applied(at_least: int) -> bool:
            return await processed() >= at_least

        await eventually(
            lambda: applied(600), timeout=60, interval=0.05, what="the first replica to apply some"
        )
        second = await start_segmenter(environment, log)

        async def both_in() -> bool:
            return await members_of(bootstrap, group) == 2

        await eventually(both_in, timeout=60, interval=0.1, what="the second replica to join")
        joined_at = await processed()
        await eventually(
            lambda: applied(joined_at + 300),
            timeout=60,
            interval=0.05,
            what="both replicas to apply some",
        )
        first.send_signal(signal.SIGKILL)
        await first.wait()
        killed_at = await processed()
        assert killed_at < orders, "killed before the replay was applied"

        await replay

        async def done() -> bool:
            return await caught_up(bootstrap, group, kafka_settings.topic("events"))

        await eventually(done, timeout=180, interval=0.2, what="the replica left to catch up")
        assert await processed() == orders
        figures = await exported_figures_by_customer(engine, kafka_settings.database_url, tmp_path)
        assert figures == figures_of(rows)

        # One segmenter alone, on the embedded stack up to now, and both bases scored
        # now: the same segments for every buyer.
        alone_url = f"sqlite+aiosqlite:///{tmp_path / 'alone.db'}"
        await upgrade_async(alone_url)
        now = datetime.now(UTC).isoformat()
        await nudge("replay", str(csv_file), "--embedded", "--db", alone_url, "--as-of", now)
        await nudge("score", "--db", alone_url)
        await nudge("score")
        alone = create_engine(alone_url)
        try:
            assert await segments_by_customer(engine) == await segments_by_customer(alone)
        finally:
            await alone.dispose()
    finally:
        for process in (first, second):
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await process.wait()
        await engine.dispose()
    print(f"\nsecond replica joined at {joined_at}, first killed at {killed_at} of {orders}")
