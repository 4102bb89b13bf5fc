"""Campaigns and templates a marketer saved (the console's stored definitions) are what
the dispatcher sends: switched on, they send with the stored template; paused, they stop."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from services.tools.embedded import Pipeline
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.definitions import SqlDefinitions
from shared.domain.rendering import RenderedMessage
from shared.errors import RendererUnavailable
from shared.ports.rendering import Renderer
from shared.settings import Settings
from tests.conftest import T0
from tests.e2e.stacks import purchase

WELCOME_BACK = {
    "name": "Thanks for the first order",
    "trigger": {"segment": "lifecycle-new", "on": "entered"},
    "channels": ["email"],
    "templates": {"email": "first-order-thanks"},
    "holdout": 0,
    "priority": 50,
    "goal": {"event": "purchase", "within": "14d"},
}
TEMPLATE = {
    "subject": "Thank you for your first order",
    "html": "<p>Thank you! <a href='{{ unsubscribe_url }}'>Unsubscribe</a></p>",
    "text": "Thank you! Unsubscribe: {{ unsubscribe_url }}",
}


async def test_a_stored_campaign_sends_once_switched_on_and_stops_once_paused(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    definitions = SqlDefinitions(pipeline.runtime.store.engine)
    await definitions.templates.put(
        "first-order-thanks", channel="email", content=TEMPLATE, expected_version=None
    )
    campaign = await definitions.campaigns.put(
        "first-order-thanks", definition=WELCOME_BACK, status="draft", expected_version=None
    )
    buyer = {"id": "draft-time", "email": "draft@shop.ru"}
    await pipeline.post_events([purchase("d1", T0 - timedelta(hours=2), customer=buyer)])
    await pipeline.settle()
    assert not _subjects(tmp_path)

    campaign = await definitions.campaigns.put(
        "first-order-thanks",
        definition=WELCOME_BACK,
        status="active",
        expected_version=campaign.version,
    )
    buyer = {"id": "active-time", "email": "active@shop.ru"}
    await pipeline.post_events([purchase("a1", T0 - timedelta(hours=1), customer=buyer)])
    await pipeline.settle()
    assert _subjects(tmp_path) == ["Thank you for your first order"]

    await definitions.campaigns.put(
        "first-order-thanks",
        definition=WELCOME_BACK,
        status="paused",
        expected_version=campaign.version,
    )
    buyer = {"id": "paused-time", "email": "paused@shop.ru"}
    await pipeline.post_events([purchase("p1", T0, customer=buyer)])
    await pipeline.settle()
    assert _subjects(tmp_path) == ["Thank you for your first order"]


def _subjects(tmp_path: Path) -> list[str]:
    mail = tmp_path / "mail"
    subjects = []
    for eml in sorted(mail.glob("*.eml")) if mail.exists() else []:
        for line in eml.read_text().splitlines():
            if line.startswith("Subject: "):
                subjects.append(line.removeprefix("Subject: "))
    return subjects


SLOW_FOR_BIG_SPENDERS = (
    "{% if customer.revenue_total > 1000 %}{% set s = 'x' * 1000 %}"
    "{% for a in s %}{% for b in s %}{% for c in s %}{% endfor %}{% endfor %}{% endfor %}"
    "{% endif %}Thank you! Unsubscribe: {{ unsubscribe_url }}"
)
"""Fine for a small first order; a billion loop steps for a big one."""


@pytest.fixture
def pipeline_settings(embedded_settings: Settings) -> Settings:
    return embedded_settings.model_copy(update={"render_timeout": 0.5})


async def test_a_send_over_the_render_time_limit_is_a_failed_render_and_the_next_goes_out(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    # Saved before renders were bounded (the API refuses it now): stored as it is.
    definitions = SqlDefinitions(pipeline.runtime.store.engine)
    await definitions.templates.put(
        "first-order-thanks",
        channel="email",
        content={**TEMPLATE, "text": SLOW_FOR_BIG_SPENDERS},
        expected_version=None,
    )
    await definitions.campaigns.put(
        "first-order-thanks", definition=WELCOME_BACK, status="active", expected_version=None
    )
    big = {"id": "big-spender", "email": "big@shop.ru"}
    small = {"id": "small-spender", "email": "small@shop.ru"}
    await pipeline.post_events(
        [
            purchase("b1", T0 - timedelta(hours=2), customer=big, total="5000.00"),
            purchase("s1", T0 - timedelta(hours=1), customer=small, total="500.00"),
        ]
    )
    await pipeline.settle()

    async with pipeline.runtime.store.unit_of_work() as uow:
        rows = {m.profile_id: m for m in await uow.messages.all() if m.campaign == WELCOME}
    by_email = {await _email_of(pipeline, p): m for p, m in rows.items()}
    failed = by_email["big@shop.ru"]
    assert (failed.status, failed.reason) == ("render_failed", "render_failed")
    assert failed.error is not None
    assert "longer than 0.5 s" in failed.error
    assert by_email["small@shop.ru"].status == "sent"
    assert _subjects(tmp_path) == ["Thank you for your first order"]


WELCOME = "first-order-thanks"


async def _email_of(pipeline: Pipeline, profile_id: str) -> str | None:
    async with pipeline.runtime.store.unit_of_work() as uow:
        profile = (await uow.profiles.get_many([profile_id]))[profile_id]
    return profile.email


class _DownRenderer:
    """The dispatcher's renderer, but with no render worker to be had while ``down``."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer, self.limits, self.down = renderer, renderer.limits, True

    async def parts(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("the dispatcher renders messages, not parts")

    async def message(self, *args: Any, **kwargs: Any) -> RenderedMessage:
        if self.down:
            raise RendererUnavailable("a render worker exited as it started")
        return await self.renderer.message(*args, **kwargs)

    async def aclose(self) -> None:
        return None


async def test_a_send_with_no_render_worker_is_tried_again_later_and_goes_out(
    pipeline: Pipeline, clock: SimulatedClock, tmp_path: Path
) -> None:
    # Seen: the worker's start failure escaped compose (a poison event in the dispatcher).
    definitions = SqlDefinitions(pipeline.runtime.store.engine)
    await definitions.templates.put(
        WELCOME, channel="email", content=TEMPLATE, expected_version=None
    )
    await definitions.campaigns.put(
        WELCOME, definition=WELCOME_BACK, status="active", expected_version=None
    )
    composer = pipeline.dispatcher.composer
    down = _DownRenderer(composer.renderer)
    composer.renderer = down
    buyer = {"id": "no-worker", "email": "later@shop.ru"}
    await pipeline.post_events([purchase("w1", T0 - timedelta(hours=1), customer=buyer)])
    await pipeline.settle()
    async with pipeline.runtime.store.unit_of_work() as uow:
        (waiting,) = [m for m in await uow.messages.all() if m.campaign == WELCOME]
    assert (waiting.status, waiting.reason) == ("scheduled", "renderer_unavailable")
    assert not _subjects(tmp_path)

    down.down = False
    clock.advance(pipeline.dispatcher.timing.retry_after)
    await pipeline.settle()
    async with pipeline.runtime.store.unit_of_work() as uow:
        (sent,) = [m for m in await uow.messages.all() if m.campaign == WELCOME]
    assert sent.status == "sent"
    assert _subjects(tmp_path) == ["Thank you for your first order"]
