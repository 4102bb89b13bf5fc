"""Due sends wake one transaction each: a render (up to the render time limit) holds the
database for its own send only, never for a whole batch of them (on SQLite every unit of
work of the process waits for the one open; on PostgreSQL the batch's buyers are locked)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.clock import SimulatedClock
from shared.domain.campaigns import parse_campaign
from shared.domain.rendering import RenderedMessage
from shared.ports.rendering import Renderer
from shared.settings import Settings
from tests.support.campaign_pipeline import pipeline_with

CART = {
    "key": "cart",
    "name": "Abandoned cart",
    "status": "active",
    "trigger": {"event": "track", "name": "cart_updated"},
    "delay": "2h",
    "channels": ["email"],
    "templates": {"email": "abandoned-cart-email"},
    "goal": {"event": "purchase", "within": "3d"},
}


def _cart(n: int, at: datetime) -> dict[str, Any]:
    return {
        "event_id": f"cart-{n}",
        "type": "track",
        "occurred_at": at.isoformat(),
        "customer": {"id": f"buyer-{n}", "email": f"buyer{n}@example.com"},
        "data": {"name": "cart_updated", "properties": {"total": 100 + n}},
    }


class _CrashingSecond:
    """The dispatcher's renderer, but its second render crashes the process's work."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer, self.limits, self.calls = renderer, renderer.limits, 0

    async def parts(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("not used by the dispatcher")

    async def message(self, *args: Any, **kwargs: Any) -> RenderedMessage:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("the dispatcher stops here")
        return await self.renderer.message(*args, **kwargs)

    async def aclose(self) -> None:
        return None


async def test_a_due_send_is_committed_before_the_next_one_renders(
    embedded_settings: Settings, clock: SimulatedClock, tmp_path: Path
) -> None:
    async for pipeline in pipeline_with(
        embedded_settings, clock, tmp_path / "mail", [parse_campaign(CART)]
    ):
        await pipeline.post_events([_cart(n, clock.now()) for n in range(3)])
        await pipeline.settle()
        composer = pipeline.dispatcher.composer
        composer.renderer = _CrashingSecond(composer.renderer)
        clock.advance(timedelta(hours=2))
        with pytest.raises(RuntimeError, match="stops here"):
            await pipeline.dispatcher.scheduled.wake_due()
        async with pipeline.runtime.store.unit_of_work() as uow:
            statuses = sorted(m.status for m in await uow.messages.all())
    # Seen: one transaction for the batch, so every render held the database; the first
    # send's outcome was rolled back with the crash of the second.
    assert statuses[:2] == ["scheduled", "scheduled"]
    assert statuses[2] in ("sending", "sent")
