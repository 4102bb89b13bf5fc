"""Schemathesis fuzzes every operation of the ingest API's own OpenAPI schema.

The app under test is built as ``tests/api/conftest.py`` builds it (in-process bus,
API keys in a real SQLite database) and every generated request carries a valid
``events:write`` key, so the fuzz reaches past the door into validation. Whatever it
sends, schema-valid or not, the answer is never a server error, and every refusal is
an RFC 9457 ``application/problem+json`` document with ``type``, ``title`` and
``status`` (the status of the answer); the ``errors`` of a refused event point into
the request: each JSON pointer names a place in the body sent, or a member missing
from an object there (a required field left out); and a method a path does not take is a 405 that
names the methods it does take (``Allow``). It runs twice: with a key for any store, and
with a key bound to one store, which refuses most valid events at the store check.

How it is wired, and why:

- ``schema.parametrize()`` needs the schema when the module is collected, before any
  fixture exists, so the schema is read from an app built here with nothing behind
  it (its key store is never opened); ``create_app`` builds the same routes whatever
  its collaborators. ``schemathesis.pytest.from_fixture`` would avoid that twin, but
  it does not run on pytest 9.2 (it sets ``Node._nodeid``, which pytest 9.2 removed).
- Every ``$ref`` of the published schema must resolve
  (``test_every_reference_of_the_published_schema_resolves``): with a dangling one,
  Schemathesis silently sends no body at all, and the fuzz proves nothing.
- Each request goes to the real app of the ``ingest`` fixture (``case.call(app=...)``).
  Schemathesis serves ASGI apps on an event loop of its own, in another thread, so
  that fixture is synchronous and module-scoped: the key store connects on that loop,
  and Hypothesis is not handed a function-scoped fixture. (Its two parameters also
  keep the test ids apart: on pytest 9.2, Schemathesis's own ``[POST /v1/events]``
  suffix shows only on parametrized items.)
- Generation is bounded (``MAX_EXAMPLES`` per operation in the fuzzing phase; the
  coverage phase sends its fixed set of boundary and negative cases) and
  deterministic, so CI sends the same requests on every run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis import Case, CheckContext, Response
from schemathesis.checks import not_a_server_error, unsupported_method

from services.ingest.app import create_app
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.store.api_keys import open_api_keys
from shared.adapters.store.event_ids import SqlEventIds
from shared.adapters.store.migrate import upgrade
from shared.settings import Settings
from tests.support.infra import run_sync

MAX_EXAMPLES = 30
"""Generated requests per operation in the fuzzing phase: enough to find a crash, quick."""

_TOKEN_KEY = "fuzz-token-hmac-key-0123456789abcdef"  # set, so no key file is written anywhere
_MISSING = object()


def _settings(**overrides: Any) -> Settings:
    return Settings(
        token_hmac_key=_TOKEN_KEY,
        # The fuzz is not about the rate limit: every example must reach the route.
        rate_limit_per_second=10_000.0,
        rate_limit_burst=10_000,
        **overrides,
    )


def resolve(document: Any, pointer: str) -> Any:
    """The value at JSON pointer ``pointer`` (RFC 6901) in ``document``, or ``_MISSING``."""
    if not pointer:
        return document
    target = document
    for escaped in pointer[1:].split("/"):
        token = escaped.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and token in target:
            target = target[token]
        elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
            target = target[int(token)]
        else:
            return _MISSING
    return target


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for child in node.values():
            yield from _walk(child)
    elif isinstance(node, list):
        for child in node:
            yield from _walk(child)


def dangling_references(document: dict[str, Any]) -> list[str]:
    """Every local ``$ref`` of an OpenAPI document that names nothing in it."""
    refs = {node["$ref"] for node in _walk(document) if isinstance(node.get("$ref"), str)}
    return sorted(r for r in refs if r.startswith("#") and resolve(document, r[1:]) is _MISSING)


_schema_app = create_app(_settings(), MemoryBus().publisher(), open_api_keys("sqlite+aiosqlite://"))
schema = schemathesis.openapi.from_asgi("/openapi.json", _schema_app)
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)


def test_every_reference_of_the_published_schema_resolves() -> None:
    published = _schema_app.openapi()
    assert dangling_references(published) == []
    assert {"PurchaseEvent", "IdentifyEvent"} <= published["components"]["schemas"].keys()


@dataclass(frozen=True)
class Ingest:
    app: FastAPI
    authorization: str


async def _create_key(url: str, stores: tuple[str, ...]) -> str:
    keys = open_api_keys(url)
    try:
        _key, secret = await keys.create("fuzzing shop backend", ["events:write"], stores)
    finally:
        await keys.close()
    return secret


@pytest.fixture(scope="module", params=[(), ("msk-01",)], ids=["any-store", "one-store"])
def ingest(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Ingest]:
    """The ingest app with a real SQLite database (keys, event ids), and an ``events:write`` key."""
    data_dir = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite+aiosqlite:///{data_dir / 'nudge.db'}"
    upgrade(url)
    secret = run_sync(_create_key(url, request.param))
    keys = open_api_keys(url)  # connects on first use: on the loop schemathesis serves the app on
    app = create_app(
        _settings(data_dir=data_dir),
        MemoryBus().publisher(),
        keys,
        event_ids=SqlEventIds(keys.engine),
    )
    yield Ingest(app, f"Bearer {secret}")
    run_sync(keys.close())


def problem_details(_ctx: CheckContext, response: Response, _case: Case) -> bool | None:
    """Every 4xx or 5xx answer is ``application/problem+json`` with type, title and status."""
    if response.status_code < 400:
        return None
    media = ",".join(response.headers.get("content-type", ["<none>"]))
    assert media.split(";")[0].strip() == "application/problem+json", (
        f"{response.status_code} answered as {media}, not application/problem+json"
    )
    body = orjson.loads(response.content)
    assert isinstance(body, dict), f"a problem is a JSON object, got {body!r}"
    missing = {"type", "title", "status"} - body.keys()
    assert not missing, f"a problem without {sorted(missing)}: {body!r}"
    assert body["status"] == response.status_code, f"status {body['status']!r} in the body"
    return True


BODY_PROBLEMS = frozenset(
    f"/problems/{kind}"
    for kind in ("invalid-events", "card-number", "forbidden", "event-id-conflict")
)
"""The problem kinds whose ``errors`` point into the JSON body of the request."""


def pointers_into_the_request(_ctx: CheckContext, response: Response, _case: Case) -> bool | None:
    """Each ``errors[].pointer`` names a place in the body sent, or a member missing there."""
    if response.status_code < 400:
        return None
    problem = orjson.loads(response.content)
    if problem.get("type") not in BODY_PROBLEMS:
        return None
    errors = problem.get("errors", [])
    pointers = [e["pointer"] for e in errors if isinstance(e, dict) and "pointer" in e]
    if not pointers:
        return None
    sent = orjson.loads(response.request.body or b"null")
    wrong = [
        pointer
        for pointer in pointers
        if resolve(sent, pointer) is _MISSING
        and not isinstance(resolve(sent, pointer.rpartition("/")[0]), dict)
    ]
    assert not wrong, f"pointers to nothing in the request body: {wrong}"
    return True


@schema.parametrize()
def test_no_request_gets_a_server_error_nor_a_refusal_that_is_not_a_problem(
    case: Case, ingest: Ingest
) -> None:
    response = case.call(app=ingest.app, headers={"Authorization": ingest.authorization})
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            problem_details,
            pointers_into_the_request,
            unsupported_method,
        ],
    )
