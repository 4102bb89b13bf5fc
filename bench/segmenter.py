"""The segmenter's events per second with 20 stored rules beside the built-ins alone, and raw.

The events: ``--events`` of them (20,000 by default), seven tenths the synthetic
purchases of ``shared/synthetic.py`` (90 days of buyers with a rhythm, items with a
category and a SKU), the rest the same buyers' ``identify`` events (gender, region,
kids, age, time zone), ``track`` events (``cart_updated``, ``product_viewed``) and
email opens, in time order; the segmenter's clock stands one day after the last.

Each nudge run has a PostgreSQL database (``nudge db upgrade``) and topics of its
own. The events are published first, as ingest publishes them (key, JSON value),
then the segmenter service runs with all its loops (events consumer, timers,
outbox relay to the segment-changes topic, segments) and is timed from its first
committed batch until every event is processed (its dedupe rows), so the consumer
group's join is not counted (nor the nightly scoring, switched off; logging at
WARNING). Batches of 500 (``NUDGE_BATCH_SIZE``), one transaction
each. Two runs on the same events:

- built-ins only: the seven built-in segments (``no-order-30d`` and the lifecycle);
- with 20 rules: the same and 20 stored segments (``SqlDefinitions.segments.put``
  before the run; the base, empty then, evaluated against them before the clock
  starts), a mix of the rule language of docs/segments.md: traits, stats, moments,
  rhythm, bought within, event counts within, opens, segment references,
  lifecycle, RFM and the scores.

The raw baseline, same process: asyncpg upserting one profile row per event
(orders, revenue, last order, traits merged), in batches of 500, one transaction
per batch, into a table of its own database. Ratios: each run over the raw
upsert, and the run with 20 rules over the built-ins alone (the rules' cost). The
CPU seconds the benchmark's process spent in each timed run, per event, are printed
too: on a machine shared with other work they say the rules' cost more steadily.
Every wait has a deadline; the databases and topics made for the run are dropped.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from sqlalchemy import func, select

from bench.common import KAFKA, Figure, console, record, report, timed, unique
from bench.stack import (
    asyncpg_dsn,
    create_database,
    database,
    delete_topics,
    drop_database,
    end_offsets,
    kafka_settings,
    until,
)
from services.bootstrap import TOPICS, bootstrap
from services.segmenter.service import SegmenterService
from shared.adapters.clock import SimulatedClock
from shared.adapters.store import schema
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.migrate import upgrade_async
from shared.domain.events import validate_event
from shared.domain.segments import BUILTIN_SEGMENTS
from shared.logging import configure_logging
from shared.synthetic import synthetic_events

BATCH = 500
START = datetime(2026, 1, 5, tzinfo=UTC)
DAYS = 90
SEED = 7
NOW = START + timedelta(days=DAYS + 1)
"""The segmenter's clock: a day after the last event, so periods such as "within 7d" bite."""
START_TIMEOUT = 60.0
RUN_TIMEOUT = 300.0

RULES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("women", "Women", {"trait": "gender", "eq": "female"}),
    ("capitals", "Moscow and St Petersburg regions", {"trait": "region", "in": ["CFD", "NWFD"]}),
    (
        "young-families",
        "Young families",
        {"all": [{"trait": "has_kids", "eq": True}, {"trait": "age", "between": [25, 40]}]},
    ),
    ("big-spenders", "Spent 20,000 or more", {"stat": "revenue_total", "at_least": 20000}),
    ("mid-check", "Average check 3,000 to 6,000", {"stat": "avg_check", "between": [3000, 6000]}),
    ("frequent", "Five orders or more", {"stat": "orders_count", "at_least": 5}),
    ("newcomers", "First order in the last 2 weeks", {"stat": "first_order_at", "within": "2w"}),
    (
        "monthly",
        "Monthly buyers",
        {"rhythm": "median_days_between_orders", "between": [25, 35]},
    ),
    (
        "due-soon",
        "Next order due in 10 days",
        {"rhythm": "expected_next_order_at", "within": "10d"},
    ),
    ("overdue", "A week overdue", {"rhythm": "expected_next_order_at", "overdue_by": "7d"}),
    (
        "pet-food-90d",
        "Bought pet food in 90 days",
        {"bought": {"category": "pet-food"}, "within": "90d"},
    ),
    (
        "baby-lapsed",
        "Baby buyers, none in 30 days",
        {
            "all": [
                {"bought": {"category": "baby"}},
                {"bought": {"category": "baby"}, "not_within": "30d"},
            ]
        },
    ),
    (
        "cart-twice-7d",
        "Cart updated twice in 7 days",
        {"event": "cart_updated", "at_least": 2, "within": "7d"},
    ),
    ("browsers", "Viewed 5 products or more", {"event": "product_viewed", "at_least": 5}),
    (
        "night-readers",
        "Open emails at night",
        {"opens": "email", "local_hours": [23, 5], "share_at_least": 0.5},
    ),
    (
        "women-lapsed",
        "Women without an order for 30 days",
        {"all": [{"segment": "women"}, {"segment": "no-order-30d"}]},
    ),
    (
        "loyal-big",
        "Loyal big spenders",
        {"all": [{"lifecycle": "loyal"}, {"segment": "big-spenders"}]},
    ),
    (
        "families-pre-churn",
        "Families drifting away",
        {"all": [{"lifecycle": "pre-churn"}, {"segment": "young-families"}]},
    ),
    (
        "champions",
        "RFM champions",
        {"any": [{"rfm": "champions"}, {"rfm_score": {"r": [5], "f": [4, 5]}}]},
    ),
    (
        "fading-valuable",
        "Fading but valuable",
        {"all": [{"p_alive": {"below": 0.3}}, {"clv": {"top_share": 0.1}}]},
    ),
)
"""The 20 stored segments: every kind of condition, some combined, some referring to others."""


def bench_events(count: int) -> list[dict[str, Any]]:
    """``count`` events: synthetic purchases, then their buyers' identify, track and open
    events, all in time order; event ids unique."""
    purchases_wanted = count * 7 // 10
    buyers = max(1, purchases_wanted // 3)
    while len(purchases := list(synthetic_events(buyers, DAYS, SEED, START))) < purchases_wanted:
        buyers *= 2
    purchases = purchases[:purchases_wanted]
    customers = sorted({e["customer"]["id"]: e["customer"] for e in purchases}.items())
    rng = random.Random(SEED)
    others: list[dict[str, Any]] = []
    for n in range(count - len(purchases)):
        customer_id, customer = customers[rng.randrange(len(customers))]
        at = START + timedelta(days=rng.uniform(0, DAYS))
        event: dict[str, Any] = {
            "event_id": f"bench-{n}",
            "occurred_at": at.isoformat(),
            "customer": customer,
        }
        draw = n % 10
        if draw < 3:
            event["type"] = "identify"
            event["data"] = {
                "traits": {
                    "gender": rng.choice(("female", "male")),
                    "region": rng.choice(("CFD", "NWFD", "VFD", "SFD", "UFD")),
                    "has_kids": rng.random() < 0.4,
                    "age": rng.randrange(18, 70),
                    "timezone": rng.choice(("Europe/Moscow", "Asia/Yekaterinburg")),
                }
            }
        elif draw < 8:
            name = "cart_updated" if draw < 5 else "product_viewed"
            event["type"] = "track"
            event["data"] = {"name": name, "properties": {"sku": f"sku-{rng.randrange(100)}"}}
        else:
            event["type"] = "message_opened"
            event["data"] = {"message_key": f"bench-message-{customer_id}", "channel": "email"}
        others.append(event)
    events = [*purchases, *others]
    events.sort(key=lambda e: e["occurred_at"])
    return events


def records(events: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    """The records ingest would publish for ``events``: key and JSON value."""
    validated = [validate_event(e) for e in events]
    return [(e.key.encode(), e.model_dump_json(exclude_none=True).encode()) for e in validated]


@dataclass(frozen=True)
class SegmenterRun:
    figure: Figure
    cpu_seconds: float
    """This process's CPU during the timed run."""
    changes: int
    """Segment changes the run published (its outbox rows, its membership changes)."""


async def published(topic: str, settle: float = 0.5, timeout: float = 30.0) -> int:
    """Records on ``topic`` once the count has not grown for ``settle`` s (the outbox
    relay is done)."""
    seen, steady_since = -1, 0.0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        now = sum((await end_offsets(topic)).values())
        if now != seen:
            seen, steady_since = now, loop.time()
        elif loop.time() - steady_since >= settle:
            break
        await asyncio.sleep(0.1)
    return seen


async def segmenter_run(keyed: list[tuple[bytes, bytes]], *, rules: bool) -> SegmenterRun:
    """The segmenter applying ``keyed`` on Kafka and PostgreSQL, with or without the rules;
    with the CPU seconds this process spent meanwhile and the changes it published."""
    name = unique("bench_segmenter_")
    prefix = unique("bench")
    url = await create_database(name)
    data_dir = Path(tempfile.mkdtemp(prefix="nudge-bench-"))
    try:
        await upgrade_async(url)
        settings = kafka_settings(
            url,
            prefix,
            data_dir,
            batch_size=BATCH,
            scoring_interval_hours=0,  # the nightly scoring of the base is not measured here
        )
        runtime = await bootstrap(settings, clock=SimulatedClock(NOW))
        try:
            if rules:
                definitions = SqlDefinitions(runtime.store.engine, clock=runtime.clock)
                for key, title, rule in RULES:
                    await definitions.segments.put(
                        key, name=title, description="", rule=rule, expected_version=None
                    )
            publisher = runtime.bus.publisher()
            try:
                for start in range(0, len(keyed), BATCH):
                    await publisher.publish(settings.topic("events"), keyed[start : start + BATCH])
            finally:
                await publisher.close()
            service = SegmenterService(runtime)
            await service.start()
            await service.segmenter.refresh_segments()
            in_force = len(list(service.segmenter.index))
            expected = len(BUILTIN_SEGMENTS) + (len(RULES) if rules else 0)
            if in_force != expected:
                raise RuntimeError(f"{in_force} segments in force, not {expected}")
            await service.segmenter.recompute()  # the empty base, against every new rule
            task = asyncio.create_task(service.run())

            async def processed() -> int:
                async with runtime.store.engine.connect() as conn:
                    n = await conn.scalar(select(func.count()).select_from(schema.processed_events))
                    return int(n or 0)

            first = 0

            async def started() -> bool:
                nonlocal first
                first = await processed()
                return first > 0

            async def done() -> bool:
                return await processed() >= len(keyed)

            try:
                await until(started, START_TIMEOUT, "the segmenter's first batch", pause=0.01)
                cpu_before = time.process_time()
                with timed() as apply_time:
                    await until(done, RUN_TIMEOUT, f"{len(keyed)} events applied")
                cpu = time.process_time() - cpu_before
            finally:
                service.stop()
                await asyncio.wait_for(task, 30)
            changes = await published(settings.topic("segment-changes"))
        finally:
            await runtime.close()
            await delete_topics([f"{prefix}.{topic}" for topic in TOPICS])
    finally:
        await drop_database(name)
        shutil.rmtree(data_dir, ignore_errors=True)
    label = f"segmenter, {len(RULES)} rules + built-ins" if rules else "segmenter, built-ins only"
    key = f"segmenter.rules{len(RULES)}" if rules else "segmenter.builtin"
    return SegmenterRun(Figure(label, len(keyed) - first, apply_time.seconds, key), cpu, changes)


def _profile_rows(events: list[dict[str, Any]]) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for e in events:
        purchase = e["type"] == "purchase"
        traits = e["data"]["traits"] if e["type"] == "identify" else {}
        rows.append(
            (
                e["customer"]["id"],
                1 if purchase else 0,
                int(Decimal(e["data"]["total"]) * 100) if purchase else 0,
                datetime.fromisoformat(e["occurred_at"]) if purchase else None,
                orjson.dumps(traits).decode(),
            )
        )
    return rows


async def raw_upsert(events: list[dict[str, Any]]) -> Figure:
    """asyncpg upserting one profile row per event, 500 a transaction."""
    async with database("bench_raw_") as url:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await conn.execute(
                "CREATE TABLE profiles (id text PRIMARY KEY, orders_count int NOT NULL, "
                "revenue_total bigint NOT NULL, last_order_at timestamptz, traits jsonb NOT NULL)"
            )
            rows = _profile_rows(events)
            with timed() as upsert_time:
                for start in range(0, len(rows), BATCH):
                    async with conn.transaction():
                        await conn.executemany(
                            "INSERT INTO profiles VALUES ($1, $2, $3, $4, $5::jsonb) "
                            "ON CONFLICT (id) DO UPDATE SET "
                            "orders_count = profiles.orders_count + excluded.orders_count, "
                            "revenue_total = profiles.revenue_total + excluded.revenue_total, "
                            "last_order_at = greatest(profiles.last_order_at, "
                            "excluded.last_order_at), traits = profiles.traits || excluded.traits",
                            rows[start : start + BATCH],
                        )
        finally:
            await conn.close()
    return Figure(f"raw asyncpg upsert (tx per {BATCH})", len(rows), upsert_time.seconds)


_ROWS_SCHEMA = (
    "CREATE TABLE processed (event_id text PRIMARY KEY)",
    "CREATE TABLE profiles (id text PRIMARY KEY, orders_count int NOT NULL, "
    "revenue_total bigint NOT NULL, last_order_at timestamptz, behaviour jsonb NOT NULL)",
    "CREATE TABLE memberships (profile_id text, segment text, PRIMARY KEY (profile_id, segment))",
    "CREATE TABLE outbox (id bigserial PRIMARY KEY, key text NOT NULL, payload jsonb NOT NULL)",
)


async def raw_segmenter_rows(events: list[dict[str, Any]], changes: int) -> Figure:
    """asyncpg writing the rows a segmenter must write for ``events``, 500 a transaction:
    a dedupe row per event, each buyer of the batch's profile once (its whole value, the
    events' counts and traits kept in memory as a cache would), and ``changes``
    membership rows with an outbox row each, spread evenly over the batches; one
    ``executemany`` per table per batch."""
    async with database("bench_rows_") as url:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            for statement in _ROWS_SCHEMA:
                await conn.execute(statement)
            batches = max(1, -(-len(events) // BATCH))
            profiles: dict[str, dict[str, Any]] = {}
            with timed() as rows_time:
                for n, start in enumerate(range(0, len(events), BATCH)):
                    batch = events[start : start + BATCH]
                    touched: dict[str, dict[str, Any]] = {}
                    for e in batch:
                        profile = profiles.setdefault(
                            e["customer"]["id"],
                            {"orders": 0, "revenue": 0, "last": None, "traits": {}, "events": {}},
                        )
                        if e["type"] == "purchase":
                            profile["orders"] += 1
                            profile["revenue"] += int(Decimal(e["data"]["total"]) * 100)
                            profile["last"] = e["occurred_at"]
                        elif e["type"] == "identify":
                            profile["traits"].update(e["data"]["traits"])
                        counts = profile["events"]
                        counts[e["type"]] = counts.get(e["type"], 0) + 1
                        touched[e["customer"]["id"]] = profile
                    ids = list(touched)
                    moved = changes * (n + 1) // batches - changes * n // batches
                    members = [
                        (ids[k % len(ids)], f"segment-{k // len(ids)}") for k in range(moved)
                    ]
                    async with conn.transaction():
                        await conn.executemany(
                            "INSERT INTO processed VALUES ($1)", [(e["event_id"],) for e in batch]
                        )
                        await conn.executemany(
                            "INSERT INTO profiles VALUES ($1, $2, $3, $4, $5::jsonb) "
                            "ON CONFLICT (id) DO UPDATE SET orders_count = excluded.orders_count, "
                            "revenue_total = excluded.revenue_total, "
                            "last_order_at = excluded.last_order_at, "
                            "behaviour = excluded.behaviour",
                            [
                                (
                                    buyer,
                                    p["orders"],
                                    p["revenue"],
                                    datetime.fromisoformat(p["last"]) if p["last"] else None,
                                    orjson.dumps(p).decode(),
                                )
                                for buyer, p in touched.items()
                            ],
                        )
                        await conn.executemany(
                            "INSERT INTO memberships VALUES ($1, $2) ON CONFLICT DO NOTHING",
                            members,
                        )
                        await conn.executemany(
                            "INSERT INTO outbox (key, payload) VALUES ($1, $2::jsonb)",
                            [
                                (
                                    buyer,
                                    orjson.dumps({"segment": seg, "change": "entered"}).decode(),
                                )
                                for buyer, seg in members
                            ],
                        )
        finally:
            await conn.close()
    return Figure(
        f"raw asyncpg, the segmenter's rows ({changes:,} changes)", len(events), rows_time.seconds
    )


async def main(count: int) -> None:
    configure_logging("WARNING")  # the services' info lines would be printed in the timed runs
    events = bench_events(count)
    kinds: dict[str, int] = {}
    for e in events:
        kinds[e["type"]] = kinds.get(e["type"], 0) + 1
    buyers = len({e["customer"]["id"] for e in events})
    console.print(
        f"segmenter benchmark: {len(events):,} events of {buyers:,} buyers "
        f"({', '.join(f'{n:,} {kind}' for kind, n in sorted(kinds.items()))}), Kafka {KAFKA}"
    )
    keyed = records(events)
    builtins = await segmenter_run(keyed, rules=False)
    with_rules = await segmenter_run(keyed, rules=True)
    upsert = await raw_upsert(events)
    rows = await raw_segmenter_rows(events, builtins.changes)
    report(
        "events applied by the segmenter (real Kafka, PostgreSQL), one tx per batch of 500",
        [
            (builtins.figure, upsert),
            (replace(builtins.figure, key="segmenter.builtin_vs_rows"), rows),
            (with_rules.figure, upsert),
            (replace(with_rules.figure, key="segmenter.rules20_over_builtin"), builtins.figure),
            (upsert, None),
            (rows, None),
        ],
    )  # fmt: skip
    per_event = [run.cpu_seconds / run.figure.count * 1e6 for run in (builtins, with_rules)]
    for run, key, cpu in zip(
        (builtins, with_rules), ("builtin", "rules20"), per_event, strict=True
    ):
        record(
            f"segmenter.{key}_cpu_us",
            cpu,
            "µs CPU per event",
            baseline=per_event[0] if key != "builtin" else None,
            baseline_name="built-ins only" if key != "builtin" else "",
            n=run.figure.count,
        )
    console.print(
        f"CPU of the segmenter's process per event (PostgreSQL's and Kafka's not counted; "
        f"steadier than the rate on a busy machine): built-ins only {per_event[0]:,.0f} µs, "
        f"with {len(RULES)} rules {per_event[1]:,.0f} µs ({per_event[1] / per_event[0]:.2f}×)"
    )
