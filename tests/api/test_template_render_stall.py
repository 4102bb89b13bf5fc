"""Stall probe: a hostile template preview never holds up the process. Served over real
HTTP on 127.0.0.1 as ``nudge serve`` serves it (ingest, the console mounted beside it),
``/healthz`` answers while the preview's render is in flight; then the preview is
refused at the render time limit. Nothing here is timed: the probe waits on conditions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.bootstrap import Database
from services.console.app import mount_console
from services.console.wiring import build_console
from services.ingest.app import create_app
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.clock import SimulatedClock
from shared.adapters.rendering import ProcessRenderer
from shared.adapters.store.api_keys import SqlApiKeys
from shared.adapters.store.engine import create_engine
from shared.settings import Settings
from tests.support.http import serving
from tests.support.waiting import eventually

SLOW = (
    "{% set s = 'x' * 1000 %}"
    "{% for a in s %}{% for b in s %}{% for c in s %}{% endfor %}{% endfor %}{% endfor %}"
)
"""A billion loop steps: refused by no up-front rule, minutes of work without a limit."""


@pytest.fixture
async def renderer() -> AsyncIterator[ProcessRenderer]:
    found = ProcessRenderer(timeout=5.0, workers=1)
    yield found
    await found.aclose()


@pytest.fixture
async def served(
    tmp_path: Path,
    sqlite_url: str,
    api_keys: SqlApiKeys,
    clock: SimulatedClock,
    renderer: ProcessRenderer,
) -> AsyncIterator[str]:
    settings = Settings(data_dir=tmp_path, database_url=sqlite_url)
    engine = create_engine(sqlite_url)
    http = create_app(settings, MemoryBus().publisher(), api_keys, clock=clock)
    mount_console(http, build_console(settings, Database(engine, clock), renderer=renderer))
    try:
        async with serving(http) as url:
            yield url
    finally:
        await engine.dispose()


async def test_healthz_answers_while_a_hostile_preview_renders(
    served: str, api_keys: SqlApiKeys, renderer: ProcessRenderer
) -> None:
    _key, secret = await api_keys.create("analyst", ["console:read"])
    auth = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(base_url=served, timeout=60) as client:
        hostile = {"channel": "sms", "content": {"text": SLOW}}
        preview = asyncio.create_task(
            client.post("/v1/templates/x/preview", json=hostile, headers=auth)
        )

        async def rendering() -> bool:
            assert not preview.done(), preview
            return renderer.rendering == 1

        await eventually(rendering, what="the hostile preview to be rendering")
        health = await client.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok"}
        assert not preview.done()  # answered while the render was in flight
        assert renderer.rendering == 1

        refused = await preview
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["type"] == "/problems/template-too-costly"
    assert body["errors"][0]["limit"] == "time"


async def test_the_huge_power_preview_is_refused_without_computing_it(
    served: str, api_keys: SqlApiKeys
) -> None:
    _key, secret = await api_keys.create("analyst", ["console:read"])
    async with httpx.AsyncClient(base_url=served, timeout=60) as client:
        refused = await client.post(
            "/v1/templates/x/preview",
            json={"channel": "sms", "content": {"text": "{{ (10**(10**7)) % 7 }}"}},
            headers={"Authorization": f"Bearer {secret}"},
        )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["limit"] == "time"
    assert "not computed" in refused.json()["detail"]
