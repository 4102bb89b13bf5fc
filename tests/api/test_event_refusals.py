"""What ingest refuses or rewrites before an event leaves it: card numbers, phones, tokens,
implausible moments and characters no store can hold.

A card number anywhere in an event refuses the whole request, naming the field and
never repeating the digits; phones and emails are published in one spelling; a bank
card token is published only as its keyed hash; an event that occurred before 1990
or more than a day ahead of ingest's clock, or that carries a control character, is
refused at its field. ``client`` (tests/api/conftest.py) sends a valid ``events:write``
key; the app here runs on the simulated clock, at T0.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import structlog
from fastapi import FastAPI
from pydantic import SecretStr

from services.ingest.app import create_app
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.api_keys import SqlApiKeys
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
def app(settings: Settings, bus: MemoryBus, api_keys: SqlApiKeys, clock: SimulatedClock) -> FastAPI:
    return create_app(settings, bus.publisher(), api_keys, clock=clock)


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


# --- plausible moments --------------------------------------------------------------------


def assert_invalid(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == "/problems/invalid-events"
    errors: list[dict[str, Any]] = body["errors"]
    return errors


def dated(n: int, occurred_at: str) -> dict[str, Any]:
    event = order(n)
    event["occurred_at"] = occurred_at
    return event


@pytest.mark.parametrize(
    "occurred_at",
    [
        "9999-12-31T23:59:59+00:00",
        "0001-01-01T00:00:00+05:00",
        "1989-12-31T23:59:59+00:00",
        (T0 + timedelta(days=3 * 365)).isoformat(),
    ],
    ids=["year-9999", "year-1-east-of-utc", "before-1990", "years-ahead"],
)
async def test_an_implausible_moment_refuses_the_batch_whole_at_its_pointer(
    client: httpx.AsyncClient, bus: MemoryBus, occurred_at: str
) -> None:
    events = [order(0), dated(1, occurred_at), order(2)]

    errors = assert_invalid(await client.post("/v1/events", json={"events": events}))

    assert [(e["index"], e["pointer"]) for e in errors] == [(1, "/events/1/occurred_at")]
    assert bus.records(TOPIC) == []


async def test_a_purchase_a_day_ahead_of_the_clock_is_accepted_a_second_more_is_not(
    client: httpx.AsyncClient, bus: MemoryBus, clock: SimulatedClock
) -> None:
    ahead = clock.now() + timedelta(days=1)

    accepted = await client.post("/v1/events", json=dated(1, ahead.isoformat()))
    refused = await client.post(
        "/v1/events", json=dated(2, (ahead + timedelta(seconds=1)).isoformat())
    )

    assert accepted.status_code == 202, accepted.text
    (error,) = assert_invalid(refused)
    assert error["pointer"] == "/occurred_at"
    assert "at most 1 day ahead of nudge's clock" in error["detail"]
    assert len(bus.records(TOPIC)) == 1


async def test_the_bound_follows_the_ingest_clock(
    client: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    tomorrow_and_an_hour = clock.now() + timedelta(days=1, hours=1)
    assert_invalid(await client.post("/v1/events", json=dated(1, tomorrow_and_an_hour.isoformat())))

    clock.advance(timedelta(hours=1))

    response = await client.post("/v1/events", json=dated(1, tomorrow_and_an_hour.isoformat()))
    assert response.status_code == 202, response.text


class TestConfiguredBounds:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return Settings(
            data_dir=tmp_path,
            token_hmac_key=SecretStr(HMAC_KEY),
            occurred_at_earliest=T0 - timedelta(days=30),
            occurred_at_max_future=timedelta(hours=1),
        )

    async def test_the_bounds_are_the_settings(self, client: httpx.AsyncClient) -> None:
        too_early = dated(1, (T0 - timedelta(days=31)).isoformat())
        too_late = dated(2, (T0 + timedelta(hours=2)).isoformat())
        fine = dated(3, (T0 + timedelta(minutes=59)).isoformat())

        errors = assert_invalid(
            await client.post("/v1/events", json={"events": [too_early, too_late, fine]})
        )

        assert [e["pointer"] for e in errors] == ["/events/0/occurred_at", "/events/1/occurred_at"]
        assert "at most 3600 seconds ahead" in errors[1]["detail"]


def test_the_bounds_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGE_OCCURRED_AT_EARLIEST", "2020-01-01T00:00:00+00:00")
    monkeypatch.setenv("NUDGE_OCCURRED_AT_MAX_FUTURE", "PT6H")

    settings = Settings()

    assert settings.occurred_at_earliest == datetime(2020, 1, 1, tzinfo=UTC)
    assert settings.occurred_at_max_future == timedelta(hours=6)


# --- characters no store can hold ---------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "pointer"),
    [
        ({"event_id": "e-\u0000-1"}, "/event_id"),
        ({"customer": {"id": "c\u00001"}}, "/customer/id"),
        ({"data": {"traits": {"note": "call\u0000back"}}}, "/data/traits/note"),
        ({"data": {"traits": {"tier\u0000": "gold"}}}, "/data/traits/tier\u0000"),
        ({"data": {"traits": {"note": "bell\u0007"}}}, "/data/traits/note"),
        ({"data": {"traits": {"note": "next\u0085line"}}}, "/data/traits/note"),
        ({"store_id": "s\tore"}, "/store_id"),
    ],
    ids=["nul-event-id", "nul-customer-id", "nul-value", "nul-key", "bell", "c1", "tab-in-store"],
)
async def test_a_control_character_is_refused_at_its_pointer(
    client: httpx.AsyncClient, bus: MemoryBus, where: dict[str, Any], pointer: str
) -> None:
    event = {**identify("e-1", T0, customer={"id": "c-1"}), **where}

    errors = assert_invalid(await client.post("/v1/events", json=event))  # NUL as \\u0000

    assert [e["pointer"] for e in errors] == [pointer]
    assert bus.records(TOPIC) == []


async def test_tabs_and_line_breaks_in_free_text_are_accepted(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    event = {
        **identify("e-1", T0, customer={"id": "c-1"}),
        "data": {"traits": {"note": "a\tb\r\nc"}},
    }

    response = await client.post("/v1/events", json=event)

    assert response.status_code == 202, response.text
    (record,) = bus.records(TOPIC)
    assert json_of(record.value)["data"]["traits"] == {"note": "a\tb\r\nc"}


@pytest.mark.parametrize(
    "raw",
    [b'"\\ud800"', b"1e400", b"NaN", b"Infinity"],
    ids=["lone-surrogate", "overflows-to-infinity", "nan", "infinity"],
)
async def test_values_json_cannot_carry_are_refused_as_malformed(
    client: httpx.AsyncClient, bus: MemoryBus, raw: bytes
) -> None:
    event = orjson.dumps(
        {**identify("e-1", T0, customer={"id": "c-1"}), "data": {"traits": {"x": 0}}}
    )
    body = event.replace(b'"x":0', b'"x":' + raw)
    assert raw in body

    response = await client.post(
        "/v1/events", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 400, response.text
    assert response.json()["type"] == "/problems/malformed-json"
    assert bus.records(TOPIC) == []


@pytest.mark.parametrize("value", ["18446744073709551615", "9223372036854775808"])
async def test_an_integer_beyond_64_bits_is_refused_at_its_pointer(
    client: httpx.AsyncClient, value: str
) -> None:
    event = orjson.dumps(
        {**identify("e-1", T0, customer={"id": "c-1"}), "data": {"traits": {"n": 0}}}
    )
    body = event.replace(b'"n":0', b'"n":' + value.encode())

    response = await client.post(
        "/v1/events", content=body, headers={"content-type": "application/json"}
    )

    errors = assert_invalid(response)
    assert [e["pointer"] for e in errors] == ["/data/traits/n"]


# --- delivery webhooks ----------------------------------------------------------------------


class TestDeliveryReports:
    SECRET = "whsec-mailer-0123456789abcdef"

    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return Settings(data_dir=tmp_path, webhook_secrets={"mailer": SecretStr(self.SECRET)})

    async def post(self, client: httpx.AsyncClient, **report: Any) -> httpx.Response:
        body = orjson.dumps(
            {
                "events": [
                    {
                        "message_key": "win-back-30d-0123456789abcdef",
                        "status": "opened",
                        "occurred_at": T0.isoformat(),
                        "recipient": "anna@shop.ru",
                        **report,
                    }
                ]
            }
        )
        timestamp = str(int(T0.timestamp()))
        mac = hmac.new(self.SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        headers = {
            "Content-Type": "application/json",
            "X-Nudge-Timestamp": timestamp,
            "X-Nudge-Signature": f"v1={mac.hexdigest()}",
        }
        return await client.post("/v1/webhooks/mailer", content=body, headers=headers)

    @pytest.mark.parametrize(
        "report",
        [
            {"occurred_at": "0001-01-01T00:00:00+05:00"},
            {"occurred_at": (T0 + timedelta(days=2)).isoformat()},
            {"message_key": "m" * 101},
            {"message_key": "m\x00"},
        ],
        ids=["year-1-east-of-utc", "two-days-ahead", "key-too-long", "nul-in-key"],
    )
    async def test_an_implausible_report_is_refused_at_its_pointer(
        self, anonymous: httpx.AsyncClient, bus: MemoryBus, report: dict[str, Any]
    ) -> None:
        errors = assert_invalid(await self.post(anonymous, **report))

        assert [(e["index"], e["pointer"].rsplit("/", 1)[0]) for e in errors] == [(0, "/events/0")]
        assert errors[0]["pointer"].endswith(next(iter(report)))
        assert bus.records(TOPIC) == []

    async def test_a_plausible_report_passes(
        self, anonymous: httpx.AsyncClient, bus: MemoryBus
    ) -> None:
        response = await self.post(anonymous, occurred_at=(T0 + timedelta(days=1)).isoformat())

        assert response.status_code == 202, response.text
        assert len(bus.records(TOPIC)) == 1
