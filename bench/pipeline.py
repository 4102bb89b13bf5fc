"""Purchases through ingest and the segmenter on real Kafka and PostgreSQL, beside raw baselines.

- nudge ingest: batches of 500 events posted to the ingest app (in process, through its
  ASGI interface) with an API key (one key lookup in PostgreSQL per request), validated
  and published with the idempotent producer, 202 after acks;
- nudge segmenter: the same events consumed and applied (dedupe, profile, segments,
  timers, outbox), one transaction per polled batch;
- raw baselines, same process, same payloads: aiokafka produce (acks=all, idempotent) and
  consume, and an asyncpg upsert of the same profile rows in batches of 500.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import func, select

from bench.common import DATABASE_URL, KAFKA, Figure, console, report, timed, unique
from services.bootstrap import bootstrap
from services.ingest.app import create_app
from services.segmenter.service import SegmenterService
from shared.adapters.bus.kafka import KafkaBus
from shared.adapters.store import schema
from shared.adapters.store.migrate import upgrade_async
from shared.settings import Settings
from shared.synthetic import synthetic_events

BATCH = 500


async def _admin(statement: str) -> None:
    admin = await asyncpg.connect(
        DATABASE_URL.replace("+asyncpg", "").rsplit("/", 1)[0] + "/postgres"
    )
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


async def _create_database(name: str) -> str:
    await _admin(f'CREATE DATABASE "{name}"')
    return DATABASE_URL.rsplit("/", 1)[0] + f"/{name}"


async def _drop_database(name: str) -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _events(count: int) -> list[dict[str, object]]:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    events = list(synthetic_events(max(1, count // 3), 90, 7, start))
    while len(events) < count:  # top up with one-order buyers
        n = len(events)
        events.append(
            {
                "event_id": f"extra-{n}",
                "type": "purchase",
                "occurred_at": (start + timedelta(minutes=n)).isoformat(),
                "customer": {"id": f"extra-{n}", "email": f"extra{n}@example.com"},
                "data": {"order_id": f"x-{n}", "total": "990.00", "currency": "RUB", "items": []},
            }
        )
    return events[:count]


async def nudge_pipeline(events: list[dict[str, object]]) -> tuple[Figure, Figure]:
    name = unique("bench_")
    url = await _create_database(name)
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp(prefix="nudge-bench-")),
        bus="kafka",
        kafka_bootstrap=KAFKA,
        database_url=url,
        topic_prefix=unique("bench"),
        group_prefix=unique("bench"),
        batch_size=BATCH,
        rate_limit_per_second=10_000.0,  # one client pushing as fast as it can: not throttled
    )
    try:
        await upgrade_async(url)
        runtime = await bootstrap(settings)
        publisher = runtime.bus.publisher()
        app = create_app(settings, publisher, runtime.api_keys, event_ids=runtime.event_ids)
        _key, secret = await runtime.api_keys.create("bench", ["events:write"])
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://ingest",
            headers={"Authorization": f"Bearer {secret}"},
        ) as client:
            await client.post("/v1/events", json={"events": events[:1]})  # warm the producer
            with timed() as ingest_time:
                for start in range(1, len(events), BATCH):
                    response = await client.post(
                        "/v1/events", json={"events": events[start : start + BATCH]}
                    )
                    response.raise_for_status()
        segmenter = SegmenterService(runtime)
        await segmenter.start()
        task = asyncio.create_task(segmenter.run())

        async def processed() -> int:
            async with runtime.store.engine.connect() as conn:
                count = await conn.scalar(select(func.count()).select_from(schema.processed_events))
                return int(count or 0)

        # Time from the first committed batch, so the consumer group's join is not counted.
        while (first := await processed()) == 0:
            await asyncio.sleep(0.01)
        with timed() as apply_time:
            while await processed() < len(events):
                await asyncio.sleep(0.02)
        segmenter.stop()
        await task
        await publisher.close()
        await runtime.close()
    finally:
        await _drop_database(name)
    return (
        Figure(
            "nudge ingest (validate, publish, 202)",
            len(events) - 1,
            ingest_time.seconds,
            "pipeline.ingest",
        ),
        Figure(
            "nudge segmenter (apply, one tx per batch)",
            len(events) - first,
            apply_time.seconds,
            "pipeline.segmenter",
        ),
    )


async def raw_kafka(events: list[dict[str, object]]) -> tuple[Figure, Figure]:
    topic = unique("bench.raw.")
    await KafkaBus(KAFKA).ensure_topics([topic])
    payloads = [(str(e["customer"]).encode(), orjson.dumps(e)) for e in events]  # type: ignore[index]
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA, enable_idempotence=True, acks="all", linger_ms=2
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"warm", key=b"warm")
        with timed() as produce_time:
            for start in range(0, len(payloads), BATCH):
                acks = [
                    await producer.send(topic, value, key=key)
                    for key, value in payloads[start : start + BATCH]
                ]
                await asyncio.gather(*acks)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=KAFKA,
        group_id=unique("raw"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        seen = 0
        with timed() as consume_time:
            while seen < len(payloads) + 1:
                batches = await consumer.getmany(timeout_ms=500, max_records=BATCH)
                seen += sum(len(b) for b in batches.values())
                if batches:
                    await consumer.commit()
    finally:
        await consumer.stop()
    return (
        Figure("raw aiokafka produce", len(payloads), produce_time.seconds),
        Figure("raw aiokafka consume + commit", len(payloads), consume_time.seconds),
    )


async def raw_upsert(events: list[dict[str, object]]) -> Figure:
    name = unique("bench_raw_")
    url = await _create_database(name)
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await conn.execute(
            "CREATE TABLE profiles (id text PRIMARY KEY, orders_count int NOT NULL, "
            "revenue_total bigint NOT NULL, last_order_at timestamptz)"
        )
        rows = [
            (
                e["customer"]["id"],
                1,
                int(Decimal(e["data"]["total"]) * 100),  # type: ignore[index]
                datetime.fromisoformat(e["occurred_at"]),
            )  # type: ignore[arg-type]
            for e in events
        ]
        with timed() as upsert_time:
            for start in range(0, len(rows), BATCH):
                async with conn.transaction():
                    await conn.executemany(
                        "INSERT INTO profiles VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE "
                        "SET orders_count = profiles.orders_count + 1, "
                        "revenue_total = profiles.revenue_total + excluded.revenue_total, "
                        "last_order_at = greatest(profiles.last_order_at, excluded.last_order_at)",
                        rows[start : start + BATCH],
                    )
    finally:
        await conn.close()
        await _drop_database(name)
    return Figure("raw asyncpg upsert (tx per 500)", len(rows), upsert_time.seconds)


async def main(count: int) -> None:
    events = _events(count)
    console.print(f"pipeline benchmark: {len(events)} purchase events, Kafka {KAFKA}")
    ingest, apply = await nudge_pipeline(events)
    produce, consume = await raw_kafka(events)
    upsert = await raw_upsert(events)
    report(
        "purchases through ingest and the segmenter (real Kafka, PostgreSQL)",
        [
            (ingest, produce),
            (apply, consume),
            (apply, upsert),
            (produce, None),
            (consume, None),
            (upsert, None),
        ],
    )
