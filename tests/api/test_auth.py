"""API keys at the door of the ingest API: who may post, for which stores, how often.

Keys live in a real SQLite database (``api_keys`` fixture); the bus is in process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import structlog
from fastapi import FastAPI

from services.http.rate_limit import RateLimiter
from services.ingest.app import create_app
from shared.adapters.bus.kafka import KafkaBus
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.store.api_keys import SqlApiKeys, open_api_keys
from shared.logging import configure_logging, get_logger
from shared.settings import Settings
from tests.api.test_events_endpoint import TOPIC, assert_problem, order
from tests.support.ports import free_port


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_no_key_is_a_401_problem_with_a_bearer_challenge(
    anonymous: httpx.AsyncClient, bus: MemoryBus
) -> None:
    response = await anonymous.post("/v1/events", json=order(1))
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert bus.records(TOPIC) == []


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer nk_0123456789abcdef_not-the-secret",
        "Bearer nk_0123456789abcdef",
        "Bearer something-else",
        "Basic dXNlcjpwYXNz",
        "Bearer",
    ],
    ids=["unknown-key", "no-secret", "not-a-key", "basic-auth", "empty-bearer"],
)
async def test_a_wrong_key_is_a_401_problem(
    anonymous: httpx.AsyncClient, authorization: str
) -> None:
    response = await anonymous.post(
        "/v1/events", json=order(1), headers={"Authorization": authorization}
    )
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_known_key_id_with_another_secret_is_refused(
    anonymous: httpx.AsyncClient, events_key: str
) -> None:
    forged = events_key[:-1] + ("y" if events_key[-1] != "y" else "z")
    response = await anonymous.post("/v1/events", json=order(1), headers=bearer(forged))
    assert_problem(response, 401, "unauthorized")


async def test_a_revoked_key_is_refused_from_the_next_request_on(
    anonymous: httpx.AsyncClient, api_keys: SqlApiKeys, bus: MemoryBus
) -> None:
    key, secret = await api_keys.create("old till", ["events:write"])
    assert (
        await anonymous.post("/v1/events", json=order(1), headers=bearer(secret))
    ).status_code == 202
    assert await api_keys.revoke(key.id)
    response = await anonymous.post("/v1/events", json=order(2), headers=bearer(secret))
    assert_problem(response, 401, "unauthorized")
    assert len(bus.records(TOPIC)) == 1


async def test_a_key_without_the_scope_is_a_403_problem(
    anonymous: httpx.AsyncClient, api_keys: SqlApiKeys, bus: MemoryBus
) -> None:
    _key, secret = await api_keys.create("marketer", ["console:read", "console:write"])
    response = await anonymous.post("/v1/events", json=order(1), headers=bearer(secret))
    body = assert_problem(response, 403, "forbidden")
    assert "events:write" in body["detail"]
    assert bus.records(TOPIC) == []
    metrics = (await anonymous.get("/metrics")).text
    assert 'nudge_events_refused_total{reason="forbidden"} 1.0' in metrics


async def test_an_admin_key_has_every_scope(
    anonymous: httpx.AsyncClient, api_keys: SqlApiKeys
) -> None:
    _key, secret = await api_keys.create("operator", ["admin"])
    response = await anonymous.post("/v1/events", json=order(1), headers=bearer(secret))
    assert response.status_code == 202


async def test_a_store_bound_key_posts_only_its_stores_events(
    anonymous: httpx.AsyncClient, api_keys: SqlApiKeys, bus: MemoryBus
) -> None:
    _key, secret = await api_keys.create("till msk", ["events:write"], ["msk-01", "msk-02"])
    ours, theirs, nobodys = order(1, store_id="msk-02"), order(2, store_id="spb-01"), order(3)

    response = await anonymous.post(
        "/v1/events", json={"events": [ours, theirs, nobodys]}, headers=bearer(secret)
    )
    body = assert_problem(response, 403, "forbidden")
    assert [(e["index"], e["pointer"]) for e in body["errors"]] == [
        (1, "/events/1/store_id"),
        (2, "/events/2/store_id"),
    ]
    assert "msk-01, msk-02" in body["errors"][0]["detail"]
    assert bus.records(TOPIC) == []

    single = await anonymous.post("/v1/events", json=theirs, headers=bearer(secret))
    assert assert_problem(single, 403, "forbidden")["errors"] == [
        {"pointer": "/store_id", "detail": body["errors"][0]["detail"]}
    ]

    accepted = await anonymous.post("/v1/events", json={"events": [ours]}, headers=bearer(secret))
    assert accepted.status_code == 202
    assert len(bus.records(TOPIC)) == 1


async def test_a_bad_event_is_named_before_the_store_is_checked(
    anonymous: httpx.AsyncClient, api_keys: SqlApiKeys
) -> None:
    _key, secret = await api_keys.create("till msk", ["events:write"], ["msk-01"])
    bad = order(1, store_id="spb-01")
    bad["data"]["total"] = "-1"
    response = await anonymous.post("/v1/events", json=bad, headers=bearer(secret))
    assert_problem(response, 422, "invalid-events")


class TestRateLimit:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(rate_limit_burst=3, rate_limit_per_second=0.5)

    async def test_a_key_past_its_burst_gets_429_with_retry_after(
        self, client: httpx.AsyncClient, api_keys: SqlApiKeys
    ) -> None:
        for n in range(3):
            assert (await client.post("/v1/events", json=order(n))).status_code == 202
        response = await client.post("/v1/events", json=order(3))
        assert_problem(response, 429, "rate-limited")
        assert 1 <= int(response.headers["retry-after"]) <= 2

        _key, other = await api_keys.create("another shop", ["events:write"])
        elsewhere = await client.post("/v1/events", json=order(4), headers=bearer(other))
        assert elsewhere.status_code == 202, "each key has a bucket of its own"

        metrics = (await client.get("/metrics")).text
        assert 'nudge_events_refused_total{reason="rate-limited"} 1.0' in metrics


def test_the_bucket_refills_at_the_rate_up_to_the_burst() -> None:
    now = [0.0]
    limiter = RateLimiter(2.0, 2, clock=lambda: now[0])
    assert [limiter.take("k"), limiter.take("k")] == [0.0, 0.0]
    assert limiter.take("k") == pytest.approx(0.5)
    now[0] += 0.5
    assert limiter.take("k") == 0.0
    now[0] += 60
    assert [limiter.take("k"), limiter.take("k")] == [0.0, 0.0]
    assert limiter.take("k") > 0


def test_past_its_cap_the_limiter_forgets_the_key_used_longest_ago() -> None:
    limiter = RateLimiter(0.2, 1, clock=lambda: 0.0, max_keys=3)

    def remembered() -> list[str]:
        """The keys whose empty bucket is remembered (a forgotten one reads full)."""
        return [key for key in ("a", "b", "c", "d") if limiter.waiting(key) > 0]

    for key in ("a", "b", "c"):
        limiter.take(key)
    limiter.take("a")  # used again: now "b" is the one used longest ago
    limiter.take("d")
    assert len(limiter) == 3
    assert remembered() == ["a", "c", "d"]
    for n in range(100):
        limiter.take(f"new {n}")
        assert len(limiter) == 3
    assert limiter.waiting("new 97") > 0
    assert limiter.waiting("new 96") == 0


async def test_health_metrics_problems_and_docs_need_no_key(anonymous: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/problems/unauthorized", "/openapi.json"):
        assert (await anonymous.get(path)).status_code == 200, path


async def test_readyz_on_the_in_process_bus(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


@pytest.fixture
async def unreachable_broker_app(api_keys: SqlApiKeys) -> AsyncIterator[FastAPI]:
    bus = KafkaBus(f"127.0.0.1:{free_port()}", publish_timeout=1.0)
    publisher = bus.publisher()
    yield create_app(Settings(), publisher, api_keys)
    await publisher.close()
    await bus.close()


async def test_readyz_is_a_503_problem_when_the_broker_does_not_answer(
    unreachable_broker_app: FastAPI,
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=unreachable_broker_app), base_url="http://ingest"
    ) as client:
        response = await client.get("/readyz")
    body = assert_problem(response, 503, "not-ready")
    assert "broker" in body["detail"]


async def test_openapi_declares_the_bearer_scheme(anonymous: httpx.AsyncClient) -> None:
    spec = (await anonymous.get("/openapi.json")).json()
    (scheme,) = spec["components"]["securitySchemes"].values()
    assert scheme["scheme"].lower() == "bearer"
    assert spec["paths"]["/v1/events"]["post"]["security"]


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """Captured stderr; the test calls ``configure_logging`` (stderr is swapped per phase)."""
    yield capsys
    structlog.reset_defaults()


async def test_no_log_line_carries_a_key(
    anonymous: httpx.AsyncClient,
    client: httpx.AsyncClient,
    api_keys: SqlApiKeys,
    events_key: str,
    logs: pytest.CaptureFixture[str],
) -> None:
    configure_logging("DEBUG", "json")
    key, revoked = await api_keys.create("revoked", ["events:write"])
    await api_keys.revoke(key.id)
    await client.post("/v1/events", json=order(1))
    await anonymous.post("/v1/events", json=order(2), headers=bearer(revoked))
    await anonymous.post("/v1/events", json=order(3), headers=bearer(events_key + "x"))
    get_logger("test").warning(
        "posted", authorization=f"Bearer {events_key}", note=f"key was {events_key}"
    )
    logged = logs.readouterr().err
    assert "posted" in logged
    assert events_key not in logged
    assert revoked not in logged
    assert events_key.split("_")[1] in logged, "the key id may show"


@pytest.fixture
async def unreachable_database_app(bus: MemoryBus) -> AsyncIterator[FastAPI]:
    """Keys in a PostgreSQL database nobody serves: nothing listens on the port."""
    keys = open_api_keys(f"postgresql+asyncpg://nudge:nudge@127.0.0.1:{free_port()}/nudge")
    yield create_app(Settings(), bus.publisher(), keys)
    await keys.close()


async def test_a_key_database_that_does_not_answer_is_a_503_never_a_500(
    unreachable_database_app: FastAPI, events_key: str, bus: MemoryBus
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=unreachable_database_app), base_url="http://ingest"
    ) as client:
        posted = await client.post("/v1/events", json=order(1), headers=bearer(events_key))
        ready = await client.get("/readyz")
    assert_problem(posted, 503, "auth-unavailable")
    assert posted.headers["retry-after"] == "5"
    assert "key database" in assert_problem(ready, 503, "not-ready")["detail"]
    assert bus.records(TOPIC) == []
