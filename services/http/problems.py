"""RFC 9457 problem details: every refusal the HTTP API makes, in one place.

Each kind of problem has a stable ``type`` URI (``/problems/<kind>``, described at
that path), a ``title`` that never changes for the kind, and a ``detail`` that
says what was wrong with this request. A batch refusal lists one entry per bad
event, with its index and a JSON pointer into the request body.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match, Mount

__all__ = [
    "PROBLEM_KINDS",
    "Problem",
    "allowed_methods",
    "install_problem_handlers",
    "json_pointer",
    "problem_response",
]

PROBLEM_KINDS: dict[str, tuple[int, str, str]] = {
    "malformed-json": (400, "Malformed JSON", "The request body is not valid JSON."),
    "invalid-events": (
        422,
        "Invalid events",
        "One or more events do not match the event contract; nothing of the request was "
        "accepted. Each entry of `errors` names the event's index and a JSON pointer.",
    ),
    "card-number": (
        422,
        "Card number",
        "An event carries what looks like a payment card number (13 to 19 digits under a "
        "card network's issuer prefix, Luhn-valid, contiguous or grouped as cards are "
        "written), in a value, a number or a key; nudge never accepts one, and nothing of "
        "the request was accepted. Each entry of `errors` names the event's index and the "
        "JSON pointer of the field (of its object, for a key), never the digits. Send a bank "
        "card token in `customer.bank_card_token` instead.",
    ),
    "too-many-events": (422, "Too many events", "A batch holds at most 1000 events."),
    "unsupported-media-type": (
        415,
        "Unsupported media type",
        "Send the body as application/json.",
    ),
    "body-too-large": (413, "Body too large", "The request body is over the size limit."),
    "broker-unavailable": (
        503,
        "Broker unavailable",
        "The event broker did not acknowledge in time; nothing is promised about this "
        "request. Retry after the number of seconds in Retry-After: a retried event is "
        "deduplicated by its event_id.",
    ),
    "event-id-conflict": (
        409,
        "Event id conflict",
        "An event id names one event: the request reuses one with other content, either "
        "within the request or against an event accepted before, and nothing of the "
        "request was accepted. Each entry of `errors` names the event's index and the JSON "
        "pointer of its id. The same id with the same content is a duplicate, not a "
        "conflict (see docs/api.md for what counts as the same content): give a new event "
        "a new id.",
    ),
    "database-unavailable": (
        503,
        "Database unavailable",
        "The database that keeps the accepted event ids did not answer; nothing of the "
        "request was accepted. Retry after the number of seconds in Retry-After.",
    ),
    "not-found": (404, "Not found", "No such resource."),
    "method-not-allowed": (405, "Method not allowed", "This resource does not take that method."),
    "invalid-request": (422, "Invalid request", "The request does not match the API."),
    "unauthorized": (
        401,
        "Unauthorized",
        "Send a valid API key as `Authorization: Bearer <key>`; the key was missing, "
        "unknown or revoked. `nudge keys create` makes one.",
    ),
    "forbidden": (
        403,
        "Forbidden",
        "The API key does not have the scope this resource needs, or it is bound to stores "
        "and an event names another store (or none); then `errors` names each such event, "
        "and nothing of the request was accepted.",
    ),
    "rate-limited": (
        429,
        "Rate limited",
        "The API key made more requests than its rate allows; retry after the number of "
        "seconds in Retry-After.",
    ),
    "auth-unavailable": (
        503,
        "Authentication unavailable",
        "The API key could not be checked because the database did not answer; retry after "
        "the number of seconds in Retry-After.",
    ),
    "not-ready": (
        503,
        "Not ready",
        "The event broker or the key database does not answer; requests would be refused.",
    ),
    "bad-signature": (
        401,
        "Bad signature",
        "A delivery webhook must carry `X-Nudge-Timestamp` (Unix seconds, within 5 minutes "
        "of nudge's clock) and `X-Nudge-Signature: v1=<hex HMAC-SHA256 of "
        '"<timestamp>.<raw body>" under the provider\'s secret>`; they were missing, '
        "malformed, too old or too far ahead, or did not match.",
    ),
    "bad-token": (
        400,
        "Bad unsubscribe link",
        "The unsubscribe link is not one nudge made: it was cut short, altered, or signed "
        "with another key. Use the link from the email as it came.",
    ),
}


def json_pointer(loc: Sequence[int | str]) -> str:
    """The RFC 6901 pointer of a pydantic error location, inside the body that was sent.

    A bad object key (pydantic's ``[key]`` marker) points at its member, the place in
    the request that holds it.
    """
    return "".join(
        "/" + str(part).replace("~", "~0").replace("/", "~1") for part in loc if part != "[key]"
    )


@dataclass
class Problem(Exception):
    kind: str
    detail: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> int:
        return PROBLEM_KINDS[self.kind][0]


def problem_response(problem: Problem) -> Response:
    status, title, _ = PROBLEM_KINDS[problem.kind]
    body: dict[str, Any] = {
        "type": f"/problems/{problem.kind}",
        "title": title,
        "status": status,
        "detail": problem.detail,
    }
    if problem.errors:
        body["errors"] = problem.errors
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/problem+json",
        headers=problem.headers,
    )


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> str:
    """Every method some route of ``request``'s app takes at its path, for ``Allow``.

    Starlette names only the first route that has the path, and a path often has one
    route per method (``GET`` and ``PUT /v1/segments/{key}``). Mounts are left out:
    what they take is theirs to say. Runs only on a 405.
    """
    routes = getattr(getattr(request.app, "router", None), "routes", ())
    allowed = []
    for method in _METHODS:
        probe = {**request.scope, "method": method}
        for route in routes:
            if not isinstance(route, Mount) and route.matches(probe)[0] is Match.FULL:
                allowed.append(method)
                break
    return ", ".join(allowed)


def install_problem_handlers(app: Any) -> None:
    async def on_problem(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(exc)

    async def on_http(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        kind = {404: "not-found", 405: "method-not-allowed", 413: "body-too-large"}.get(
            exc.status_code
        )
        headers = dict(exc.headers or {})  # a 405 carries Allow (RFC 9110 section 15.5.6)
        if exc.status_code == 405:  # no Allow at all rather than an empty one
            allowed = allowed_methods(_request) or headers.pop("Allow", "")
            if allowed:
                headers["Allow"] = allowed
        if kind is None:
            return Response(
                orjson.dumps(
                    {"type": "about:blank", "title": str(exc.detail), "status": exc.status_code}
                ),
                status_code=exc.status_code,
                media_type="application/problem+json",
                headers=headers,
            )
        return problem_response(Problem(kind, str(exc.detail), headers=headers))

    async def on_validation(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"pointer": "/" + "/".join(str(p) for p in e["loc"][1:]), "detail": e["msg"]}
            for e in exc.errors()
        ]
        return problem_response(Problem("invalid-request", "the request is not valid", errors))

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
