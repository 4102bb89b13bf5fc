"""The broker goes away: ingest says so precisely (503, Retry-After) and never hangs, and
/readyz says it is not ready; once the broker is back, events flow again through the same
running services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from shared.adapters.clock import SimulatedClock
from shared.adapters.providers.email import SmtpProvider
from shared.settings import Settings
from tests.conftest import T0
from tests.e2e.stacks import RunningStack, purchase, running_stack
from tests.support.smtp import SmtpServer
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.fault]

KAFKA_SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "kafka.sh"


async def kafka(action: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "bash",
        str(KAFKA_SCRIPT),
        action,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, f"kafka.sh {action} failed:\n{output.decode()}"


@pytest.fixture
async def stack(
    kafka_settings: Settings, clock: SimulatedClock, smtp: SmtpServer
) -> AsyncIterator[RunningStack]:
    settings = kafka_settings.model_copy(update={"publish_timeout": 2.0})
    email = SmtpProvider(smtp.host, smtp.port, "shop@nudge.local", timeout=5)
    async with running_stack(settings, clock, email) as stack:
        yield stack


async def test_ingest_answers_503_while_the_broker_is_down_and_recovers_after(
    stack: RunningStack,
) -> None:
    assert (
        await stack.post(purchase("before", T0, customer={"id": "c-before"}))
    ).status_code == 202
    await stack.wait_for_profile("id", "c-before", orders_count=1)

    await kafka("stop")
    try:
        response = await stack.post(purchase("during", T0, customer={"id": "c-during"}))
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) > 0
        problem = response.json()
        assert problem["type"] == "/problems/broker-unavailable"
        assert problem["status"] == 503
        ready = await stack.http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["type"] == "/problems/not-ready"
    finally:
        await kafka("start")

    after = purchase("after", T0, customer={"id": "c-after"})

    async def accepted() -> httpx.Response | None:
        response = await stack.post(after)
        return response if response.status_code == 202 else None

    await eventually(accepted, timeout=60, interval=1, what="ingest to accept again")
    assert (await stack.http.get("/readyz")).status_code == 200
    await stack.wait_for_profile("id", "c-after", orders_count=1)
