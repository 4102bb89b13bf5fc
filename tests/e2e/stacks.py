"""The two stacks an end-to-end test runs on: embedded, and Kafka with PostgreSQL.

:class:`RunningStack` serves ingest over real HTTP (uvicorn on 127.0.0.1) and runs
the segmenter and the dispatcher as they run in production, as long-lived loops;
:meth:`RunningStack.restart` stops both services (the batch in hand finished and
committed) and starts fresh instances, as a deploy would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from services.bootstrap import Runtime, bootstrap
from services.dispatcher.service import DispatcherService
from services.ingest.app import create_app
from services.segmenter.service import SegmenterService
from shared.adapters.clock import SimulatedClock
from shared.domain.profile import Profile
from shared.ports.providers import EmailProvider
from shared.settings import Settings
from tests.support.http import serving
from tests.support.waiting import eventually


@dataclass
class RunningStack:
    runtime: Runtime
    http: httpx.AsyncClient
    segmenter: SegmenterService | None = None
    dispatcher: DispatcherService | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start_services(self) -> None:
        self.segmenter = SegmenterService(self.runtime)
        self.dispatcher = DispatcherService(self.runtime)
        await self.segmenter.start()
        await self.dispatcher.start()
        self.tasks = [
            asyncio.create_task(self.segmenter.run()),
            asyncio.create_task(self.dispatcher.run()),
        ]

    async def stop_services(self) -> None:
        if self.segmenter is not None:
            self.segmenter.stop()
        if self.dispatcher is not None:
            self.dispatcher.stop()
        await asyncio.gather(*self.tasks)
        self.tasks = []

    async def restart(self) -> None:
        await self.stop_services()
        await self.start_services()

    async def post(self, *events: dict[str, Any]) -> httpx.Response:
        body: Any = events[0] if len(events) == 1 else {"events": list(events)}
        return await self.http.post("/v1/events", json=body)

    async def profile(self, kind: str, value: str) -> Profile | None:
        async with self.runtime.store.unit_of_work() as uow:
            return await uow.profiles.find(kind, value)

    async def wait_for_profile(self, kind: str, value: str, **expected: Any) -> Profile:
        async def matches() -> Profile | None:
            found = await self.profile(kind, value)
            if found is None or any(getattr(found, k) != v for k, v in expected.items()):
                return None
            return found

        return await eventually(matches, what=f"profile {kind} with {expected}")


@contextlib.asynccontextmanager
async def running_stack(
    settings: Settings, clock: SimulatedClock, email: EmailProvider
) -> AsyncIterator[RunningStack]:
    runtime = await bootstrap(settings, clock=clock, email=email, migrate=False)
    publisher = runtime.bus.publisher()
    _key, secret = await runtime.api_keys.create("e2e shop backend", ["events:write"])
    try:
        async with (
            serving(
                create_app(settings, publisher, runtime.api_keys, event_ids=runtime.event_ids)
            ) as base_url,
            httpx.AsyncClient(
                base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {secret}"}
            ) as http,
        ):
            stack = RunningStack(runtime, http)
            await stack.start_services()
            try:
                yield stack
            finally:
                await stack.stop_services()
    finally:
        await publisher.close()
        await runtime.close()


def purchase(
    event_id: str, at: datetime, *, customer: dict[str, str], total: str = "2500.00"
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "purchase",
        "occurred_at": at.isoformat(),
        "customer": customer,
        "data": {
            "order_id": f"order-{event_id}",
            "total": total,
            "currency": "RUB",
            "items": [
                {"sku": "cat-food-2kg", "category": "pet-food", "quantity": 1, "price": total}
            ],
        },
    }


def identify(event_id: str, at: datetime, *, customer: dict[str, str]) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "identify",
        "occurred_at": at.isoformat(),
        "customer": customer,
    }
