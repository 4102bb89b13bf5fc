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

from services.ingest.problems import PROBLEM_KINDS, Problem, install_problem_handlers
from shared.domain.events import EventBatch, IdentifyEvent, PurchaseEvent, event_adapter
from shared.errors import BusUnavailable
from shared.logging import get_logger
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
    return prefix + "".join(f"/{p}" for p in parts)


def validate_events(payload: Any) -> list[PurchaseEvent | IdentifyEvent]:
    """The events of a request body, or a :class:`Problem` naming every bad one."""
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
    events: list[PurchaseEvent | IdentifyEvent] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            events.append(event_adapter.validate_python(item))
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


def create_app(settings: Settings, publisher: Publisher) -> FastAPI:
    app = FastAPI(
        title="nudge",
        version="1",
        summary="Trigger communications for retail CRM marketing",
    )
    install_problem_handlers(app)
    metrics = IngestMetrics()
    topic = settings.topic("events")
    app.state.metrics = metrics

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
        responses={202: {"description": "accepted: the broker acknowledged every event"}},
    )
    async def post_events(request: Request) -> JSONResponse:
        try:
            return await _accept(request)
        except Problem as problem:
            metrics.refused.labels(problem.kind).inc()
            raise

    async def _accept(request: Request) -> JSONResponse:
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
        events = validate_events(payload)
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

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
