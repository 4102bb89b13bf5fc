"""The ingest HTTP API: events in, validated, published to the bus, 202 once acknowledged.

Besides ``POST /v1/events`` (a shop's backend, with an API key), the app serves the
providers' signed delivery webhooks (:mod:`services.ingest.webhooks`) and the
buyers' unsubscribe links (:mod:`services.ingest.unsubscribe`); all three publish
through :mod:`services.ingest.intake`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import ValidationError
from starlette.responses import Response

from services.bootstrap import memory_event_ids, system_clock, token_hmac_key, unsubscribe_key
from services.http.auth import EventsWriter, Guard, refuse_other_stores
from services.http.bodies import MAX_BODY_BYTES, parse_json, read_body, require_json
from services.http.problems import (
    PROBLEM_KINDS,
    Problem,
    install_problem_handlers,
    json_pointer,
)
from services.http.rate_limit import RateLimiter
from services.ingest.intake import (
    OFF_LOOP_BYTES,
    EventPublisher,
    IngestMetrics,
    Prepared,
    refuse_card_numbers,
)
from services.ingest.problems import INGEST_PROBLEM_KINDS
from services.ingest.unsubscribe import unsubscribe_router
from services.ingest.webhooks import webhook_router
from shared.domain.event_content import digest_version
from shared.domain.events import (
    EVENT_TYPES,
    AnyEvent,
    EventBatch,
    Plausible,
    event_adapter,
    validate_event,
)
from shared.domain.identifiers import keyed_token_hash
from shared.domain.money import ShopCurrency
from shared.errors import BusUnavailable, StoreUnavailable
from shared.logging import get_logger
from shared.metrics import combined
from shared.ports.api_keys import ApiKey, ApiKeys
from shared.ports.bus import Publisher
from shared.ports.clock import Clock
from shared.ports.event_ids import EventIds
from shared.settings import Settings

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_EVENTS",
    "create_app",
    "refuse_other_currencies",
    "validate_events",
]

MAX_EVENTS = 1000
_EVENT_TYPES = frozenset(EVENT_TYPES)

log = get_logger(__name__)


def _pointer(prefix: str, loc: tuple[int | str, ...]) -> str:
    parts = list(loc)
    if parts and parts[0] in _EVENT_TYPES:  # the discriminated union names the tag first
        parts = parts[1:]
    return prefix + json_pointer(parts)


def validate_events(
    payload: Any, *, default_region: str | None = None, plausible: Plausible | None = None
) -> list[AnyEvent]:
    """The events of a request body, or a :class:`Problem` naming every bad one.

    Card numbers are looked for first, in every string, key and number of the events
    (:func:`~services.ingest.intake.refuse_card_numbers`): a request carrying one is
    refused as ``card-number`` before any other check could repeat a value of it.
    ``default_region`` reads phones written without a country code; ``plausible`` bounds
    when events occurred.
    """
    if isinstance(payload, dict) and "events" in payload:
        items, prefix = payload["events"], "/events/{}"
        if not isinstance(items, list) or set(payload) != {"events"}:
            raise Problem(
                "invalid-events",
                'a batch is {"events": [...]} and nothing else',
                [{"pointer": "/events", "detail": "expected a list of events"}],
            )
        if len(items) > MAX_EVENTS:
            raise Problem("too-many-events", f"{len(items)} events; at most {MAX_EVENTS}")
        if not items:
            raise Problem(
                "invalid-events",
                "the batch is empty",
                [{"pointer": "/events", "detail": "at least one event"}],
            )
    else:
        items, prefix = [payload], ""
    refuse_card_numbers(items, prefix)
    events: list[AnyEvent] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            events.append(validate_event(item, default_region=default_region, plausible=plausible))
        except ValidationError as exc:
            for error in exc.errors(include_input=False, include_url=False):
                loc, detail = error["loc"], error["msg"]
                if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
                    loc = ("type",)
                if error["type"] == "union_tag_invalid":  # its message quotes the tag sent
                    detail = f"not an event type; expected one of {', '.join(EVENT_TYPES)}"
                entry: dict[str, Any] = {
                    "pointer": _pointer(prefix.format(index), loc),
                    "detail": detail,
                }
                if prefix:
                    entry = {"index": index, **entry}
                errors.append(entry)
    if errors:
        bad = len({e.get("index", 0) for e in errors})
        raise Problem(
            "invalid-events", f"{bad} of {len(items)} events are invalid; none was accepted", errors
        )
    return events


def refuse_other_currencies(
    events: Sequence[AnyEvent], currency: ShopCurrency, *, batch: bool
) -> None:
    """``invalid-events`` naming the ``data/currency`` (or the amount) of every purchase or
    refund the shop cannot take: another currency with no rate to the shop's."""
    prefix = "/events/{}" if batch else ""
    errors: list[dict[str, Any]] = []
    for index, event in enumerate(events):
        refused = currency.refusal(event)
        if refused is not None:
            where, detail = refused
            entry = {"pointer": _pointer(prefix.format(index), ("data", where)), "detail": detail}
            errors.append({"index": index, **entry} if batch else entry)
    if errors:
        bad = len({e.get("index", 0) for e in errors})
        raise Problem(
            "invalid-events",
            f"{bad} of {len(events)} events are invalid; none was accepted",
            errors,
        )


def _add_readiness(app: FastAPI, publisher: Publisher, api_keys: ApiKeys) -> None:
    @app.get(
        "/readyz",
        summary="Ready for events: the broker and the key database answer",
        responses={503: {"description": "not ready: the broker or the key database is away"}},
    )
    async def readyz() -> dict[str, str]:
        checks = (
            (publisher.ping, "the event broker does not answer"),
            (api_keys.ping, "the key database does not answer"),
        )
        for ping, trouble in checks:
            try:
                await ping()
            except (BusUnavailable, StoreUnavailable) as exc:
                log.warning("not ready", error=str(exc))
                raise Problem("not-ready", trouble, headers={"Retry-After": "5"}) from None
        return {"status": "ready"}


def _hash_bank_card_token(event: AnyEvent, key: bytes) -> AnyEvent:
    """``event`` with its bank card token replaced by the keyed hash nudge keeps instead."""
    token = event.customer.bank_card_token
    if token is None:
        return event
    customer = event.customer.model_copy(update={"bank_card_token": keyed_token_hash(token, key)})
    return event.model_copy(update={"customer": customer})


def create_app(
    settings: Settings,
    publisher: Publisher,
    api_keys: ApiKeys,
    *,
    clock: Clock | None = None,
    event_ids: EventIds | None = None,
    metrics_registries: Sequence[CollectorRegistry] = (),
) -> FastAPI:
    """The ingest API on ``publisher``, admitting the keys in ``api_keys`` (not closed here).

    ``clock`` (the system's by default) bounds how far ahead an event may have occurred
    (``NUDGE_OCCURRED_AT_MAX_FUTURE``), dates unsubscribe events and bounds the replay
    window of signed webhooks. ``event_ids`` is the index of accepted event ids that
    every published event is claimed in first: a deployment gives the database's,
    shared by all its ingest processes; the default, in memory, is for tests.
    ``/metrics`` serves ingest's metrics and those of ``metrics_registries`` (the other
    services of the process, under ``nudge serve``).
    """
    app = FastAPI(
        title="nudge",
        version="1",
        summary="Trigger communications for retail CRM marketing",
    )
    install_problem_handlers(app, INGEST_PROBLEM_KINDS)
    metrics = IngestMetrics()
    token_key = token_hmac_key(settings)
    events_out = EventPublisher(
        publisher,
        settings.topic("events"),
        metrics,
        event_ids or memory_event_ids(),
        digest_version(default_region=settings.default_region, token_key=token_key),
        settings.shop_currency,
    )
    clock = clock or system_clock()
    app.state.metrics = metrics
    app.state.guard = Guard(
        api_keys,
        RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
        on_refused=lambda kind: metrics.refused.labels(kind).inc(),
    )

    @app.post(
        "/v1/events",
        status_code=202,
        summary="Accept one event or a batch of up to 1000",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                event_adapter.json_schema(
                                    ref_template="#/components/schemas/{model}"
                                ),
                                EventBatch.model_json_schema(
                                    ref_template="#/components/schemas/{model}"
                                ),
                            ]
                        }
                    }
                },
            }
        },
        responses={
            202: {"description": "accepted: the broker acknowledged every event"},
            401: {"description": "no API key, or an unknown or revoked one"},
            403: {"description": "the key lacks `events:write`, or an event is for another store"},
            409: {"description": "event-id-conflict: an event id reused with other content"},
            429: {"description": "the key's rate limit; see Retry-After"},
        },
    )
    async def post_events(request: Request, key: EventsWriter) -> JSONResponse:
        try:
            return await _accept(request, key)
        except Problem as problem:
            metrics.refused.labels(problem.kind).inc()
            raise

    async def _accept(request: Request, key: ApiKey) -> JSONResponse:
        require_json(request)
        body = await read_body(request)
        payload = parse_json(body)
        plausible = Plausible(
            settings.occurred_at_earliest, clock.now(), settings.occurred_at_max_future
        )
        batch = isinstance(payload, dict) and "events" in payload

        def prepare() -> Prepared:
            validated = validate_events(
                payload, default_region=settings.default_region, plausible=plausible
            )
            refuse_other_currencies(validated, settings.shop_currency, batch=batch)
            events = [_hash_bank_card_token(event, token_key) for event in validated]
            refuse_other_stores(key, [e.store_id for e in events], batch=batch)
            return events_out.prepare(
                events,
                pointer="/events/{}/event_id" if batch else "/event_id",
                store_bound=bool(key.stores),
            )

        # a large body is validated, and its events' JSON and digests made, in a thread
        prepared = await asyncio.to_thread(prepare) if len(body) > OFF_LOOP_BYTES else prepare()
        accepted, duplicates = await events_out.publish(prepared)
        return JSONResponse({"accepted": accepted, "duplicates": duplicates}, status_code=202)

    app.include_router(webhook_router(settings, clock, events_out))
    app.include_router(unsubscribe_router(unsubscribe_key(settings), clock, events_out))

    @app.get("/problems/{kind}", include_in_schema=False)
    async def describe_problem(kind: str) -> HTMLResponse:
        if kind not in PROBLEM_KINDS:
            raise Problem("not-found", f"no problem kind {kind!r}")
        status, title, text = PROBLEM_KINDS[kind]
        return HTMLResponse(f"<h1>{title}</h1><p>HTTP {status}</p><p>{text}</p>")

    @app.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    _add_readiness(app, publisher, api_keys)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        scraped = combined(metrics.registry, *metrics_registries)
        return Response(generate_latest(scraped), media_type=CONTENT_TYPE_LATEST)

    _publish_body_models(app)
    return app


def _publish_body_models(app: FastAPI) -> None:
    """Request bodies given as raw JSON Schema (``openapi_extra``: the routes read their
    bodies themselves) refer to their models as ``#/components/schemas/<model>`` but
    carry them under ``$defs``: the published document moves them there."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for node in list(_objects(document)):
                for name, definition in node.pop("$defs", {}).items():
                    schemas.setdefault(name, definition)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``node``, itself included."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)
