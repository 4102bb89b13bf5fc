"""RFC 9457 problem details: how every HTTP app of nudge refuses a request.

Each kind of problem has a stable ``type`` URI (``/problems/<kind>``, described at
that path), a ``title`` that never changes for the kind, and a ``detail`` that
says what was wrong with this request. A batch refusal lists one entry per bad
event, with its index and a JSON pointer into the request body.

The kinds are registered explicitly: the HTTP pieces' own (:data:`HTTP_PROBLEM_KINDS`:
the body, the routing, the API key, a dependency not ready) always, and each app's as
it is built (ingest's in :mod:`services.ingest.problems`, the console's in
:mod:`services.console.api.problems`, the stopping process's in
:mod:`services.running.lifecycle`). A kind raised must be registered in every process
that can raise it: an unregistered one would answer 500.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match, Mount

from shared.domain.documents import escape

__all__ = [
    "HTTP_PROBLEM_KINDS",
    "PROBLEM_KINDS",
    "Problem",
    "ProblemKind",
    "ProblemKinds",
    "allowed_methods",
    "install_problem_handlers",
    "json_pointer",
    "problem_response",
    "register_problem_kinds",
]

ProblemKind = tuple[int, str, str]
"""A kind's HTTP status, its title (never changes for the kind) and what it means."""

HTTP_PROBLEM_KINDS: dict[str, ProblemKind] = {
    "malformed-json": (400, "Malformed JSON", "The request body is not valid JSON."),
    "unsupported-media-type": (
        415,
        "Unsupported media type",
        "Send the body as application/json.",
    ),
    "body-too-large": (413, "Body too large", "The request body is over the size limit."),
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
}
"""The kinds every HTTP app of nudge may answer: the body, the routing, the API key, and
``not-ready`` (ingest's ``/readyz``; the console when its database does not answer)."""


class ProblemKinds:
    """The problem kinds this process answers with, kind by kind: the HTTP pieces' own,
    and those each app registers when it is built (:func:`register_problem_kinds`)."""

    def __init__(self, kinds: Mapping[str, ProblemKind]) -> None:
        self._kinds = dict(kinds)

    def register(self, kinds: Mapping[str, ProblemKind]) -> None:
        """Answer with ``kinds`` too; a kind registered again must mean the same."""
        for kind, described in kinds.items():
            if self._kinds.setdefault(kind, described) != described:
                raise ValueError(f"problem kind {kind!r} is registered with another meaning")

    def __contains__(self, kind: object) -> bool:
        return kind in self._kinds

    def __getitem__(self, kind: str) -> ProblemKind:
        return self._kinds[kind]


PROBLEM_KINDS = ProblemKinds(HTTP_PROBLEM_KINDS)


def register_problem_kinds(*kinds: Mapping[str, ProblemKind]) -> None:
    """Register the kinds an app answers with, as the app is built."""
    for each in kinds:
        PROBLEM_KINDS.register(each)


def json_pointer(loc: Sequence[int | str]) -> str:
    """The RFC 6901 pointer of a pydantic error location, inside the body that was sent.

    A bad object key (pydantic's ``[key]`` marker) points at its member, the place in
    the request that holds it.
    """
    return "".join("/" + escape(str(part)) for part in loc if part != "[key]")


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


def install_problem_handlers(app: Any, *kinds: Mapping[str, ProblemKind]) -> None:
    """Answer ``app``'s refusals as problems; register the ``kinds`` it answers with
    beyond the HTTP pieces' own."""
    register_problem_kinds(*kinds)

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
