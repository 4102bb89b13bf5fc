"""Event ids that say what they did: the same id with the same content is a duplicate, the
same id with other content a 409 that applies nothing (in-process bus, real SQLite index).

``client`` (tests/api/conftest.py) sends a valid ``events:write`` key.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from services.ingest import intake
from services.ingest.app import create_app
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.api_keys import SqlApiKeys
from shared.adapters.store.engine import create_engine
from shared.adapters.store.event_ids import SqlEventIds
from shared.domain.events import read_published_event
from shared.errors import BusUnavailable, StoreUnavailable
from shared.ports.bus import Publisher
from shared.settings import Settings
from tests.api.test_events_endpoint import assert_problem
from tests.api.test_webhooks import SECRET, post, report
from tests.conftest import T0
from tests.e2e.stacks import purchase

TOPIC = "nudge.events"


def bought(event_id: str, buyer: str, total: str = "2500.00") -> dict[str, Any]:
    return purchase(event_id, T0, customer={"id": buyer}, total=total)


def published_ids(bus: MemoryBus) -> list[tuple[str, str]]:
    """``(event_id, customer id)`` of every record on the events topic, in order."""
    values = [orjson.loads(record.value) for record in bus.records(TOPIC)]
    return [(v["event_id"], v["customer"].get("id", "")) for v in values]


def shop_backend(app: FastAPI, key: str) -> httpx.AsyncClient:
    """A client of ``app`` that sends ``key`` with every request."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://ingest",
        headers={"Authorization": f"Bearer {key}"},
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, webhook_secrets={"mailer": SecretStr(SECRET)})


@pytest.fixture
def app(settings: Settings, bus: MemoryBus, api_keys: SqlApiKeys, clock: SimulatedClock) -> FastAPI:
    event_ids = SqlEventIds(api_keys.engine, clock=clock)
    return create_app(settings, bus.publisher(), api_keys, clock=clock, event_ids=event_ids)


async def test_an_event_id_reused_by_another_buyer_in_a_later_request_is_a_conflict(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    first = await client.post("/v1/events", json={"events": [bought("e-0001", "anna")]})
    assert first.json() == {"accepted": 1, "duplicates": 0}

    response = await client.post(
        "/v1/events", json={"events": [bought("e-0002", "bob"), bought("e-0001", "zed")]}
    )

    body = assert_problem(response, 409, "event-id-conflict")
    assert body["errors"] == [
        {"index": 1, "pointer": "/events/1/event_id", "detail": body["errors"][0]["detail"]}
    ]
    assert "accepted before" in body["errors"][0]["detail"]
    assert published_ids(bus) == [("e-0001", "anna")]


async def test_nothing_of_a_conflicting_request_is_claimed(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    await client.post("/v1/events", json=bought("e-0001", "anna"))
    refused = await client.post(
        "/v1/events", json={"events": [bought("e-0002", "bob"), bought("e-0001", "zed")]}
    )
    assert refused.status_code == 409

    # e-0002 was neither published nor claimed: bob's event may still come with it, or
    # another event altogether
    again = await client.post("/v1/events", json=bought("e-0002", "carl"))
    assert again.status_code == 202, again.text
    assert published_ids(bus) == [("e-0001", "anna"), ("e-0002", "carl")]


async def test_a_lone_event_reusing_an_id_is_a_conflict_at_its_id(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    await client.post("/v1/events", json=bought("e-0001", "anna"))

    response = await client.post("/v1/events", json=bought("e-0001", "anna", total="10.00"))

    body = assert_problem(response, 409, "event-id-conflict")
    assert body["errors"] == [{"pointer": "/event_id", "detail": body["errors"][0]["detail"]}]
    assert len(bus.records(TOPIC)) == 1


async def test_one_id_with_two_contents_in_one_request_is_a_conflict_naming_both(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    batch = [bought("e-0001", "anna"), bought("e-0002", "bob"), bought("e-0001", "zed")]

    response = await client.post("/v1/events", json={"events": batch})

    body = assert_problem(response, 409, "event-id-conflict")
    assert [(e["index"], e["pointer"]) for e in body["errors"]] == [
        (0, "/events/0/event_id"),
        (2, "/events/2/event_id"),
    ]
    assert "this request" in body["errors"][0]["detail"]
    assert bus.records(TOPIC) == []
    # nothing was claimed: either content may still come alone
    assert (await client.post("/v1/events", json=batch[2])).status_code == 202


async def test_the_same_event_again_is_a_duplicate_and_published_again(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    event = bought("e-0001", "anna")
    for _ in range(2):
        response = await client.post("/v1/events", json={"events": [event, event]})
        assert response.status_code == 202, response.text
        assert response.json() == {"accepted": 1, "duplicates": 1}
    # at least once to the bus; the segmenter applies an id once
    assert published_ids(bus) == [("e-0001", "anna"), ("e-0001", "anna")]


async def test_the_same_content_written_another_way_is_the_same_event(
    client: httpx.AsyncClient,
) -> None:
    first: dict[str, Any] = {
        "event_id": "e-0001",
        "type": "identify",
        "occurred_at": T0.isoformat(),
        "customer": {"email": "Anna@Shop.RU", "phone": "+7 916 123-45-67"},
        "data": {"traits": {"city": "Moscow", "kids": 2}},
        "store_id": None,
    }
    second: dict[str, Any] = {
        "data": {"consents": {}, "traits": {"kids": 2, "city": "Moscow"}},
        "customer": {"phone": "+79161234567", "email": "anna@shop.ru"},
        "occurred_at": T0.isoformat(),
        "type": "identify",
        "event_id": "e-0001",
    }
    assert (await client.post("/v1/events", json=first)).status_code == 202

    response = await client.post("/v1/events", json=second)

    assert response.status_code == 202, response.text


class FailsFirst:
    """A publisher whose first publish times out, as a broker that went away would."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher
        self.calls = 0

    async def publish(
        self,
        topic: str,
        records: Sequence[tuple[bytes | None, bytes]],
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        self.calls += 1
        if self.calls == 1:
            raise BusUnavailable("no acknowledgement in time")
        await self.publisher.publish(topic, records, headers)

    async def ping(self) -> None:
        await self.publisher.ping()

    async def close(self) -> None:
        await self.publisher.close()


async def test_a_request_retried_after_a_503_is_published(
    settings: Settings, bus: MemoryBus, api_keys: SqlApiKeys, events_key: str
) -> None:
    app = create_app(
        settings, FailsFirst(bus.publisher()), api_keys, event_ids=SqlEventIds(api_keys.engine)
    )
    batch = {"events": [bought("e-0001", "anna"), bought("e-0002", "bob")]}
    async with shop_backend(app, events_key) as client:
        failed = await client.post("/v1/events", json=batch)
        assert_problem(failed, 503, "broker-unavailable")

        retried = await client.post("/v1/events", json=batch)

    assert retried.status_code == 202, retried.text
    assert retried.json() == {"accepted": 2, "duplicates": 0}
    assert published_ids(bus) == [("e-0001", "anna"), ("e-0002", "bob")]


@pytest.fixture
async def two_processes(
    settings: Settings, sqlite_url: str, api_keys: SqlApiKeys, events_key: str
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two ingest apps on one database, each with its own engine, as two processes would."""
    engines = [create_engine(sqlite_url) for _ in range(2)]
    clients = [
        shop_backend(
            create_app(settings, MemoryBus().publisher(), api_keys, event_ids=SqlEventIds(engine)),
            events_key,
        )
        for engine in engines
    ]
    yield clients
    for client in clients:
        await client.aclose()
    for engine in engines:
        await engine.dispose()


async def test_an_id_accepted_by_one_ingest_process_conflicts_in_another(
    two_processes: list[httpx.AsyncClient],
) -> None:
    one, other = two_processes
    assert (await one.post("/v1/events", json=bought("e-0001", "anna"))).status_code == 202

    assert (await other.post("/v1/events", json=bought("e-0001", "zed"))).status_code == 409
    assert (await other.post("/v1/events", json=bought("e-0001", "anna"))).status_code == 202


class Unavailable:
    async def claim(self, digests: object) -> set[str]:
        raise StoreUnavailable("database unavailable: ConnectionRefusedError")


async def test_an_index_that_does_not_answer_is_a_503_and_nothing_is_published(
    settings: Settings, bus: MemoryBus, api_keys: SqlApiKeys, events_key: str
) -> None:
    app = create_app(settings, bus.publisher(), api_keys, event_ids=Unavailable())
    async with shop_backend(app, events_key) as client:
        response = await client.post("/v1/events", json=bought("e-0001", "anna"))

    assert_problem(response, 503, "database-unavailable")
    assert response.headers["Retry-After"] == "5"
    assert bus.records(TOPIC) == []


async def test_a_delivery_report_that_comes_again_with_other_content_is_a_conflict(
    anonymous: httpx.AsyncClient, bus: MemoryBus
) -> None:
    clicked = report("clicked", url="https://shop.ru/a")
    assert (await post(anonymous, clicked)).status_code == 202
    again = await post(anonymous, clicked)
    assert again.status_code == 202, again.text

    response = await post(anonymous, report("opened"), report("clicked", url="https://shop.ru/b"))

    body = assert_problem(response, 409, "event-id-conflict")
    assert [(e["index"], e["pointer"]) for e in body["errors"]] == [(1, "/events/1")]
    assert len(bus.records(TOPIC)) == 2


async def test_a_conflict_is_counted_by_its_kind(client: httpx.AsyncClient) -> None:
    await client.post("/v1/events", json=bought("e-0001", "anna"))
    await client.post("/v1/events", json=bought("e-0001", "zed"))

    metrics = (await client.get("/metrics")).text

    assert 'nudge_events_refused_total{reason="event-id-conflict"} 1.0' in metrics


async def store_key(api_keys: SqlApiKeys, store: str) -> str:
    _, secret = await api_keys.create(f"pos of {store}", ["events:write"], stores=[store])
    return secret


async def test_a_key_of_one_store_cannot_probe_the_ids_another_store_used(
    app: FastAPI, api_keys: SqlApiKeys
) -> None:
    async with shop_backend(app, await store_key(api_keys, "A")) as store_a:
        taken = await store_a.post(
            "/v1/events", json={**bought("order-1001", "anna"), "store_id": "A"}
        )
    assert taken.status_code == 202

    async with shop_backend(app, await store_key(api_keys, "B")) as store_b:
        probe = await store_b.post(
            "/v1/events", json={**bought("order-1001", "zed"), "store_id": "B"}
        )

    assert probe.status_code == 202, probe.text
    assert probe.json() == {"accepted": 1, "duplicates": 0}


async def test_a_key_of_one_store_cannot_squat_the_ids_of_another(
    app: FastAPI, api_keys: SqlApiKeys, bus: MemoryBus
) -> None:
    async with shop_backend(app, await store_key(api_keys, "B")) as store_b:
        squat = await store_b.post(
            "/v1/events", json={**bought("order-1001", "mallory", "1.00"), "store_id": "B"}
        )
    assert squat.status_code == 202

    async with shop_backend(app, await store_key(api_keys, "A")) as store_a:
        real = await store_a.post(
            "/v1/events", json={**bought("order-1001", "anna"), "store_id": "A"}
        )
        retried = await store_a.post(
            "/v1/events", json={**bought("order-1001", "anna"), "store_id": "A"}
        )
        other = await store_a.post(
            "/v1/events", json={**bought("order-1001", "zed"), "store_id": "A"}
        )

    assert real.json() == {"accepted": 1, "duplicates": 0}
    assert retried.status_code == 202
    assert_problem(other, 409, "event-id-conflict")
    published = [orjson.loads(r.value) for r in bus.records(TOPIC)]
    assert [read_published_event(orjson.dumps(v)).dedupe_id for v in published].count(
        read_published_event(orjson.dumps(published[1])).dedupe_id
    ) == 2  # A's event and its retry: one event downstream
    assert len({read_published_event(orjson.dumps(v)).dedupe_id for v in published}) == 2


async def test_the_shop_wide_key_keeps_the_ids_as_sent_downstream(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    await client.post("/v1/events", json={**bought("order-1001", "anna"), "store_id": "A"})

    (record,) = bus.records(TOPIC)
    assert read_published_event(record.value).dedupe_id == "order-1001"


async def test_the_content_of_a_large_batch_is_digested_off_the_event_loop(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    digested_in: set[str] = set()
    digest = intake.content_digest

    def recorded(published: bytes, *, version: bytes) -> bytes:
        digested_in.add(threading.current_thread().name)
        return digest(published, version=version)

    monkeypatch.setattr(intake, "content_digest", recorded)
    events = [bought(f"order-{n}", f"buyer-{n}") for n in range(400)]
    assert len(orjson.dumps({"events": events})) > intake.OFF_LOOP_BYTES

    response = await client.post("/v1/events", json={"events": events})

    assert response.json() == {"accepted": 400, "duplicates": 0}
    assert digested_in
    assert threading.main_thread().name not in digested_in


def deployed(settings: Settings, api_keys: SqlApiKeys, bus: MemoryBus, **changes: Any) -> FastAPI:
    """Ingest on ``settings`` with ``changes``, as a new deploy on the same database."""
    return create_app(
        settings.model_copy(update=changes),
        bus.publisher(),
        api_keys,
        event_ids=SqlEventIds(api_keys.engine),
    )


@pytest.mark.parametrize(
    ("customer", "before", "after"),
    [
        pytest.param(
            {"phone": "916 234-56-78"},  # +79162345678 in RU, +19162345678 in US
            {"default_region": "RU"},
            {"default_region": "US"},
            id="default-region-changed",
        ),
        pytest.param(
            {"id": "anna", "bank_card_token": "tok-4f1c"},
            {"token_hmac_key": SecretStr("the key before")},
            {"token_hmac_key": SecretStr("the key after")},
            id="token-key-rotated",
        ),
    ],
)
async def test_a_retry_across_a_deploy_that_changed_the_digest_is_a_duplicate(
    settings: Settings,
    api_keys: SqlApiKeys,
    events_key: str,
    bus: MemoryBus,
    customer: dict[str, str],
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    event = purchase("order-1001", T0, customer=customer)
    async with shop_backend(deployed(settings, api_keys, bus, **before), events_key) as old:
        assert (await old.post("/v1/events", json=event)).status_code == 202

    async with shop_backend(deployed(settings, api_keys, bus, **after), events_key) as new:
        retried = await new.post("/v1/events", json=event)
        other = await new.post("/v1/events", json={**event, "occurred_at": "2026-01-02T00:00:00Z"})

    assert retried.status_code == 202, retried.text
    assert retried.json() == {"accepted": 1, "duplicates": 0}
    assert len(bus.records(TOPIC)) == 2  # published again: the segmenter applies it once
    # claimed again under the new deploy's digest: other content is a conflict again
    assert_problem(other, 409, "event-id-conflict")
