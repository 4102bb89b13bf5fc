"""The segments and templates routers in an app of their own, on a real SQLite database,
with clients holding keys of each scope. Test modules import the fixtures they use."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from services.console.api import segments, templates
from services.console.api.problems import CONSOLE_PROBLEM_KINDS
from services.http.auth import Guard
from services.http.problems import install_problem_handlers
from services.http.rate_limit import RateLimiter
from shared.adapters.clock import SimulatedClock
from shared.adapters.rendering import ProcessRenderer
from shared.adapters.store.api_keys import SqlApiKeys
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.engine import create_engine
from shared.ports.api_keys import Scope

__all__ = [
    "definitions",
    "definitions_app",
    "events_only",
    "nobody",
    "reader",
    "renderer",
    "writer",
]


@pytest.fixture
async def definitions(sqlite_url: str, clock: SimulatedClock) -> AsyncIterator[SqlDefinitions]:
    found = SqlDefinitions(create_engine(sqlite_url), clock=clock)
    yield found
    await found.close()


@pytest.fixture
async def renderer() -> AsyncIterator[ProcessRenderer]:
    """Where the templates render: worker processes, stopped past one second."""
    found = ProcessRenderer(timeout=1.0, workers=2)
    yield found
    await found.aclose()


@pytest.fixture
def definitions_app(
    definitions: SqlDefinitions,
    api_keys: SqlApiKeys,
    clock: SimulatedClock,
    renderer: ProcessRenderer,
) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app, CONSOLE_PROBLEM_KINDS)
    app.state.guard = Guard(api_keys, RateLimiter(1000.0, 1000))
    app.include_router(segments.router(definitions, clock=clock))
    app.include_router(templates.router(definitions, renderer=renderer))
    return app


async def _client(app: FastAPI, keys: SqlApiKeys | None, *scopes: Scope) -> httpx.AsyncClient:
    headers = {}
    if keys is not None:
        _key, secret = await keys.create("console test", scopes)
        headers["Authorization"] = f"Bearer {secret}"
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://console", headers=headers
    )


@pytest.fixture
async def writer(
    definitions_app: FastAPI, api_keys: SqlApiKeys
) -> AsyncIterator[httpx.AsyncClient]:
    """A marketer's key: console:read and console:write."""
    async with await _client(definitions_app, api_keys, "console:read", "console:write") as c:
        yield c


@pytest.fixture
async def reader(
    definitions_app: FastAPI, api_keys: SqlApiKeys
) -> AsyncIterator[httpx.AsyncClient]:
    """An analyst's key: console:read only."""
    async with await _client(definitions_app, api_keys, "console:read") as c:
        yield c


@pytest.fixture
async def events_only(
    definitions_app: FastAPI, api_keys: SqlApiKeys
) -> AsyncIterator[httpx.AsyncClient]:
    """A shop backend's key: events:write, nothing of the console."""
    async with await _client(definitions_app, api_keys, "events:write") as c:
        yield c


@pytest.fixture
async def nobody(definitions_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with await _client(definitions_app, None) as c:
        yield c
