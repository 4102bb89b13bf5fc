"""The ingest app on the in-process bus and a real SQLite database (API keys, accepted event
ids), and clients for it.

``client`` carries a valid ``events:write`` key, as a shop's backend would;
``anonymous`` carries none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.ingest.app import create_app
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.store.api_keys import SqlApiKeys, open_api_keys
from shared.adapters.store.event_ids import SqlEventIds
from shared.settings import Settings


@pytest.fixture
def bus() -> MemoryBus:
    return MemoryBus()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The app's settings; a test module overrides this fixture to change them."""
    return Settings(data_dir=tmp_path)


@pytest.fixture
async def api_keys(sqlite_url: str) -> AsyncIterator[SqlApiKeys]:
    keys = open_api_keys(sqlite_url)
    yield keys
    await keys.close()


@pytest.fixture
async def events_key(api_keys: SqlApiKeys) -> str:
    """The plaintext of a key with the ``events:write`` scope, bound to no store."""
    _key, secret = await api_keys.create("test shop backend", ["events:write"])
    return secret


@pytest.fixture
def app(settings: Settings, bus: MemoryBus, api_keys: SqlApiKeys) -> FastAPI:
    return create_app(settings, bus.publisher(), api_keys, event_ids=SqlEventIds(api_keys.engine))


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends no API key."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ingest"
    ) as client:
        yield client


@pytest.fixture
async def client(app: FastAPI, events_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends a valid ``events:write`` key with every request."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://ingest",
        headers={"Authorization": f"Bearer {events_key}"},
    ) as client:
        yield client
