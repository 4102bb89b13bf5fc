"""Ingest on the real Kafka broker and PostgreSQL, over real HTTP with an API key.

- a batch of 1000 events lands whole: 1000 records on the topic, then 1000 processed
  events and 1000 profiles once the segmenter has applied them;
- a batch with one bad event lands nothing: the topic, read from its beginning with a
  plain aiokafka consumer, holds no record of it;
- card numbers posted in every kind of field, key and integer are refused, and none
  of their digits is anywhere afterwards: not in any record of any topic of this test,
  not in any row of any table of its database, not in the captured logs.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord
from sqlalchemy import func, select, text

from shared.adapters.clock import SimulatedClock
from shared.adapters.providers.email import EmlFolderProvider
from shared.adapters.store import schema
from shared.domain.card_numbers import luhn_valid
from shared.logging import configure_logging
from shared.settings import Settings
from tests.conftest import T0
from tests.e2e.stacks import RunningStack, identify, purchase, running_stack
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

BATCH = 1000


@pytest.fixture
def logs(capfd: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """Everything written to stdout and stderr, with logging set up as in production."""
    configure_logging("DEBUG", "json")
    yield capfd
    structlog.reset_defaults()


@pytest.fixture
async def stack(
    logs: pytest.CaptureFixture[str], kafka_settings: Settings, clock: SimulatedClock
) -> AsyncIterator[RunningStack]:
    email = EmlFolderProvider(kafka_settings.data_dir / "mail", kafka_settings.smtp_sender)
    async with running_stack(kafka_settings, clock, email) as stack:
        yield stack


# --- reading what landed -----------------------------------------------------------------


async def partitions_of(bootstrap: str, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert described["error_code"] == 0, f"no topic {topic}: {described}"
    return [TopicPartition(topic, p["partition"]) for p in described["partitions"]]


async def topics_of(bootstrap: str, prefix: str) -> list[str]:
    """The topics named ``<prefix>.*``: a test's own."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return sorted(t for t in await admin.list_topics() if t.startswith(f"{prefix}."))
    finally:
        await admin.close()


async def topic_records(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` from its beginning to its end as of now, in no group.

    It reads uncommitted data too (``read_uncommitted``), so nothing written to the
    log escapes it, aborted transactions included.
    """
    partitions = await partitions_of(bootstrap, topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_uncommitted",
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + 60
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            assert time.monotonic() < deadline, f"{topic}: could not read up to {ends}"
            batches = await consumer.getmany(*partitions, timeout_ms=500)
            for tp, batch in batches.items():
                records.extend(r for r in batch if r.offset < ends[tp])
        return records
    finally:
        await consumer.stop()


async def count(stack: RunningStack, table: Any) -> int:
    async with stack.runtime.store.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


# --- a batch lands whole, or not at all --------------------------------------------------


def _batch() -> list[dict[str, Any]]:
    events = []
    for n in range(BATCH):
        event = purchase(
            f"bulk-{n:04d}",
            T0 - timedelta(minutes=n),
            customer={"id": f"bulk-buyer-{n:04d}", "email": f"buyer{n}@example.com"},
            total=f"{100 + n}.50",
        )
        event["store_id"] = f"store-{n % 7}"
        events.append(event)
    return events


async def test_a_batch_of_1000_events_lands_whole(stack: RunningStack) -> None:
    events = _batch()
    response = await stack.post(*events)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": BATCH, "duplicates": 0}

    settings = stack.runtime.settings
    records = await topic_records(settings.kafka_bootstrap, settings.topic("events"))
    assert sorted(orjson.loads(r.value)["event_id"] for r in records) == [
        e["event_id"] for e in events
    ]

    async def applied() -> bool:
        return await count(stack, schema.processed_events) == BATCH

    await eventually(applied, timeout=120, what=f"the segmenter to apply {BATCH} events")
    assert await count(stack, schema.profiles) == BATCH
    async with stack.runtime.store.engine.connect() as conn:
        ids = set((await conn.scalars(select(schema.processed_events.c.event_id))).all())
        rows = (
            await conn.execute(
                select(schema.profiles.c.orders_count, schema.profiles.c.revenue_total)
            )
        ).all()
    assert ids == {e["event_id"] for e in events}
    assert {orders for orders, _ in rows} == {1}
    assert sum(revenue for _, revenue in rows) == sum(Decimal(e["data"]["total"]) for e in events)
    last = events[-1]["customer"]
    assert (await stack.profile("id", last["id"])) is not None
    assert (await stack.profile("email", last["email"])) is not None


async def test_a_batch_with_one_bad_event_lands_nothing(stack: RunningStack) -> None:
    events = _batch()
    events[537]["occurred_at"] = "2026-03-02T09:00:00"  # no UTC offset
    response = await stack.post(*events)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/problems/invalid-events"
    assert [(e["index"], e["pointer"]) for e in problem["errors"]] == [
        (537, "/events/537/occurred_at")
    ]
    settings = stack.runtime.settings
    assert await topic_records(settings.kafka_bootstrap, settings.topic("events")) == []

    # The reader sees what does land: one good event after, and it is alone on the topic.
    marker = purchase("after-the-refusal", T0, customer={"id": "marker-buyer"})
    assert (await stack.post(marker)).status_code == 202
    records = await topic_records(settings.kafka_bootstrap, settings.topic("events"))
    assert [r.key for r in records] == [b"id:marker-buyer"]
    await stack.wait_for_profile("id", "marker-buyer", orders_count=1)
    assert await count(stack, schema.processed_events) == 1
    assert await count(stack, schema.profiles) == 1


# --- card numbers: refused, and found nowhere after --------------------------------------

CARDS = (
    "4111111111111111",  # Visa
    "5555555555554444",  # Mastercard
    "2223003122003222",  # Mastercard, 2-series
    "378282246310005",  # American Express, 15 digits
    "6011111111111117",  # Discover
    "3530111333300000",  # JCB
    "36227206271667",  # Diners Club, 14 digits
    "6200000000000005",  # UnionPay
    "4222222222222",  # Visa, 13 digits
    "4571736000000000072",  # 19 digits
)
EN_DASH = "\u2013"
_SEPARATORS = r"[\s\-\u2010-\u2015\u2212]*"
_FOUND = [re.compile(_SEPARATORS.join(card)) for card in CARDS]


def cards_in(text: str) -> set[str]:
    """The cards of ``CARDS`` whose digits appear in ``text``, grouped any way or not at all."""
    return {card for card, pattern in zip(CARDS, _FOUND, strict=True) if pattern.search(text)}


def grouped(card: str, sep: str = " ") -> str:
    return sep.join(card[i : i + 4] for i in range(0, len(card), 4))


def carded_events() -> list[tuple[str, Any]]:
    """Requests that each carry a card number somewhere a till or a backend might put one."""
    visa, mc, mc2, amex, disc, jcb, diners, union, short, long = CARDS
    at = T0

    def buy(n: int, **customer: str) -> dict[str, Any]:
        return purchase(f"carded-{n}", at, customer=customer or {"id": f"carded-buyer-{n}"})

    def who(n: int) -> dict[str, Any]:
        return identify(f"carded-{n}", at, customer={"id": f"carded-buyer-{n}"})

    cases: list[tuple[str, Any]] = [
        ("customer.id", buy(1, id=visa)),
        ("customer.loyalty_card", buy(2, loyalty_card=grouped(mc))),
        ("customer.phone", buy(3, phone=f"+{mc2}")),
        ("customer.email", buy(4, email=f"{amex}@shop.example")),
        ("customer.bank_card_token", buy(5, bank_card_token=grouped(disc, "-"))),
        ("customer.app_install_id", buy(6, app_install_id=f"app {grouped(jcb)}")),
        ("event_id", {**buy(7), "event_id": diners}),
        ("store_id", {**buy(8), "store_id": f"pos {grouped(union, EN_DASH)}"}),
        ("channel", {**buy(9), "channel": short}),
    ]
    order = buy(10)
    order["data"]["order_id"] = f"A-{grouped(long, '-')}"
    cases.append(("data.order_id", order))
    for n, (field, value) in enumerate(
        [
            ("name", f"Gift card {grouped(visa)} exp 12/29"),
            ("sku", mc),
            ("category", f"paid by {grouped(amex)} 123"),
            ("quantity", int(diners)),
        ],
        start=11,
    ):
        order = buy(n)
        order["data"]["items"][0][field] = value
        cases.append((f"data.items[].{field}", order))
    total = buy(15)
    total["data"]["total"] = int(short)
    cases.append(("data.total as a number", total))
    for n, (label, data) in enumerate(
        [
            ("identify trait value", {"traits": {"note": f"card {grouped(disc)}"}}),
            ("identify trait integer", {"traits": {"card": int(jcb)}}),
            ("identify trait key", {"traits": {grouped(union): "yes"}}),
            ("identify consents key", {"consents": {visa: True}}),
        ],
        start=16,
    ):
        cases.append((label, {**who(n), "data": data}))
    cases.append(("a key of the event", {**buy(20), mc: "x"}))
    cases.append(("a key of the customer", {**buy(21), "customer": {"id": "c-21", long: "x"}}))
    batch = [buy(22), buy(23), {**buy(24), "store_id": grouped(mc2)}, buy(25)]
    cases.append(("one event of a batch", {"events": batch}))
    return cases


async def test_card_numbers_are_refused_and_found_nowhere_after(
    stack: RunningStack, logs: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    assert all(luhn_valid(card) for card in CARDS)
    cases = carded_events()
    for label, body in cases:
        sent = stack.http.build_request("POST", "/v1/events", json=body).content.decode()
        assert cards_in(sent), f"{label}: the finder must see the card it is meant to miss later"
        response = await stack.http.post("/v1/events", json=body)
        assert response.status_code == 422, f"{label}: {response.status_code} {response.text}"
        assert response.json()["type"] == "/problems/card-number", label
        assert not cards_in(response.text), f"{label}: the answer repeats the card"
    assert set().union(*(cards_in(str(body)) for _, body in cases)) == set(CARDS)

    # Something does land, so the scans below read real records and rows.
    marker = {"id": "marker-buyer", "phone": "+79161234567", "email": "marker@example.com"}
    assert (await stack.post(identify("marker-identify", T0, customer=marker))).status_code == 202
    assert (await stack.post(purchase("marker-order", T0, customer=marker))).status_code == 202
    await stack.wait_for_profile("id", "marker-buyer", orders_count=1)

    settings = stack.runtime.settings
    topics = await topics_of(settings.kafka_bootstrap, settings.topic_prefix)
    assert settings.topic("events") in topics
    on_the_bus = []
    for topic in topics:
        for record in await topic_records(settings.kafka_bootstrap, topic):
            parts = [record.key or b"", record.value or b""]
            parts += [name.encode() + b"=" + value for name, value in record.headers]
            on_the_bus.append(f"{topic}: " + b" ".join(parts).decode(errors="replace"))
    assert any("marker-buyer" in r for r in on_the_bus)

    in_the_database = []
    async with stack.runtime.store.engine.connect() as conn:
        tables = (
            await conn.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        ).all()
        assert {"profiles", "processed_events", "api_keys"} <= set(tables)
        for table in tables:
            for row in await conn.execute(text(f'SELECT * FROM "{table}"')):
                in_the_database.append(f"{table}: {tuple(row)!r}")
    assert any("marker-order" in r for r in in_the_database)

    output = logs.readouterr()
    in_the_logs = output.out + output.err + caplog.text
    assert "card number refused" in in_the_logs

    leaks = {
        where: found
        for where, haystack in [
            *((r, r) for r in on_the_bus),
            *((r, r) for r in in_the_database),
            ("logs", in_the_logs),
        ]
        if (found := cards_in(haystack))
    }
    assert leaks == {}
