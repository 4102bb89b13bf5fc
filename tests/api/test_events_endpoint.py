"""POST /v1/events: what a shop's backend sees for good and bad input (in-process bus).

``client`` (tests/api/conftest.py) sends a valid ``events:write`` key.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shared.adapters.bus.memory import MemoryBus
from tests.conftest import T0
from tests.e2e.stacks import purchase

TOPIC = "nudge.events"


def order(n: int, **changes: Any) -> dict[str, Any]:
    event = purchase(f"e-{n}", T0, customer={"id": f"c-{n}", "email": f"b{n}@example.com"})
    event.update(changes)
    return event


def assert_problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{kind}"
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


async def test_one_event_is_accepted_and_published_keyed_by_the_buyer(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    response = await client.post("/v1/events", json=order(1))
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 0}
    (record,) = bus.records(TOPIC)
    assert record.key == b"id:c-1"


async def test_a_batch_counts_repeated_event_ids_as_duplicates(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    response = await client.post("/v1/events", json={"events": [order(1), order(2), order(1)]})
    assert response.status_code == 202
    assert response.json() == {"accepted": 2, "duplicates": 1}
    assert len(bus.records(TOPIC)) == 2


async def test_a_batch_with_one_bad_event_is_refused_whole(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    bad = order(2)
    bad["data"]["total"] = "12.345"
    response = await client.post("/v1/events", json={"events": [order(1), bad, order(3)]})
    body = assert_problem(response, 422, "invalid-events")
    assert body["errors"] == [
        {"index": 1, "pointer": "/events/1/data/total", "detail": body["errors"][0]["detail"]}
    ]
    assert "decimal" in body["errors"][0]["detail"].lower()
    assert bus.records(TOPIC) == []


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"occurred_at": "2026-03-02T09:00:00"}, "/occurred_at"),
        ({"customer": {}}, "/customer"),
        ({"surprise": 1}, "/surprise"),
        ({"type": "teleport"}, "/type"),
    ],
    ids=["timestamp-without-offset", "no-identifier", "unknown-field", "unknown-type"],
)
async def test_each_bad_event_names_the_field(
    client: httpx.AsyncClient, change: dict[str, Any], pointer: str
) -> None:
    body = assert_problem(
        await client.post("/v1/events", json=order(1, **change)), 422, "invalid-events"
    )
    assert pointer in [e["pointer"] for e in body["errors"]]


async def test_malformed_json_is_a_400_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/events", content=b'{"event_id": ', headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "malformed-json")


async def test_a_body_that_is_not_json_is_a_415_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/events", content=b"a=b", headers={"content-type": "text/plain"}
    )
    assert_problem(response, 415, "unsupported-media-type")


async def test_more_than_1000_events_are_refused(client: httpx.AsyncClient) -> None:
    events = [order(n) for n in range(1001)]
    assert_problem(await client.post("/v1/events", json={"events": events}), 422, "too-many-events")


async def test_unknown_paths_are_problems_too(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/nothing"), 404, "not-found")


async def test_health_and_metrics_answer(client: httpx.AsyncClient) -> None:
    await client.post("/v1/events", json=order(1))
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    metrics = (await client.get("/metrics")).text
    assert "nudge_events_accepted_total 1.0" in metrics
