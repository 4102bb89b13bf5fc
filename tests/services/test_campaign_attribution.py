"""A purchase is a conversion of every campaign message whose attribution window holds it,
sent or held out alike, and is counted once however often the event arrives; a delivery
report is kept against its message, once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from services.segmenter.attribution import Attribution
from services.segmenter.handlers import Segmenter
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.engine import open_store
from shared.adapters.store.reports import SqlCampaignResults
from shared.adapters.store.sql import SqlStore
from shared.domain.segments import BUILTIN_SEGMENTS
from shared.ports.bus import Record
from shared.ports.store import MessageRecord
from tests.conftest import T0
from tests.e2e.stacks import purchase

OLGA = {"email": "olga@example.com"}
IVAN = {"email": "ivan@example.com"}
PETR = {"email": "petr@example.com"}
SENT_AT = T0 + timedelta(days=1)
"""When the win-back messages were decided (its goal: a purchase within 30 days, no delay)."""


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[SqlStore]:
    found = open_store(sqlite_url)
    yield found
    await found.close()


@pytest.fixture
def segmenter(store: SqlStore, clock: SimulatedClock) -> Segmenter:
    definitions = SqlDefinitions(store.engine, clock=clock)
    return Segmenter(
        store=store,
        clock=clock,
        segments=BUILTIN_SEGMENTS,
        changes_topic="segment-changes",
        definitions=definitions,
        attribution=Attribution(SqlCampaignResults(store.engine), definitions),
    )


def _records(*events: dict[str, Any]) -> list[Record]:
    return [Record("events", 0, n, None, orjson.dumps(e)) for n, e in enumerate(events)]


async def _buyer(store: SqlStore, customer: dict[str, str]) -> str:
    async with store.unit_of_work() as uow:
        profile = await uow.profiles.find("email", customer["email"])
    assert profile is not None
    return profile.id


async def _message(
    store: SqlStore, key: str, buyer: str, *, status: str, reason: str, holdout: bool = False
) -> None:
    async with store.unit_of_work() as uow:
        await uow.messages.begin(
            MessageRecord(
                key=key,
                campaign="win-back-30d",
                profile_id=buyer,
                channel="email",
                occurrence_id="stay-1",
                status=status,
                created_at=SENT_AT,
                reason=reason,
                holdout=holdout,
                sent_at=SENT_AT if status == "sent" else None,
            )
        )
        await uow.commit()


async def _conversions(store: SqlStore) -> list[tuple[str, bool, str, Decimal, datetime]]:
    results = SqlCampaignResults(store.engine)
    return [
        (c.message_key, c.holdout, c.order_id, c.amount, c.converted_at)
        for c in await results.campaign_conversions("win-back-30d")
    ]


@pytest.fixture
async def buyers(segmenter: Segmenter, store: SqlStore, clock: SimulatedClock) -> dict[str, str]:
    """Olga (sent the win-back email), Ivan (held out) and Petr (not in the audience), each
    with a first order before the campaign."""
    await segmenter.apply_events(
        _records(
            purchase("first-olga", T0, customer=OLGA, total="100.00"),
            purchase("first-ivan", T0, customer=IVAN, total="100.00"),
            purchase("first-petr", T0, customer=PETR, total="100.00"),
        )
    )
    ids = {
        name: await _buyer(store, c) for name, c in (("olga", OLGA), ("ivan", IVAN), ("petr", PETR))
    }
    await _message(store, "wb-olga", ids["olga"], status="sent", reason="send_now")
    await _message(store, "wb-ivan", ids["ivan"], status="holdout", reason="holdout", holdout=True)
    await _message(
        store, "wb-petr", ids["petr"], status="not_in_audience", reason="not_in_audience"
    )
    return ids


async def test_a_treated_and_a_held_out_buyer_who_buy_in_the_window_convert_once_each(
    segmenter: Segmenter, store: SqlStore, clock: SimulatedClock, buyers: dict[str, str]
) -> None:
    bought_at = SENT_AT + timedelta(days=10)
    clock.set(bought_at)
    again = _records(
        purchase("olga-2", bought_at, customer=OLGA, total="1200.00"),
        purchase("ivan-2", bought_at, customer=IVAN, total="800.00"),
        purchase("petr-2", bought_at, customer=PETR, total="500.00"),
    )
    await segmenter.apply_events(again)

    assert await _conversions(store) == [
        ("wb-ivan", True, "order-ivan-2", Decimal("800.00"), bought_at),
        ("wb-olga", False, "order-olga-2", Decimal("1200.00"), bought_at),
    ]

    await segmenter.apply_events(again)  # the same events delivered again
    assert len(await _conversions(store)) == 2


async def test_a_purchase_outside_the_attribution_window_is_no_conversion(
    segmenter: Segmenter, store: SqlStore, clock: SimulatedClock, buyers: dict[str, str]
) -> None:
    late = SENT_AT + timedelta(days=30, minutes=1)
    clock.set(late)
    await segmenter.apply_events(
        _records(
            purchase("olga-late", late, customer=OLGA),
            purchase("ivan-late", late, customer=IVAN),
            purchase("olga-early", SENT_AT - timedelta(minutes=1), customer=OLGA),
        )
    )
    assert await _conversions(store) == []


async def test_a_purchase_missed_by_a_crash_after_the_commit_is_attributed_on_redelivery(
    segmenter: Segmenter, store: SqlStore, clock: SimulatedClock, buyers: dict[str, str]
) -> None:
    bought_at = SENT_AT + timedelta(days=3)
    clock.set(bought_at)
    records = _records(purchase("olga-3", bought_at, customer=OLGA, total="300.00"))
    attribution, segmenter.attribution = segmenter.attribution, None
    await segmenter.apply_events(records)  # committed, then the process died
    assert await _conversions(store) == []

    segmenter.attribution = attribution
    await segmenter.apply_events(records)  # the bus delivers the batch again
    assert [c[0] for c in await _conversions(store)] == ["wb-olga"]


def _report(event_id: str, kind: str, key: str, at: datetime) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": f"message_{kind}",
        "occurred_at": at.isoformat(),
        "customer": OLGA,
        "data": {"message_key": key, "channel": "email"},
    }


async def test_delivery_reports_are_kept_per_message_once(
    segmenter: Segmenter, store: SqlStore, clock: SimulatedClock, buyers: dict[str, str]
) -> None:
    at = SENT_AT + timedelta(minutes=5)
    clock.set(at + timedelta(minutes=1))
    reports = _records(
        _report("d-1", "delivered", "wb-olga", at),
        _report("o-1", "opened", "wb-olga", at + timedelta(minutes=1)),
    )
    await segmenter.apply_events(reports)
    await segmenter.apply_events(reports)

    results = SqlCampaignResults(store.engine)
    kept = await results.campaign_responses("win-back-30d")
    assert [(r.message_key, r.response, r.at) for r in kept] == [
        ("wb-olga", "delivered", at),
        ("wb-olga", "opened", at + timedelta(minutes=1)),
    ]
