"""One shop currency: ingest refuses a purchase or refund in another currency at its
``currency`` field, unless a rate to the shop's currency is configured; then it publishes
the event converted, once, in the shop's currency. ``client`` (tests/api/conftest.py)
sends a valid ``events:write`` key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from shared.adapters.bus.memory import MemoryBus
from shared.settings import Settings
from tests.conftest import T0
from tests.e2e.stacks import purchase

TOPIC = "nudge.events"


def in_currency(event_id: str, currency: str, total: str = "10.00") -> dict[str, Any]:
    event = purchase(event_id, T0, customer={"id": "c-1"}, total=total)
    event["data"]["currency"] = currency
    return event


def refund_in(event_id: str, currency: str, amount: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "refund",
        "occurred_at": T0.isoformat(),
        "customer": {"id": "c-1"},
        "data": {"order_id": "o-1", "amount": amount, "currency": currency},
    }


class TestWithoutRates:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return Settings(data_dir=tmp_path, currency="RUB")

    async def test_a_purchase_in_another_currency_is_refused_at_its_currency(
        self, client: httpx.AsyncClient, bus: MemoryBus
    ) -> None:
        events = [in_currency("e-1", "RUB"), in_currency("e-2", "USD")]
        response = await client.post("/v1/events", json={"events": events})

        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        (error,) = response.json()["errors"]
        assert error["pointer"] == "/events/1/data/currency"
        assert "RUB" in error["detail"]
        assert bus.records(TOPIC) == [], "none of the batch was accepted"

    async def test_a_lone_refund_in_another_currency_is_refused_too(
        self, client: httpx.AsyncClient, bus: MemoryBus
    ) -> None:
        response = await client.post("/v1/events", json=refund_in("r-1", "EUR", "5.00"))
        assert response.status_code == 422, response.text
        assert [e["pointer"] for e in response.json()["errors"]] == ["/data/currency"]
        assert bus.records(TOPIC) == []


class TestWithRates:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return Settings(data_dir=tmp_path, currency="RUB", currency_rates={"USD": Decimal("92.5")})

    async def test_a_purchase_at_a_configured_rate_is_published_in_the_shops_currency(
        self, client: httpx.AsyncClient, bus: MemoryBus
    ) -> None:
        response = await client.post("/v1/events", json=in_currency("e-1", "USD", "10.50"))
        assert response.status_code == 202, response.text

        (record,) = bus.records(TOPIC)
        data = orjson.loads(record.value)["data"]
        assert (data["currency"], data["total"]) == ("RUB", "971.25")
        assert data["items"][0]["price"] == "971.25"

    async def test_the_same_event_again_is_a_duplicate_not_a_conflict(
        self, client: httpx.AsyncClient
    ) -> None:
        event = in_currency("e-1", "USD", "10.50")
        assert (await client.post("/v1/events", json=event)).status_code == 202
        again = await client.post("/v1/events", json=event)
        assert again.status_code == 202, again.text
        assert again.json() == {"accepted": 1, "duplicates": 0}

    async def test_a_currency_without_a_rate_is_still_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post("/v1/events", json=in_currency("e-1", "EUR"))
        assert response.status_code == 422, response.text
        assert "USD" in response.json()["errors"][0]["detail"], "names the currencies accepted"
