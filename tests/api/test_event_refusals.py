"""What ingest refuses or rewrites before an event leaves it: card numbers, phones, tokens.

A card number anywhere in an event refuses the whole request, naming the field and
never repeating the digits; phones and emails are published in one spelling; a bank
card token is published only as its keyed hash. ``client`` (tests/api/conftest.py)
sends a valid ``events:write`` key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import structlog
from pydantic import SecretStr

from shared.adapters.bus.memory import MemoryBus
from shared.domain.identifiers import keyed_token_hash
from shared.logging import configure_logging
from shared.settings import Settings
from tests.conftest import T0
from tests.e2e.stacks import identify, purchase

TOPIC = "nudge.events"
HMAC_KEY = "test-token-key-0123456789abcdef0123456789abcdef"
CARD = "4111111111111111"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, token_hmac_key=SecretStr(HMAC_KEY))


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """Captured output; the test calls ``configure_logging`` (capture swaps stderr per phase)."""
    yield capsys
    structlog.reset_defaults()


def order(n: int, **customer: str) -> dict[str, Any]:
    return purchase(f"e-{n}", T0, customer=customer or {"id": f"c-{n}"})


def digits_of(text: str) -> str:
    return re.sub(r"\D", "", text)


def json_of(value: bytes) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(value)
    return loaded


def assert_card_refused(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == "/problems/card-number"
    assert body["title"] == "Card number"
    assert CARD not in digits_of(response.text)
    return body


# --- card numbers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [CARD, "4111 1111 1111 1111", "4111-1111-1111-1111", "card 4111 1111-1111 1111 exp 12/29"],
    ids=["bare", "spaced", "dashed", "in-a-sentence"],
)
async def test_a_card_number_in_an_item_name_is_refused_at_its_field(
    client: httpx.AsyncClient, bus: MemoryBus, written: str
) -> None:
    event = order(1)
    event["data"]["items"][0]["name"] = written

    body = assert_card_refused(await client.post("/v1/events", json=event))

    assert body["errors"] == [
        {"pointer": "/data/items/0/name", "detail": body["errors"][0]["detail"]}
    ]
    assert "card number" in body["errors"][0]["detail"]
    assert bus.records(TOPIC) == []


@pytest.mark.parametrize(
    ("where", "pointer"),
    [
        ({"customer": {"id": "4111-1111-1111-1111"}}, "/customer/id"),
        (
            {"customer": {"id": "c-1", "loyalty_card": "4111 1111 1111 1111"}},
            "/customer/loyalty_card",
        ),
        (
            {"data": {"traits": {"note": "paid by 4111 1111 1111 1111, call back"}}},
            "/data/traits/note",
        ),
        ({"data": {"traits": {"card": int(CARD)}}}, "/data/traits/card"),
        ({"data": {"traits": {"4111-1111-1111-1111": "yes"}}}, "/data/traits"),
        ({"event_id": f"pos-{CARD}"}, "/event_id"),
    ],
    ids=["customer-id", "loyalty-card", "free-text-trait", "integer", "key", "event-id"],
)
async def test_a_card_number_anywhere_in_an_identify_event_is_refused_at_its_field(
    client: httpx.AsyncClient, bus: MemoryBus, where: dict[str, Any], pointer: str
) -> None:
    event = {**identify("e-1", T0, customer={"id": "c-1"}), **where}

    body = assert_card_refused(await client.post("/v1/events", json=event))

    assert [e["pointer"] for e in body["errors"]] == [pointer]
    assert bus.records(TOPIC) == []


async def test_a_batch_with_one_card_number_is_refused_whole(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    bad = order(3)
    bad["data"]["items"][0]["name"] = "5555 5555 5555 4444"
    events = [order(1), order(2), bad, order(4)]

    body = assert_card_refused(await client.post("/v1/events", json={"events": events}))

    assert body["errors"] == [
        {
            "index": 2,
            "pointer": "/events/2/data/items/0/name",
            "detail": body["errors"][0]["detail"],
        }
    ]
    assert "1 of 4 events" in body["detail"]
    assert "5555555555554444" not in digits_of(str(body))
    assert bus.records(TOPIC) == []


async def test_a_card_number_is_refused_before_other_errors_could_repeat_it(
    client: httpx.AsyncClient,
) -> None:
    event = order(1)
    event["type"] = f"pay {CARD}"  # an unknown type would be quoted back otherwise

    body = assert_card_refused(await client.post("/v1/events", json=event))

    assert [e["pointer"] for e in body["errors"]] == ["/type"]


async def test_no_card_digits_reach_the_logs_or_the_metrics(
    client: httpx.AsyncClient, logs: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    configure_logging("DEBUG")
    event = order(1)
    event["data"]["items"][0]["name"] = "4111 1111 1111 1111"

    assert_card_refused(await client.post("/v1/events", json=event))
    metrics = (await client.get("/metrics")).text

    captured = logs.readouterr()
    output = captured.out + captured.err + caplog.text
    assert "card number refused" in output
    assert "/data/items/0/name" in output
    assert CARD not in digits_of(output)
    assert "1111 1111" not in output
    assert 'nudge_events_refused_total{reason="card-number"} 1.0' in metrics
    assert CARD not in digits_of(metrics)


@pytest.mark.parametrize(
    "value",
    [
        "order 20240501000125",  # 14 digits, Luhn-invalid
        "4006381333931",  # an EAN-13 barcode
        "+7 (916) 123-45-67",
        "2026-03-02 12:30",
    ],
    ids=["order-number", "ean-13", "phone", "date"],
)
async def test_ordinary_numbers_pass(client: httpx.AsyncClient, value: str) -> None:
    event = order(1)
    event["data"]["items"][0]["name"] = value
    event["data"]["order_id"] = value

    response = await client.post("/v1/events", json=event)

    assert response.status_code == 202, response.text


# --- phones and emails --------------------------------------------------------------------


async def test_a_phone_is_published_in_e164(client: httpx.AsyncClient, bus: MemoryBus) -> None:
    event = order(1, phone="+7 (916) 123-45-67", email="Anna@Shop.RU")

    response = await client.post("/v1/events", json=event)

    assert response.status_code == 202, response.text
    (record,) = bus.records(TOPIC)
    assert record.key == b"phone:+79161234567"
    published = json_of(record.value)
    assert published["customer"] == {"phone": "+79161234567", "email": "anna@shop.ru"}


async def test_a_phone_without_country_code_is_read_in_the_default_region(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    response = await client.post("/v1/events", json=order(1, phone="8 916 123 45 67"))

    assert response.status_code == 202, response.text
    (record,) = bus.records(TOPIC)
    assert json_of(record.value)["customer"]["phone"] == "+79161234567"


@pytest.mark.parametrize(
    ("customer", "pointer"),
    [
        ({"phone": "12345"}, "/events/3/customer/phone"),
        ({"email": "anna@"}, "/events/3/customer/email"),
    ],
    ids=["phone", "email"],
)
async def test_a_bad_phone_or_email_is_refused_at_its_field(
    client: httpx.AsyncClient, bus: MemoryBus, customer: dict[str, str], pointer: str
) -> None:
    events = [order(0), order(1), order(2), order(3, **customer)]

    response = await client.post("/v1/events", json={"events": events})

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["type"] == "/problems/invalid-events"
    assert [(e["index"], e["pointer"]) for e in body["errors"]] == [(3, pointer)]
    assert bus.records(TOPIC) == []


async def test_a_pointer_escapes_slashes_and_tildes_in_keys(client: httpx.AsyncClient) -> None:
    event = {**identify("e-1", T0, customer={"id": "c-1"}), "data": {"traits": {"a/b~c": [1]}}}

    response = await client.post("/v1/events", json=event)

    assert response.status_code == 422, response.text
    pointers = [e["pointer"] for e in response.json()["errors"]]
    assert pointers
    assert all(p.startswith("/data/traits/a~1b~0c") for p in pointers), pointers


# --- bank card tokens ---------------------------------------------------------------------


async def test_a_bank_card_token_is_published_only_as_its_keyed_hash(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    token = "tok_visa_9f8e7d6c5b4a"
    hashed = keyed_token_hash(token, HMAC_KEY.encode())
    events = [order(1, bank_card_token=token), order(2, bank_card_token=token, id="c-2")]

    response = await client.post("/v1/events", json={"events": events})

    assert response.status_code == 202, response.text
    first, second = bus.records(TOPIC)
    assert first.key == f"bank_card_token:{hashed}".encode()
    assert json_of(first.value)["customer"] == {"bank_card_token": hashed}
    assert json_of(second.value)["customer"] == {"id": "c-2", "bank_card_token": hashed}
    for record in (first, second):
        assert token.encode() not in (record.key or b"") + record.value
