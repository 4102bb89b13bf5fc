"""Campaigns and templates a marketer saved (the console's stored definitions) are what
the dispatcher sends: switched on, they send with the stored template; paused, they stop."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from services.embedded import Pipeline
from shared.adapters.store.definitions import SqlDefinitions
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
