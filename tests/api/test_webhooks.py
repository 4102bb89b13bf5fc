"""POST /v1/webhooks/{provider}: a provider's signed delivery reports become message_* events.

The app runs on the in-process bus with a simulated clock, so the replay window is
checked against a moment the test controls. Requests are signed here as a provider
would sign them, from the documented recipe, not with nudge's own code.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from services.ingest.app import create_app
from shared.adapters.bus.kafka import KafkaBus
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.api_keys import SqlApiKeys
from shared.domain.events import parse_event
from shared.settings import Settings
from tests.api.test_events_endpoint import assert_problem
from tests.conftest import T0
from tests.support.ports import free_port

SECRET = "whsec-mailer-0123456789abcdef"
TOPIC = "nudge.events"
URL = "/v1/webhooks/mailer"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, webhook_secrets={"mailer": SecretStr(SECRET)})


@pytest.fixture
def app(settings: Settings, bus: MemoryBus, api_keys: SqlApiKeys, clock: SimulatedClock) -> FastAPI:
    return create_app(settings, bus.publisher(), api_keys, clock=clock)


def report(status: str = "opened", **changes: Any) -> dict[str, Any]:
    return {
        "message_key": "win-back-30d-0123456789abcdef",
        "status": status,
        "occurred_at": (T0 - timedelta(minutes=1)).isoformat(),
        "recipient": "anna@shop.ru",
        **changes,
    }


def signed(body: bytes, *, at: float | None = None, secret: str = SECRET) -> dict[str, str]:
    """The headers a provider sends: a timestamp and the HMAC of "<timestamp>.<body>"."""
    timestamp = str(int(at if at is not None else T0.timestamp()))
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "X-Nudge-Timestamp": timestamp,
        "X-Nudge-Signature": f"v1={mac.hexdigest()}",
    }


async def post(client: httpx.AsyncClient, *reports: dict[str, Any], **sign: Any) -> httpx.Response:
    body = orjson.dumps({"events": list(reports)})
    return await client.post(URL, content=body, headers=signed(body, **sign))


async def test_a_signed_report_is_published_as_a_message_event(
    anonymous: httpx.AsyncClient, bus: MemoryBus
) -> None:
    response = await post(anonymous, report("opened"))

    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1, "duplicates": 0}
    (record,) = bus.records(TOPIC)
    event = parse_event(record.value)
    assert event.type == "message_opened"
    assert event.customer.identifiers() == {"email": "anna@shop.ru"}
    assert record.key == b"email:anna@shop.ru"


async def test_every_status_becomes_its_own_event_type(
    anonymous: httpx.AsyncClient, bus: MemoryBus
) -> None:
    response = await post(
        anonymous,
        report("delivered"),
        report("opened"),
        report("clicked", url="https://shop.ru/cat-food"),
        report("bounced", bounce="hard"),
        report("complained"),
    )

    assert response.status_code == 202, response.text
    events = {e.type: e for e in (parse_event(r.value) for r in bus.records(TOPIC))}
    assert list(events) == [
        "message_delivered",
        "message_opened",
        "message_clicked",
        "message_bounced",
        "message_complained",
    ]
    assert events["message_clicked"].data.url == "https://shop.ru/cat-food"
    assert events["message_bounced"].data.bounce == "hard"


async def test_a_text_message_report_names_the_buyer_by_phone(
    anonymous: httpx.AsyncClient, bus: MemoryBus
) -> None:
    response = await post(anonymous, report("delivered", recipient="+7 916 123-45-67"))

    assert response.status_code == 202, response.text
    (event,) = [parse_event(r.value) for r in bus.records(TOPIC)]
    assert event.customer.identifiers() == {"phone": "+79161234567"}
    assert event.data.channel == "sms"


async def test_a_retried_webhook_carries_the_same_event_ids(
    anonymous: httpx.AsyncClient, bus: MemoryBus, clock: SimulatedClock
) -> None:
    await post(anonymous, report("opened"), report("clicked"))
    clock.advance(timedelta(minutes=2))
    await post(anonymous, report("opened"), report("clicked"), at=clock.now().timestamp())

    ids = [parse_event(r.value).event_id for r in bus.records(TOPIC)]
    assert len(ids) == 4
    assert ids[:2] == ids[2:]  # the segmenter's dedupe drops the second pair
    assert ids[0] != ids[1]


async def test_a_report_repeated_inside_one_request_is_a_duplicate(
    anonymous: httpx.AsyncClient,
) -> None:
    response = await post(anonymous, report("opened"), report("opened"))
    assert response.json() == {"accepted": 1, "duplicates": 1}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Nudge-Timestamp": str(int(T0.timestamp()))},
        {"X-Nudge-Signature": "v1=" + "0" * 64},
        {"X-Nudge-Timestamp": "yesterday", "X-Nudge-Signature": "v1=" + "0" * 64},
        {"X-Nudge-Timestamp": str(int(T0.timestamp())), "X-Nudge-Signature": "0" * 64},
        {"X-Nudge-Timestamp": str(int(T0.timestamp())), "X-Nudge-Signature": "v1=" + "0" * 64},
    ],
    ids=["none", "no-signature", "no-timestamp", "bad-timestamp", "no-version", "wrong"],
)
async def test_a_missing_or_wrong_signature_is_401_and_publishes_nothing(
    anonymous: httpx.AsyncClient, bus: MemoryBus, headers: dict[str, str]
) -> None:
    response = await anonymous.post(
        URL, json={"events": [report()]}, headers={"Content-Type": "application/json", **headers}
    )

    assert_problem(response, 401, "bad-signature")
    assert bus.records(TOPIC) == []


async def test_a_signature_under_another_secret_is_refused(anonymous: httpx.AsyncClient) -> None:
    response = await post(anonymous, report(), secret="someone else's secret")
    assert_problem(response, 401, "bad-signature")


async def test_a_body_changed_after_signing_is_refused(anonymous: httpx.AsyncClient) -> None:
    body = orjson.dumps({"events": [report()]})
    headers = signed(body)
    changed = body.replace(b"opened", b"clicked")

    response = await anonymous.post(URL, content=changed, headers=headers)

    assert_problem(response, 401, "bad-signature")


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (timedelta(minutes=-5), True),
        (timedelta(minutes=5), True),
        (timedelta(minutes=-5, seconds=-1), False),
        (timedelta(hours=-1), False),
        (timedelta(minutes=5, seconds=1), False),
    ],
    ids=["5-min-old", "5-min-ahead", "stale", "an-hour-old", "too-far-ahead"],
)
async def test_a_timestamp_outside_five_minutes_of_the_clock_is_a_replay(
    anonymous: httpx.AsyncClient, clock: SimulatedClock, offset: timedelta, accepted: bool
) -> None:
    response = await post(anonymous, report(), at=(clock.now() + offset).timestamp())

    if accepted:
        assert response.status_code == 202, response.text
    else:
        body = assert_problem(response, 401, "bad-signature")
        assert "5 minutes" in body["detail"]


async def test_an_unknown_provider_is_404(anonymous: httpx.AsyncClient) -> None:
    body = orjson.dumps({"events": [report()]})
    response = await anonymous.post("/v1/webhooks/stranger", content=body, headers=signed(body))
    assert_problem(response, 404, "not-found")


async def test_a_bad_report_is_refused_with_a_pointer_and_nothing_is_published(
    anonymous: httpx.AsyncClient, bus: MemoryBus
) -> None:
    response = await post(anonymous, report(), report("bounced"), report(recipient="nobody"))

    body = assert_problem(response, 422, "invalid-events")
    assert [(e["index"], e["pointer"]) for e in body["errors"]] == [
        (1, "/events/1"),
        (2, "/events/2/recipient"),
    ]
    assert bus.records(TOPIC) == []


async def test_a_card_number_in_a_report_is_refused_without_its_digits(
    anonymous: httpx.AsyncClient, bus: MemoryBus
) -> None:
    click = report("clicked", url="https://shop.ru/pay?card=4111 1111 1111 1111")

    response = await post(anonymous, click)

    body = assert_problem(response, 422, "card-number")
    assert body["errors"] == [
        {"index": 0, "pointer": "/events/0/url", "detail": body["errors"][0]["detail"]}
    ]
    assert "4111" not in response.text
    assert bus.records(TOPIC) == []


async def test_a_signed_body_that_is_not_json_is_400(anonymous: httpx.AsyncClient) -> None:
    body = b"{not json"
    response = await anonymous.post(URL, content=body, headers=signed(body))
    assert_problem(response, 400, "malformed-json")


@pytest.fixture
async def unreachable_broker(
    settings: Settings, api_keys: SqlApiKeys, clock: SimulatedClock
) -> AsyncIterator[httpx.AsyncClient]:
    bus = KafkaBus(f"127.0.0.1:{free_port()}", publish_timeout=1.0)
    publisher = bus.publisher()
    app = create_app(settings, publisher, api_keys, clock=clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ingest"
    ) as client:
        yield client
    await publisher.close()
    await bus.close()


async def test_a_broker_that_does_not_acknowledge_is_503_so_the_provider_retries(
    unreachable_broker: httpx.AsyncClient,
) -> None:
    response = await post(unreachable_broker, report())

    assert_problem(response, 503, "broker-unavailable")
    assert response.headers["Retry-After"] == "5"
