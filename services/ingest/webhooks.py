"""Delivery webhooks: providers report what became of each message, signed.

``POST /v1/webhooks/{provider}`` takes ``{"events": [report, ...]}`` (see
:mod:`shared.domain.delivery`) from a provider named in ``NUDGE_WEBHOOK_SECRETS``
(any other is 404). The request carries no API key; it is signed instead::

    X-Nudge-Timestamp: 1767225600                      (Unix seconds)
    X-Nudge-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>" under the secret>

The checks run in this order, each before any work of the next:

1. the provider (404) and the signature headers: missing or malformed, or a
   timestamp more than 5 minutes away from nudge's clock (a replayed request), is
   401 ``bad-signature`` before a byte of the body is read;
2. the body is read within :data:`~services.ingest.intake.MAX_BODY_BYTES`, counted
   while it streams: past it, 413 ``body-too-large`` at once;
3. the HMAC over the raw bytes: a wrong one is 401 ``bad-signature``;
4. only then is the body parsed, as ``POST /v1/events`` reads it (JSON, card numbers
   refused, a precise ``invalid-events`` entry per bad report), and each report is
   published as a ``message_*`` event, 202 once the broker acknowledged.

A report's event id is derived from the report (provider, message key, status,
time) and claimed like any other: the same report again is a duplicate, one that
differs in what else it says (recipient, channel, url, bounce) is
``event-id-conflict``, its pointer the report.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from services.http.bodies import parse_json, read_body, require_json
from services.http.problems import Problem, json_pointer
from services.ingest.intake import (
    EventPublisher,
    refuse_card_numbers,
)
from shared.domain.delivery import PLAUSIBLE_CONTEXT_KEY, REGION_CONTEXT_KEY, DeliveryReports
from shared.domain.events import Plausible
from shared.logging import get_logger
from shared.ports.clock import Clock
from shared.settings import Settings

__all__ = ["REPLAY_WINDOW", "check_signature", "check_signature_headers", "webhook_router"]

REPLAY_WINDOW = timedelta(minutes=5)
"""How far a webhook's timestamp may be from nudge's clock, either way."""

_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE = re.compile(r"^v1=([0-9a-f]{64})$")

log = get_logger(__name__)


def check_signature_headers(
    timestamp: str | None, signature: str | None, clock: Clock
) -> tuple[str, str]:
    """``(timestamp, hex digest)`` from the headers, or ``bad-signature`` when they could
    not sign any body: missing, malformed, or outside :data:`REPLAY_WINDOW` of ``clock``.

    Needs no byte of the body, so an unsigned request is refused before it is read.
    """
    if timestamp is None or signature is None:
        raise Problem("bad-signature", "X-Nudge-Timestamp and X-Nudge-Signature are required")
    if not _TIMESTAMP.match(timestamp.strip()):
        raise Problem("bad-signature", "X-Nudge-Timestamp is Unix seconds")
    skew = clock.now().timestamp() - int(timestamp)
    if abs(skew) > REPLAY_WINDOW.total_seconds():
        side = "old" if skew > 0 else "far in the future"
        raise Problem("bad-signature", f"the timestamp is too {side}: at most 5 minutes either way")
    given = _SIGNATURE.match(signature.strip().lower())
    if given is None:
        raise Problem("bad-signature", "X-Nudge-Signature is v1=<64 hex digits>")
    return timestamp.strip(), given.group(1)


def check_signature(
    secret: bytes, timestamp: str | None, signature: str | None, body: bytes, clock: Clock
) -> None:
    """Refuse with ``bad-signature`` unless ``signature`` signs ``timestamp`` and ``body``
    under ``secret`` and ``timestamp`` is within :data:`REPLAY_WINDOW` of ``clock``."""
    stamp, digest = check_signature_headers(timestamp, signature, clock)
    _check_mac(secret, stamp, digest, body)


def _check_mac(secret: bytes, timestamp: str, digest: str, body: bytes) -> None:
    expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    if not hmac.compare_digest(expected.hexdigest().encode(), digest.encode()):
        raise Problem("bad-signature", "the signature does not match the body and timestamp")


def webhook_router(settings: Settings, clock: Clock, events: EventPublisher) -> APIRouter:
    """The delivery webhook route, checking signatures against ``clock``."""
    router = APIRouter()
    secrets = {
        provider: secret.get_secret_value().encode()
        for provider, secret in settings.webhook_secrets.items()
    }

    @router.post(
        "/v1/webhooks/{provider}",
        status_code=202,
        summary="A provider's delivery reports, signed: each becomes a message_* event",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": DeliveryReports.model_json_schema(
                            ref_template="#/components/schemas/{model}"
                        )
                    }
                },
            }
        },
        responses={
            202: {"description": "accepted: the broker acknowledged every event"},
            401: {"description": "bad-signature: missing, wrong, or outside the 5 minute window"},
            404: {"description": "no such provider"},
            409: {"description": "event-id-conflict: a report came before with other content"},
        },
    )
    async def delivery_webhook(
        provider: str,
        request: Request,
        x_nudge_timestamp: Annotated[str | None, Header()] = None,
        x_nudge_signature: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        try:
            secret = secrets.get(provider)
            if secret is None:
                raise Problem("not-found", f"no webhook provider {provider!r}")
            stamp, digest = check_signature_headers(x_nudge_timestamp, x_nudge_signature, clock)
            body = await read_body(request)  # stops at the limit, before any parsing
            _check_mac(secret, stamp, digest, body)
            require_json(request)
            plausible = Plausible(
                settings.occurred_at_earliest, clock.now(), settings.occurred_at_max_future
            )
            reports = _reports(parse_json(body), settings.default_region, plausible)
            accepted, duplicates = await events.publish(
                [r.event(provider) for r in reports.events], pointer="/events/{}"
            )
        except Problem as problem:
            events.metrics.refused.labels(problem.kind).inc()
            if problem.kind == "bad-signature":
                log.warning("webhook refused", provider=provider, reason=problem.detail)
            raise
        return JSONResponse({"accepted": accepted, "duplicates": duplicates}, status_code=202)

    return router


def _reports(payload: Any, default_region: str, plausible: Plausible) -> DeliveryReports:
    if isinstance(payload, dict) and isinstance(payload.get("events"), list):
        refuse_card_numbers(payload["events"], "/events/{}")
    context = {REGION_CONTEXT_KEY: default_region, PLAUSIBLE_CONTEXT_KEY: plausible}
    try:
        return DeliveryReports.model_validate(payload, context=context)
    except ValidationError as exc:
        errors: list[dict[str, Any]] = []
        for error in exc.errors(include_input=False, include_url=False):
            loc = error["loc"]
            entry: dict[str, Any] = {"pointer": json_pointer(loc), "detail": error["msg"]}
            if len(loc) > 1 and loc[0] == "events" and isinstance(loc[1], int):
                entry = {"index": loc[1], **entry}
            errors.append(entry)
        raise Problem(
            "invalid-events", "the delivery reports do not match the contract", errors
        ) from None
