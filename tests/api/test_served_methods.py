"""Under ``nudge serve`` (ingest with the console mounted beside it), a path that exists
answers a method it does not take with 405 and ``Allow``, as problem+json; only a path
that does not exist is 404.

The app is composed as ``nudge serve`` composes it, and every one of its routes is tried.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from pydantic import SecretStr
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from services.bootstrap import Database
from services.console.app import mount_console
from services.console.wiring import build_console
from services.http.problems import install_problem_handlers
from services.ingest.app import create_app
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.api_keys import SqlApiKeys
from shared.adapters.store.engine import create_engine
from shared.settings import Settings

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")


@pytest.fixture
async def served(
    tmp_path: Path, sqlite_url: str, bus: MemoryBus, api_keys: SqlApiKeys, clock: SimulatedClock
) -> AsyncIterator[FastAPI]:
    settings = Settings(
        data_dir=tmp_path,
        database_url=sqlite_url,
        webhook_secrets={"mailer": SecretStr("whsec-mailer-0123456789abcdef")},
    )
    engine = create_engine(sqlite_url)
    app = create_app(settings, bus.publisher(), api_keys, clock=clock)
    mount_console(app, build_console(settings, Database(engine, clock)))
    yield app
    await engine.dispose()


def concrete(path_format: str) -> str:
    """A path the route matches: each parameter given a plain value."""
    return _PARAM.sub("x1", path_format)


@dataclass(frozen=True)
class Served:
    path: str
    """A path the route answers, each parameter given a plain value."""
    pattern: re.Pattern[str]
    methods: frozenset[str]


def routes(app: FastAPI, prefix: str = "") -> Iterator[Served]:
    """Every route of ``app`` and of the apps mounted in it."""
    for route in iter_route_contexts(app.router.routes):
        mounted = route.original_route
        if isinstance(mounted, Mount) and isinstance(mounted.app, FastAPI):
            yield from routes(mounted.app, prefix + mounted.path)
        elif isinstance(mounted, Mount):  # static files
            path = f"{prefix}{mounted.path}/console.css"
            yield Served(path, re.compile(re.escape(path)), frozenset({"GET", "HEAD"}))
        elif route.methods and route.path_format:
            pattern = re.compile(re.escape(prefix) + route.path_regex.pattern)
            yield Served(prefix + concrete(route.path_format), pattern, frozenset(route.methods))


def allowed_at(app: FastAPI) -> dict[str, frozenset[str]]:
    """Each route's path and every method some route takes there (``/segments/_new``
    is also ``/segments/{key}``)."""
    every = list(routes(app))
    return {
        served.path: frozenset().union(*(o.methods for o in every if o.pattern.match(served.path)))
        for served in every
    }


async def test_every_route_answers_a_wrong_method_with_405_and_allow(served: FastAPI) -> None:
    paths = allowed_at(served)
    assert "/v1/events" in paths, "ingest's routes are there"
    assert "/login" in paths, "and the console's"
    wrong: list[str] = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=served), base_url="http://nudge"
    ) as client:
        for path, methods in sorted(paths.items()):
            for method in (m for m in METHODS if m not in methods):
                answer = await client.request(method, path, headers={"Accept": "application/json"})
                allow = {m.strip() for m in answer.headers.get("allow", "").split(",") if m}
                problem = (
                    answer.headers.get("content-type") == "application/problem+json"
                    and answer.json()["type"] == "/problems/method-not-allowed"
                )
                if answer.status_code != 405 or allow != methods or not problem:
                    wrong.append(f"{method} {path}: {answer.status_code} Allow={sorted(allow)}")
    assert not wrong, "\n".join(wrong)


async def test_get_v1_events_is_405_allow_post(served: FastAPI) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=served), base_url="http://nudge"
    ) as client:
        answer = await client.get("/v1/events")
    assert answer.status_code == 405, answer.text
    assert answer.headers["allow"] == "POST"
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "/problems/method-not-allowed"


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("path", ["/v1/nothing-here", "/v1/events/x1", "/nothing/at/all"])
async def test_a_path_that_does_not_exist_is_404(served: FastAPI, method: str, path: str) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=served), base_url="http://nudge"
    ) as client:
        answer = await client.request(method, path, headers={"Accept": "application/json"})
    assert answer.status_code == 404, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert "allow" not in answer.headers


async def test_a_405_whose_methods_are_unknown_carries_no_empty_allow() -> None:
    """A mounted app that answers 405 itself, naming nothing: ``Allow`` is left out, as an
    empty ``Allow`` would say the path takes no method at all."""

    async def refuses_every_method(_scope: Scope, _receive: Receive, _send: Send) -> None:
        raise StarletteHTTPException(405)

    app = FastAPI()
    install_problem_handlers(app)
    app.mount("/raw", refuses_every_method)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://nudge"
    ) as client:
        answer = await client.get("/raw/anything")
    assert answer.status_code == 405
    assert answer.json()["type"] == "/problems/method-not-allowed"
    assert "allow" not in answer.headers
