"""The whole pipeline, embedded: a win-back email's one-click unsubscribe link, and a
provider's delivery webhook, change the buyer's profile, and the next win-back is held.

The email is read back from the ``.eml`` the folder provider wrote, as a mail client
would read it; the link in it is posted to as a mail client posts RFC 8058's one click.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import re
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
from pydantic import SecretStr

from services.tools.embedded import Pipeline
from shared.adapters.clock import SimulatedClock
from shared.domain.profile import Profile
from shared.settings import Settings
from tests.e2e.stacks import purchase

ANNA = {"id": "shop-anna", "email": "anna@example.com"}
WEBHOOK_SECRET = "whsec-mailer-0123456789abcdef"


@pytest.fixture
def pipeline_settings(embedded_settings: Settings) -> Settings:
    return embedded_settings.model_copy(
        update={
            "public_url": "https://nudge.shop.example",
            "webhook_secrets": {"mailer": SecretStr(WEBHOOK_SECRET)},
        }
    )


async def _win_back(pipeline: Pipeline, clock: SimulatedClock, order: str) -> None:
    """An order now, then 30 days without one: the buyer enters ``no-order-30d``."""
    await pipeline.post_events([purchase(order, clock.now(), customer=ANNA)])
    await pipeline.settle()
    clock.advance(timedelta(days=30))
    await pipeline.settle()


def _mails(tmp_path: Path) -> list[EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted((tmp_path / "mail").glob("*.eml"))
    ]


async def _anna(pipeline: Pipeline) -> Profile:
    async with pipeline.runtime.store.unit_of_work() as uow:
        profile = await uow.profiles.find("id", "shop-anna")
    assert profile is not None
    return profile


async def _statuses(pipeline: Pipeline) -> list[str]:
    async with pipeline.runtime.store.unit_of_work() as uow:
        return [m.status for m in await uow.messages.all()]


async def test_one_click_in_the_win_back_email_unsubscribes_the_buyer(
    pipeline: Pipeline, clock: SimulatedClock, tmp_path: Path
) -> None:
    await _win_back(pipeline, clock, "order-1")

    (mail,) = _mails(tmp_path)
    header = str(mail["List-Unsubscribe"])
    assert re.fullmatch(r"<https://nudge\.shop\.example/v1/unsubscribe/[\w.-]+>", header)
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = header.strip("<>")
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None
    assert html is not None
    assert link in text.get_content()
    assert f'href="{link}"' in html.get_content()

    clicked = await pipeline.http.post(urlsplit(link).path, data={"List-Unsubscribe": "One-Click"})
    assert clicked.status_code == 200, clicked.text
    await pipeline.settle()

    anna = await _anna(pipeline)
    assert anna.consents == {"email": False}
    assert anna.barred_from("email") == "unsubscribed"

    await _win_back(pipeline, clock, "order-2")  # a second stay in the segment: no email
    assert await _statuses(pipeline) == ["sent", "unsubscribed"]
    assert len(_mails(tmp_path)) == 1


def _signed(body: bytes, at: float) -> dict[str, str]:
    timestamp = str(int(at))
    mac = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "X-Nudge-Timestamp": timestamp,
        "X-Nudge-Signature": f"v1={mac.hexdigest()}",
    }


async def test_delivery_reports_keep_engagement_and_a_hard_bounce_holds_the_next_email(
    pipeline: Pipeline, clock: SimulatedClock, tmp_path: Path
) -> None:
    await _win_back(pipeline, clock, "order-1")
    (mail,) = _mails(tmp_path)
    key = str(mail["Message-ID"]).strip("<>").partition("@")[0]
    sent, opened = clock.now(), clock.now() + timedelta(hours=2)
    reports = [
        {"message_key": key, "status": "delivered", "occurred_at": sent.isoformat()},
        {"message_key": key, "status": "opened", "occurred_at": opened.isoformat()},
        {
            "message_key": key,
            "status": "bounced",
            "bounce": "hard",
            "occurred_at": sent.isoformat(),
        },
    ]
    body = orjson.dumps({"events": [{**r, "recipient": "Anna@Example.com"} for r in reports]})

    for _attempt in range(2):  # the provider sends it again: nothing counts twice
        posted = await pipeline.http.post(
            "/v1/webhooks/mailer", content=body, headers=_signed(body, clock.now().timestamp())
        )
        assert posted.status_code == 202, posted.text
        await pipeline.settle()

    anna = await _anna(pipeline)
    stats = anna.engagement["email"]
    assert (stats.delivered, stats.opens, stats.bounces) == (1, 1, 1)
    assert stats.last_open_at == opened
    assert anna.suppressions == {"email": "bounced"}

    await _win_back(pipeline, clock, "order-2")
    assert await _statuses(pipeline) == ["sent", "suppressed"]
