"""The whole pipeline, embedded (on SQLite and PostgreSQL): campaigns that events start,
and campaigns that a moment of the buyer's own rhythm starts.

An abandoned cart is reminded two hours later, unless the buyer ordered meanwhile;
the monthly basket reminder goes three days before the order the buyer's rhythm
expects, and a buyer who orders earlier gets the reminder of the new rhythm, not
the old one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.tools.embedded import Pipeline
from shared.adapters.clock import SimulatedClock
from shared.domain.campaigns import parse_campaign
from shared.ports.bus import Record
from shared.ports.store import MessageRecord
from shared.settings import Settings
from tests.e2e.stacks import purchase
from tests.support.campaign_pipeline import STORES, on_store, pipeline_with

ANNA = {"id": "shop-anna", "email": "anna@example.com"}
BORIS = {"id": "shop-boris", "email": "boris@example.com"}

ABANDONED_CART = {
    "key": "cart",
    "name": "Abandoned cart",
    "status": "active",
    "trigger": {"event": "track", "name": "cart_updated"},
    "delay": "2h",
    "channels": ["email"],
    "templates": {"email": "abandoned-cart-email"},
    "goal": {"event": "purchase", "within": "3d"},
}
MONTHLY_BASKET = {
    "key": "basket",
    "name": "Monthly basket",
    "status": "active",
    "trigger": {"moment": "expected_next_order_at", "before": "3d"},
    "channels": ["email"],
    "templates": {"email": "monthly-basket-email"},
    "goal": {"event": "purchase", "within": "7d"},
}


def _cart(event_id: str, at: datetime, customer: dict[str, str], total: int) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "track",
        "occurred_at": at.isoformat(),
        "customer": customer,
        "data": {"name": "cart_updated", "properties": {"total": total}},
    }


async def _messages(pipeline: Pipeline) -> list[MessageRecord]:
    async with pipeline.runtime.store.unit_of_work() as uow:
        return await uow.messages.all()


def _mails(mail: Path) -> dict[str, str]:
    """Who the folder provider mailed, and what: recipient to the ``.eml`` text."""
    found: dict[str, str] = {}
    for path in mail.glob("*.eml"):
        text = path.read_text()
        (to,) = (line.removeprefix("To: ") for line in text.splitlines() if line.startswith("To:"))
        found[to] = text
    return found


async def test_an_abandoned_cart_is_reminded_two_hours_later_unless_the_buyer_ordered(
    embedded_settings: Settings, clock: SimulatedClock, tmp_path: Path
) -> None:
    mail = tmp_path / "mail"
    async for pipeline in pipeline_with(
        embedded_settings, clock, mail, [parse_campaign(ABANDONED_CART)]
    ):
        await pipeline.post_events(
            [_cart("cart-a", clock.now(), ANNA, 4999), _cart("cart-b", clock.now(), BORIS, 1200)]
        )
        await pipeline.settle()
        assert sorted(m.status for m in await _messages(pipeline)) == ["scheduled", "scheduled"]

        clock.advance(timedelta(hours=1))
        await pipeline.post_events([purchase("boris-order", clock.now(), customer=BORIS)])
        await pipeline.settle()
        assert _mails(mail) == {}

        clock.advance(timedelta(hours=1))
        await pipeline.settle()
        messages = {m.profile_id: m for m in await _messages(pipeline)}

    by_status = {m.status: m for m in messages.values()}
    assert set(by_status) == {"sent", "converted"}
    assert by_status["sent"].sent_at == clock.now()
    assert by_status["sent"].occurrence_id == "cart-a"
    assert list(_mails(mail)) == ["anna@example.com"]
    assert "4999 in all" in _mails(mail)["anna@example.com"]


async def test_the_monthly_basket_reminder_follows_the_buyer_s_rhythm(
    embedded_settings: Settings, clock: SimulatedClock, tmp_path: Path
) -> None:
    mail = tmp_path / "mail"
    start = clock.now()
    async for pipeline in pipeline_with(
        embedded_settings, clock, mail, [parse_campaign(MONTHLY_BASKET)]
    ):
        # Anna orders every 30 days; Boris too, but orders again 10 days early.
        for buyer in (ANNA, BORIS):
            await pipeline.post_events(
                [
                    purchase(f"{buyer['id']}-{n}", start - timedelta(days=30 * n), customer=buyer)
                    for n in (2, 1, 0)
                ]
            )
        await pipeline.settle()
        planned = {m.profile_id: m for m in await _messages(pipeline)}
        assert {m.scheduled_for for m in planned.values()} == {start + timedelta(days=27)}

        clock.advance(timedelta(days=20))
        await pipeline.post_events([purchase("boris-early", clock.now(), customer=BORIS)])
        await pipeline.settle()
        clock.set(start + timedelta(days=27))
        await pipeline.settle()
        messages = await _messages(pipeline)

    statuses = sorted((m.status, m.scheduled_for) for m in messages)
    assert statuses == [
        ("moment_moved", start + timedelta(days=27)),
        ("scheduled", start + timedelta(days=20 + 30 - 3)),  # Boris's new rhythm: 30 days
        ("sent", start + timedelta(days=27)),
    ]
    assert list(_mails(mail)) == ["anna@example.com"]


@pytest.fixture(params=STORES)
def embedded_settings(request: pytest.FixtureRequest, embedded_settings: Settings) -> Settings:
    return on_store(request, embedded_settings)


async def test_an_event_the_segmenter_has_not_applied_in_time_is_skipped_not_a_crash(
    embedded_settings: Settings, clock: SimulatedClock, tmp_path: Path
) -> None:
    """The dispatcher waits for the segmenter to apply an event before acting on it; one
    that never comes in time (the segmenter stopped) is logged and skipped, and the
    batch goes on."""
    async for pipeline in pipeline_with(
        embedded_settings, clock, tmp_path / "mail", [parse_campaign(ABANDONED_CART)]
    ):
        triggers = pipeline.dispatcher.triggers
        triggers.applied_timeout = 0.05
        cart = _cart("cart-unapplied", clock.now(), ANNA, 4999)
        published = Record("nudge.events", 0, 0, b"id:shop-anna", orjson.dumps(cart))
        await triggers.handle_events([published])
        assert await _messages(pipeline) == []
