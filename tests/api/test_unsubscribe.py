"""GET|POST /v1/unsubscribe/{token}: a buyer leaves a channel with one click (RFC 8058).

The token is signed as the dispatcher signs it, with the key kept under the test's
data dir; the app runs on the in-process bus with a simulated clock.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from services.bootstrap import unsubscribe_key
from services.ingest.app import create_app
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.api_keys import SqlApiKeys
from shared.domain.events import UnsubscribedEvent, parse_event
from shared.domain.unsubscribe import sign
from shared.settings import Settings
from tests.api.test_events_endpoint import assert_problem
from tests.conftest import T0

BUYER = "0b3e2c1a-7f4d-4e5b-9a8c-1d2e3f4a5b6c"
TOPIC = "nudge.events"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def app(settings: Settings, bus: MemoryBus, api_keys: SqlApiKeys, clock: SimulatedClock) -> FastAPI:
    return create_app(settings, bus.publisher(), api_keys, clock=clock)


@pytest.fixture
def token(settings: Settings) -> str:
    return sign(BUYER, "email", "win-back-30d", unsubscribe_key(settings))


async def test_the_link_opens_a_page_that_asks_to_confirm_and_changes_nothing(
    anonymous: httpx.AsyncClient, bus: MemoryBus, token: str
) -> None:
    response = await anonymous.get(f"/v1/unsubscribe/{token}")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "Stop receiving emails from us?" in page
    assert f'<form method="post" action="{token}">' in page
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in page
    assert bus.records(TOPIC) == []


async def test_one_click_publishes_unsubscribed_for_the_buyer_and_channel(
    anonymous: httpx.AsyncClient, bus: MemoryBus, token: str
) -> None:
    response = await anonymous.post(f"/v1/unsubscribe/{token}", data=ONE_CLICK)

    assert response.status_code == 200, response.text
    assert "You will receive no more emails from us." in response.text
    (record,) = bus.records(TOPIC)
    event = parse_event(record.value)
    assert isinstance(event, UnsubscribedEvent)
    assert event.customer.identifiers() == {"profile_id": BUYER}
    assert event.data.channel == "email"
    assert event.data.campaign == "win-back-30d"
    assert event.occurred_at == T0
    assert record.key == f"profile_id:{BUYER}".encode()


async def test_one_click_as_a_mail_client_posts_it_multipart(
    anonymous: httpx.AsyncClient, bus: MemoryBus, token: str
) -> None:
    response = await anonymous.post(
        f"/v1/unsubscribe/{token}", files={"List-Unsubscribe": (None, "One-Click")}
    )

    assert response.status_code == 200, response.text
    assert len(bus.records(TOPIC)) == 1


async def test_each_click_is_an_event_of_its_own(
    anonymous: httpx.AsyncClient, bus: MemoryBus, token: str, clock: SimulatedClock
) -> None:
    await anonymous.post(f"/v1/unsubscribe/{token}", data=ONE_CLICK)
    clock.advance(timedelta(hours=1))  # a buyer who consented again meanwhile must leave again
    await anonymous.post(f"/v1/unsubscribe/{token}", data=ONE_CLICK)

    ids = {parse_event(r.value).event_id for r in bus.records(TOPIC)}
    assert len(ids) == 2


async def test_a_post_without_the_one_click_body_is_refused(
    anonymous: httpx.AsyncClient, bus: MemoryBus, token: str
) -> None:
    response = await anonymous.post(f"/v1/unsubscribe/{token}", data={"List-Unsubscribe": "yes"})

    body = assert_problem(response, 422, "invalid-request")
    assert body["errors"][0]["pointer"] == "/List-Unsubscribe"
    assert bus.records(TOPIC) == []


def _altered(token: str) -> str:
    payload, mac = token.split(".")
    flipped = "A" if mac[0] != "A" else "B"
    return f"{payload}.{flipped}{mac[1:]}"


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_an_altered_token_is_400_and_publishes_nothing(
    anonymous: httpx.AsyncClient, bus: MemoryBus, token: str, method: str
) -> None:
    response = await anonymous.request(
        method, f"/v1/unsubscribe/{_altered(token)}", data=ONE_CLICK if method == "POST" else None
    )

    assert_problem(response, 400, "bad-token")
    assert bus.records(TOPIC) == []


@pytest.mark.parametrize(
    "forged",
    ["not-a-token", "YWJj.ZGVm", sign(BUYER, "email", None, b"another key of 32 characters....")],
    ids=["garbage", "unsigned", "another-key"],
)
async def test_a_token_nudge_did_not_sign_is_400(anonymous: httpx.AsyncClient, forged: str) -> None:
    response = await anonymous.post(f"/v1/unsubscribe/{forged}", data=ONE_CLICK)
    assert_problem(response, 400, "bad-token")


async def test_the_links_need_no_api_key_but_events_still_do(
    anonymous: httpx.AsyncClient, token: str
) -> None:
    assert (await anonymous.get(f"/v1/unsubscribe/{token}")).status_code == 200
    assert (await anonymous.post("/v1/events", json={})).status_code == 401


async def test_a_configured_key_signs_and_checks_the_links(
    tmp_path: Path, bus: MemoryBus, api_keys: SqlApiKeys, clock: SimulatedClock
) -> None:
    key = "u" * 32
    settings = Settings(data_dir=tmp_path / "data", unsubscribe_key=SecretStr(key))
    app = create_app(settings, bus.publisher(), api_keys, clock=clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ingest"
    ) as client:
        good = await client.get(f"/v1/unsubscribe/{sign(BUYER, 'sms', None, key.encode())}")
    assert good.status_code == 200
    assert "text messages" in good.text
    assert not (tmp_path / "data" / "unsubscribe.key").exists()
