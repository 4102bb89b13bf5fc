"""The whole pipeline, embedded (on SQLite and on PostgreSQL): every campaign decision
is recorded with its message.

A held-out buyer gets nothing and is recorded as held out; a buyer over the weekly
cap is recorded capped; a send that falls in the buyer's quiet hours waits in the
scheduled-sends table and goes out when the simulated clock reaches the morning; a
buyer who orders before a delayed send is dropped with the reason ``converted``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.tools.embedded import Pipeline
from shared.adapters.clock import SimulatedClock
from shared.domain.campaigns import Campaign, parse_campaign
from shared.domain.decisions import in_holdout
from shared.ports.store import MessageRecord
from shared.settings import Settings
from tests.conftest import T0
from tests.e2e.stacks import purchase
from tests.support.campaign_pipeline import STORES, on_store, pipeline_with


def _campaign(key: str, **fields: Any) -> Campaign:
    """An active email campaign on entering ``no-order-30d`` (30 days without an order)."""
    return parse_campaign(
        {
            "key": key,
            "name": key,
            "status": "active",
            "trigger": {"segment": "no-order-30d", "on": "entered"},
            "channels": ["email"],
            "templates": {"email": "win-back-email"},
            **fields,
        }
    )


async def _messages(pipeline: Pipeline) -> dict[str, MessageRecord]:
    async with pipeline.runtime.store.unit_of_work() as uow:
        return {m.campaign + "/" + m.profile_id: m for m in await uow.messages.all()}


def _mailed(mail: Path) -> list[str]:
    """Who the folder provider mailed: the ``To`` of every ``.eml`` it wrote."""
    return sorted(
        line.removeprefix("To: ")
        for path in mail.glob("*.eml")
        for line in path.read_text().splitlines()
        if line.startswith("To: ")
    )


async def _first_order_then_30_days(
    pipeline: Pipeline, clock: SimulatedClock, customers: Sequence[dict[str, str]]
) -> None:
    await pipeline.post_events(
        [purchase(f"order-{n}", clock.now(), customer=c) for n, c in enumerate(customers)]
    )
    await pipeline.settle()
    clock.advance(timedelta(days=30))
    await pipeline.settle()


def _buyer_id(campaign: str, share: float, *, held_out: bool) -> str:
    """A profile id the campaign's deterministic draw puts in the arm asked for."""
    for n in range(1000):
        candidate = str(uuid.uuid5(uuid.NAMESPACE_URL, f"buyer-{n}"))
        if in_holdout(campaign, candidate, share) == held_out:
            return candidate
    raise AssertionError("no such buyer in 1000 draws")


async def test_a_held_out_buyer_gets_nothing_and_is_recorded_as_held_out(
    embedded_settings: Settings, clock: SimulatedClock, tmp_path: Path
) -> None:
    campaign = _campaign("win-back-test", holdout=0.5)
    control = _buyer_id(campaign.key, 0.5, held_out=True)
    treated = _buyer_id(campaign.key, 0.5, held_out=False)
    async for pipeline in pipeline_with(embedded_settings, clock, tmp_path / "mail", [campaign]):
        await _first_order_then_30_days(
            pipeline,
            clock,
            [
                {"profile_id": control, "email": "control@example.com"},
                {"profile_id": treated, "email": "treated@example.com"},
            ],
        )
        messages = await _messages(pipeline)
        registry = pipeline.dispatcher.metrics.registry

    held = messages[f"win-back-test/{control}"]
    assert (held.status, held.reason, held.holdout, held.sent_at) == (
        "holdout",
        "holdout",
        True,
        None,
    )
    assert [r.code for r in held.decision] == ["holdout"]
    sent = messages[f"win-back-test/{treated}"]
    assert (sent.status, sent.holdout) == ("sent", False)
    assert _mailed(tmp_path / "mail") == ["treated@example.com"]
    counted = {"campaign": "win-back-test", "reason": "holdout"}
    assert registry.get_sample_value("nudge_messages_not_sent_total", counted) == 1
    sent_email = {"campaign": "win-back-test", "channel": "email", "status": "sent"}
    assert registry.get_sample_value("nudge_messages_total", sent_email) == 1


async def test_a_buyer_over_the_weekly_cap_is_recorded_capped_and_the_higher_priority_wins(
    embedded_settings: Settings, clock: SimulatedClock, tmp_path: Path
) -> None:
    settings = embedded_settings.model_copy(update={"cap_per_week": 1})
    rescue = _campaign("rescue", priority=70)
    reminder = _campaign("reminder", priority=30)
    anna = {"id": "shop-anna", "email": "anna@example.com"}
    async for pipeline in pipeline_with(settings, clock, tmp_path / "mail", [rescue, reminder]):
        await _first_order_then_30_days(pipeline, clock, [anna])
        messages = await _messages(pipeline)

    by_campaign = {m.campaign: m for m in messages.values()}
    assert by_campaign["rescue"].status == "sent"
    assert (by_campaign["rescue"].priority, by_campaign["reminder"].priority) == (70, 30)
    capped = by_campaign["reminder"]
    assert (capped.status, capped.reason, capped.holdout, capped.sent_at) == (
        "capped",
        "capped",
        False,
        None,
    )
    assert capped.error is not None
    assert "frequency cap" in capped.error
    assert _mailed(tmp_path / "mail") == ["anna@example.com"]


async def test_a_send_in_quiet_hours_waits_for_the_buyer_s_morning(
    embedded_settings: Settings, clock: SimulatedClock, tmp_path: Path
) -> None:
    # 09:00 UTC is 05:00 in New York (EDT): quiet until 09:00 there, 13:00 UTC.
    settings = embedded_settings.model_copy(update={"default_timezone": "America/New_York"})
    anna = {"id": "shop-anna", "email": "anna@example.com"}
    morning = datetime(2026, 4, 1, 13, 0, tzinfo=T0.tzinfo)
    async for pipeline in pipeline_with(
        settings, clock, tmp_path / "mail", [_campaign("win-back")]
    ):
        await _first_order_then_30_days(pipeline, clock, [anna])
        assert clock.now() < morning
        (waiting,) = (await _messages(pipeline)).values()
        assert (waiting.status, waiting.reason, waiting.scheduled_for) == (
            "scheduled",
            "quiet_hours",
            morning,
        )
        assert await pipeline.dispatcher.scheduled.measure_queue() == 1

        clock.set(morning - timedelta(minutes=1))
        await pipeline.settle()
        assert _mailed(tmp_path / "mail") == []

        clock.set(morning)
        await pipeline.settle()
        (sent,) = (await _messages(pipeline)).values()
        async with pipeline.runtime.store.unit_of_work() as uow:
            left = await uow.schedule.count_pending()

    assert _mailed(tmp_path / "mail") == ["anna@example.com"]
    assert (sent.status, sent.sent_at, sent.key) == ("sent", morning, waiting.key)
    assert [r.code for r in sent.decision][:1] == ["quiet_hours"]
    assert left == 0


async def test_a_buyer_who_orders_before_a_delayed_send_is_dropped_as_converted(
    embedded_settings: Settings, clock: SimulatedClock, tmp_path: Path
) -> None:
    campaign = _campaign("win-back-later", delay="2d", goal={"event": "purchase", "within": "14d"})
    anna = {"id": "shop-anna", "email": "anna@example.com"}
    boris = {"id": "shop-boris", "email": "boris@example.com"}
    async for pipeline in pipeline_with(embedded_settings, clock, tmp_path / "mail", [campaign]):
        await _first_order_then_30_days(pipeline, clock, [anna, boris])
        statuses = sorted(m.status for m in (await _messages(pipeline)).values())
        assert statuses == ["scheduled", "scheduled"]

        clock.advance(timedelta(days=1))
        await pipeline.post_events([purchase("anna-again", clock.now(), customer=anna)])
        await pipeline.settle()
        clock.advance(timedelta(days=1))
        await pipeline.settle()
        messages = await _messages(pipeline)

    by_status = {m.status: m for m in messages.values()}
    assert set(by_status) == {"converted", "sent"}
    dropped = by_status["converted"]
    assert (dropped.reason, dropped.sent_at) == ("converted", None)
    assert [r.code for r in dropped.decision] == ["delay", "converted"]
    assert _mailed(tmp_path / "mail") == ["boris@example.com"]


async def test_a_push_goes_to_the_buyer_s_app_and_a_buyer_without_one_gets_the_email(
    embedded_settings: Settings, clock: SimulatedClock, tmp_path: Path
) -> None:
    campaign = _campaign(
        "app-first",
        channels=["push", "email"],
        templates={"push": "second-order-push", "email": "win-back-email"},
    )
    anna = {"id": "shop-anna", "email": "anna@example.com", "app_install_id": "install-anna"}
    boris = {"id": "shop-boris", "email": "boris@example.com"}
    async for pipeline in pipeline_with(embedded_settings, clock, tmp_path / "mail", [campaign]):
        await _first_order_then_30_days(pipeline, clock, [anna, boris])
        messages = await _messages(pipeline)

    channels = sorted((m.channel, m.status) for m in messages.values())
    assert channels == [("email", "sent"), ("push", "sent")]
    (pushed,) = (m for m in messages.values() if m.channel == "push")
    notification = orjson.loads(
        (embedded_settings.data_dir / "push" / f"{pushed.key}.json").read_bytes()
    )
    assert notification["token"] == "install-anna"
    assert notification["title"] == "Free delivery on your second order"
    assert _mailed(tmp_path / "mail") == ["boris@example.com"]


@pytest.fixture(params=STORES)
def embedded_settings(request: pytest.FixtureRequest, embedded_settings: Settings) -> Settings:
    return on_store(request, embedded_settings, public_url="https://nudge.shop.example")


async def test_a_buyer_with_few_opens_of_their_own_waits_for_the_hour_the_base_opens(
    embedded_settings: Settings, clock: SimulatedClock, tmp_path: Path
) -> None:
    """Anna never opened an email; the shop's other buyers open theirs around 17:00, so
    her win-back waits from 09:00 until then, and the row says whose habit decided it."""
    openers = [{"id": f"opener-{n}", "email": f"opener{n}@example.com"} for n in range(8)]
    anna = {"id": "shop-anna", "email": "anna@example.com"}
    evening = T0.replace(hour=17) + timedelta(days=30)
    async for pipeline in pipeline_with(
        embedded_settings, clock, tmp_path / "mail", [_campaign("win-back")]
    ):
        opened_at = (T0 - timedelta(days=3)).replace(hour=17)
        await pipeline.post_events(
            [
                {
                    "event_id": f"open-{n}-{k}",
                    "type": "message_opened",
                    "occurred_at": (opened_at + timedelta(days=k)).isoformat(),
                    "customer": opener,
                    "data": {"message_key": f"m-{n}-{k}", "channel": "email"},
                }
                for n, opener in enumerate(openers)
                for k in range(2)
            ]
        )
        await _first_order_then_30_days(pipeline, clock, [anna])
        assert clock.now() == T0 + timedelta(days=30)  # 09:00 UTC, out of quiet hours
        waiting = next(m for m in (await _messages(pipeline)).values() if m.status == "scheduled")
        assert (waiting.reason, waiting.scheduled_for) == ("best_hour", evening)
        assert "similar buyers'" in next(
            r.detail for r in waiting.decision if r.code == "best_hour"
        )

        clock.set(evening)
        await pipeline.settle()
    assert _mailed(tmp_path / "mail") == ["anna@example.com"]
