"""What ``POST /v1/events`` refuses as a card number, and what it no longer does (issue 11).

Valid data was refused (UUID event ids, epoch timestamps) and card numbers got in
(dotted, slashed, zero-width separators, floats) or were quoted back (as the type tag,
as a key). ``client`` (tests/api/conftest.py) sends a valid ``events:write`` key.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import structlog

from shared.adapters.bus.memory import MemoryBus
from shared.logging import configure_logging
from tests.conftest import T0
from tests.e2e.stacks import identify

TOPIC = "nudge.events"
CARD = "4111111111111111"
ISSUE_UUID = "f31aeb00-4982-4407-8941-965096ee86ef"


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """Captured output; the test calls ``configure_logging`` (capture swaps stderr per phase)."""
    yield capsys
    structlog.reset_defaults()


def digits_of(text: str) -> str:
    return re.sub(r"\D", "", text)


def event(n: int, **fields: Any) -> dict[str, Any]:
    return {**identify(f"e-{n}", T0, customer={"id": f"c-{n}"}), **fields}


def uuid4_text(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128) & ~(0xF000 << 64) | 0x4000 << 64:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


async def post(client: httpx.AsyncClient, body: Any) -> httpx.Response:
    return await client.post(
        "/v1/events", content=orjson.dumps(body), headers={"content-type": "application/json"}
    )


def assert_refused_unrepeated(response: httpx.Response, card: str = CARD) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    body: dict[str, Any] = response.json()
    assert body["type"] == "/problems/card-number"
    assert card not in digits_of(response.text)
    return body


# --- valid data is not refused ------------------------------------------------------------


async def test_a_batch_of_1000_events_with_uuid_ids_and_epoch_timestamps_is_accepted(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    rng = random.Random(11)
    ids = [ISSUE_UUID, ISSUE_UUID.upper(), *(uuid4_text(rng) for _ in range(998))]
    events = [
        {
            **identify(event_id, T0, customer={"id": f"c-{n}"}),
            "data": {
                "traits": {
                    "seen_ms": rng.randint(631_152_000_000, 4_102_444_800_000),
                    "seen_ns": rng.randint(631_152_000 * 10**9, 4_102_444_800 * 10**9),
                    "session": uuid4_text(rng),
                }
            },
        }
        for n, event_id in enumerate(ids)
    ]

    response = await post(client, {"events": events})

    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1000, "duplicates": 0}
    assert len(bus.records(TOPIC)) == 1000


@pytest.mark.parametrize(
    "value",
    [
        1709370000000,  # epoch milliseconds, Luhn-valid
        "1709370000000",
        1709370000000000000,  # epoch nanoseconds
        "4006381333931",  # an EAN-13 barcode
        "f31aeb004982440789419650",  # a hex run
        "ref-4111111111111111x",  # letters glued on: part of a longer token
    ],
)
async def test_numbers_that_only_look_like_card_numbers_are_accepted(
    client: httpx.AsyncClient, value: Any
) -> None:
    response = await post(client, event(1, data={"traits": {"value": value}}))

    assert response.status_code == 202, response.text


# --- card numbers are refused, wherever and however ------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "4111.1111.1111.1111",
        "4111/1111/1111/1111",
        "4111_1111_1111_1111",
        "4111\u200b1111\u200b1111\u200b1111",
        "4111\u00ad1111\u00ad1111\u00ad1111",
        "4111\u20601111\u20601111\u20601111",
    ],
    ids=["dots", "slashes", "underscores", "zero-width-space", "soft-hyphen", "word-joiner"],
)
async def test_a_card_number_with_any_separator_is_refused_at_its_field(
    client: httpx.AsyncClient, bus: MemoryBus, written: str
) -> None:
    body = assert_refused_unrepeated(
        await post(client, event(1, data={"traits": {"note": f"paid {written}"}}))
    )

    assert [e["pointer"] for e in body["errors"]] == ["/data/traits/note"]
    assert bus.records(TOPIC) == []


async def test_a_json_float_with_a_fraction_holding_a_card_number_is_refused(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    text = orjson.dumps(event(1, data={"traits": {"total": 0}})).decode()
    text = text.replace('"total":0', '"total":4424154152064361.5')

    response = await client.post(
        "/v1/events", content=text, headers={"content-type": "application/json"}
    )

    body = assert_refused_unrepeated(response, "4424154152064361")
    assert [e["pointer"] for e in body["errors"]] == ["/data/traits/total"]
    assert bus.records(TOPIC) == []


async def test_a_card_number_as_the_type_tag_is_refused_and_never_quoted(
    client: httpx.AsyncClient,
) -> None:
    body = assert_refused_unrepeated(await post(client, event(1, type="4111.1111.1111.1111")))

    assert [e["pointer"] for e in body["errors"]] == ["/type"]


async def test_an_unknown_type_tag_is_never_quoted_back(client: httpx.AsyncClient) -> None:
    response = await post(client, event(1, type="x4111111111111111"))

    assert response.status_code == 422, response.text
    assert response.json()["type"] == "/problems/invalid-events"
    assert [e["pointer"] for e in response.json()["errors"]] == ["/type"]
    assert "4111111111111111" not in response.text
    assert "identify" in response.json()["errors"][0]["detail"]  # it says what is expected


@pytest.mark.parametrize(
    "key", ["4111.1111.1111.1111", "4111/1111/1111/1111", "4111\u200b1111\u200b1111\u200b1111"]
)
async def test_a_card_number_as_an_object_key_is_refused_at_its_object(
    client: httpx.AsyncClient, key: str
) -> None:
    body = assert_refused_unrepeated(await post(client, event(1, data={"traits": {key: "yes"}})))

    assert [e["pointer"] for e in body["errors"]] == ["/data/traits"]
    assert "key" in body["errors"][0]["detail"]


async def test_no_refused_digits_reach_the_logs(
    client: httpx.AsyncClient, logs: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    configure_logging("DEBUG")
    cases = [
        event(1, type="4111.1111.1111.1111"),
        event(2, data={"traits": {"4111/1111/1111/1111": 1}}),
        event(3, type="x4111111111111111"),
    ]

    for case in cases:
        assert (await post(client, case)).status_code == 422

    captured = logs.readouterr()
    output = captured.out + captured.err + caplog.text
    assert "card number refused" in output
    assert CARD not in digits_of(output)
