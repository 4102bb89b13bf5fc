"""Helpers of the replay tests on the production stack: commands run as a shell would,
waiting for the segmenter to catch up, and the export read back buyer by buyer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner, Result

from services.cli import app
from shared.adapters.store import schema
from tests.support.transactions import Figures, exported_figures

runner = CliRunner()


async def nudge(*args: str, expect_exit: int = 0) -> Result:
    """A command as a shell runs it, in a thread: it runs its own event loop."""
    result = await asyncio.to_thread(runner.invoke, app, list(args))
    assert result.exit_code == expect_exit, result.output
    return result


async def processed_events(engine: AsyncEngine) -> int:
    """How many events the segmenter has applied (their dedupe rows)."""
    async with engine.connect() as conn:
        count = await conn.scalar(select(func.count()).select_from(schema.processed_events))
    return int(count or 0)


async def caught_up(bootstrap: str, group: str, topic: str) -> bool:
    """Whether ``group`` committed past the end of every partition of ``topic``.

    (tests/support/lag.py answers yes when its consumer has no metadata for the topic
    yet: it sees no partition at all.)
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        (described,) = await admin.describe_topics([topic])
        partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        committed = await admin.list_consumer_group_offsets(group)
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
        await admin.close()
    return bool(partitions) and all(
        (committed[tp].offset if tp in committed else 0) >= end for tp, end in ends.items()
    )


async def exported_figures_by_customer(
    engine: AsyncEngine, url: str, folder: Path, name: str = "profiles.jsonl"
) -> dict[str, Figures]:
    """``nudge export profiles``, by customer id (read from the database by profile id)."""
    out = folder / name
    await nudge("export", "profiles", "--db", url, "--out", str(out))
    written = await asyncio.to_thread(out.read_bytes)
    lines: list[dict[str, Any]] = [orjson.loads(text) for text in written.splitlines()]
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(schema.identifiers.c.value, schema.identifiers.c.profile_id).where(
                schema.identifiers.c.kind == "id"
            )
        )
        customer_of = {row.profile_id: row.value for row in rows}
    return {customer_of[line["id"]]: exported_figures(line) for line in lines}
