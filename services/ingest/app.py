"""The ingest HTTP API: events in, validated, published to the bus, 202 once acknowledged."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import ValidationError
from starlette.responses import Response

from services.bootstrap import token_hmac_key
from services.ingest.auth import EventsWriter, Guard, refuse_other_stores
from services.ingest.problems import PROBLEM_KINDS, Problem, install_problem_handlers
from services.ingest.rate_limit import RateLimiter
from shared.domain.card_numbers import card_number_fields
from shared.domain.events import (
    EventBatch,
    IdentifyEvent,
    PurchaseEvent,
    event_adapter,
    validate_event,
)
from shared.domain.identifiers import keyed_token_hash
from shared.errors import BusUnavailable, StoreUnavailable
from shared.logging import get_logger
from shared.ports.api_keys import ApiKey, ApiKeys
from shared.ports.bus import Publisher
from shared.settings import Settings

__all__ = ["MAX_BODY_BYTES", "MAX_EVENTS", "create_app"]

MAX_EVENTS = 1000
MAX_BODY_BYTES = 4 * 1024 * 1024
_EVENT_TYPES = frozenset({"purchase", "identify"})

log = get_logger(__name__)


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.accepted = Counter(
            "nudge_events_accepted",
            "Events accepted and acknowledged by the broker",
            registry=self.registry,
        )
        self.refused = Counter(
            "nudge_events_refused",
            "Requests refused, by problem kind",
            ["reason"],
            registry=self.registry,
        )
        self.produce_seconds = Histogram(
            "nudge_produce_seconds",
            "Time for the broker to acknowledge one request's events",
            registry=self.registry,
        )


def _pointer(prefix: str, loc: tuple[int | str, ...]) -> str:
    parts = list(loc)
    if parts and parts[0] in _EVENT_TYPES:  # the discriminated union names the tag first
        parts = parts[1:]
    return prefix + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def validate_events(
    payload: Any, *, default_region: str | None = None
) -> list[PurchaseEvent | IdentifyEvent]:
    """The events of a request body, or a :class:`Problem` naming every bad one.

    Card numbers are looked for first, in the raw JSON of every event: a request
    carrying one is refused as ``card-number`` before any other check could repeat
    a value of it. ``default_region`` reads phones written without a country code.
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
    _refuse_card_numbers(items, prefix)
    events: list[PurchaseEvent | IdentifyEvent] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            events.append(validate_event(item, default_region=default_region))
        except ValidationError as exc:
            for error in exc.errors(include_input=False, include_url=False):
                loc = error["loc"]
                if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
                    loc = ("type",)
                entry: dict[str, Any] = {
                    "pointer": _pointer(prefix.format(index), loc),
                    "detail": error["msg"],
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


def _add_readiness(app: FastAPI, publisher: Publisher, api_keys: ApiKeys) -> None:
    @app.get(
        "/readyz",
        summary="Ready for events: the broker and the key database answer",
        responses={503: {"description": "not ready: the broker or the key database is away"}},
    )
    async def readyz() -> dict[str, str]:
        try:
            await publisher.ping()
        except BusUnavailable as exc:
            log.warning("not ready", error=str(exc))
            raise Problem(
                "not-ready", "the event broker does not answer", headers={"Retry-After": "5"}
            ) from None
        try:
            await api_keys.ping()
        except StoreUnavailable as exc:
            log.warning("not ready", error=str(exc))
            raise Problem(
                "not-ready", "the key database does not answer", headers={"Retry-After": "5"}
            ) from None
        return {"status": "ready"}


def _refuse_card_numbers(items: list[Any], prefix: str) -> None:
    """A ``card-number`` :class:`Problem` naming each field that holds one, never its digits."""
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        for found in card_number_fields(item):
            entry: dict[str, Any] = {
                "pointer": prefix.format(index) + found.pointer,
                "detail": (
                    "a key of this object looks like a card number"
                    if found.in_key
                    else "looks like a card number"
                )
                + "; card numbers are never accepted",
            }
            errors.append({"index": index, **entry} if prefix else entry)
    if errors:
        log.warning("card number refused", pointers=[e["pointer"] for e in errors])
        bad = len({e.get("index", 0) for e in errors})
        raise Problem(
            "card-number",
            f"{bad} of {len(items)} events carry what looks like a card number; none was accepted",
            errors,
        )


def _hash_bank_card_token(
    event: PurchaseEvent | IdentifyEvent, key: bytes
) -> PurchaseEvent | IdentifyEvent:
    """``event`` with its bank card token replaced by the keyed hash nudge keeps instead."""
    token = event.customer.bank_card_token
    if token is None:
        return event
    customer = event.customer.model_copy(update={"bank_card_token": keyed_token_hash(token, key)})
    return event.model_copy(update={"customer": customer})


def create_app(settings: Settings, publisher: Publisher, api_keys: ApiKeys) -> FastAPI:
    """The ingest API on ``publisher``, admitting the keys in ``api_keys`` (not closed here)."""
    app = FastAPI(
        title="nudge",
        version="1",
        summary="Trigger communications for retail CRM marketing",
    )
    install_problem_handlers(app)
    metrics = IngestMetrics()
    topic = settings.topic("events")
    token_key = token_hmac_key(settings)
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
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise Problem("unsupported-media-type", f"got {media or 'no content type'}")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise Problem("body-too-large", f"at most {MAX_BODY_BYTES} bytes")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise Problem("body-too-large", f"at most {MAX_BODY_BYTES} bytes")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise Problem("malformed-json", str(exc)) from None
        events = [
            _hash_bank_card_token(event, token_key)
            for event in validate_events(payload, default_region=settings.default_region)
        ]
        batch = isinstance(payload, dict) and "events" in payload
        refuse_other_stores(key, [e.store_id for e in events], batch=batch)
        unique: dict[str, PurchaseEvent | IdentifyEvent] = {}
        for event in events:
            unique.setdefault(event.event_id, event)
        records = [
            (e.key.encode(), e.model_dump_json(exclude_none=True).encode()) for e in unique.values()
        ]
        started = time.perf_counter()
        try:
            await publisher.publish(topic, records)
        except BusUnavailable as exc:
            log.warning("broker unavailable", error=str(exc), events=len(records))
            raise Problem(
                "broker-unavailable",
                "the event broker did not acknowledge in time",
                headers={"Retry-After": "5"},
            ) from None
        metrics.produce_seconds.observe(time.perf_counter() - started)
        metrics.accepted.inc(len(records))
        return JSONResponse(
            {"accepted": len(records), "duplicates": len(events) - len(records)}, status_code=202
        )

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
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
