"""Who may call the HTTP API: an API key in ``Authorization: Bearer <key>``, its scopes,
its stores and its rate.

A route states what it needs with a dependency alias::

    async def post_events(request: Request, key: EventsWriter) -> JSONResponse: ...

and gets the key that passed; otherwise the request is refused before the route
runs, as a problem: ``unauthorized`` (401, no key, an unknown or revoked one),
``forbidden`` (403, the key lacks the scope), ``rate-limited`` (429, with
``Retry-After``), ``auth-unavailable`` (503, the key database did not answer).
The key itself is never logged nor echoed.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.http.problems import Problem
from services.http.rate_limit import RateLimiter
from shared.errors import StoreUnavailable
from shared.logging import get_logger
from shared.ports.api_keys import ApiKey, ApiKeys, Scope

__all__ = ["EventsWriter", "Guard", "refuse_other_stores", "require"]

log = get_logger(__name__)

bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="nk_<key id>_<secret>",
    description="An API key from `nudge keys create`.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class Guard:
    """Admits a request's key for a scope, or refuses it with a :class:`Problem`."""

    def __init__(
        self,
        keys: ApiKeys,
        limiter: RateLimiter,
        on_refused: Callable[[str], None] = lambda _kind: None,
    ) -> None:
        self.keys = keys
        self.limiter = limiter
        self._on_refused = on_refused

    async def admit(self, credentials: HTTPAuthorizationCredentials | None, scope: Scope) -> ApiKey:
        try:
            return await self._admit(credentials, scope)
        except Problem as problem:
            self._on_refused(problem.kind)
            raise

    async def _admit(
        self, credentials: HTTPAuthorizationCredentials | None, scope: Scope
    ) -> ApiKey:
        if credentials is None:
            raise Problem(
                "unauthorized",
                "send an API key as Authorization: Bearer <key>",
                headers=dict(_CHALLENGE),
            )
        try:
            key = await self.keys.authenticate(credentials.credentials)
        except StoreUnavailable as exc:
            log.warning("api keys unavailable", error=str(exc))
            raise Problem(
                "auth-unavailable",
                "the API key could not be checked: the database did not answer",
                headers={"Retry-After": "5"},
            ) from None
        if key is None:
            raise Problem(
                "unauthorized", "the API key is unknown or revoked", headers=dict(_CHALLENGE)
            )
        if not key.allows(scope):
            raise Problem("forbidden", f"this API key does not have the scope {scope}")
        wait = self.limiter.take(key.id)
        if wait > 0:
            raise Problem(
                "rate-limited",
                f"this API key may make {self.limiter.rate:g} requests a second "
                f"(bursts of {self.limiter.burst})",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        return key


Admitted = Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[ApiKey]]


def require(scope: Scope) -> Admitted:
    """A dependency that admits the request's API key for ``scope`` (``admin`` has every scope)."""

    async def admitted(request: Request, credentials: Credentials) -> ApiKey:
        guard: Guard = request.app.state.guard
        return await guard.admit(credentials, scope)

    return admitted


EventsWriter = Annotated[ApiKey, Depends(require("events:write"))]


def refuse_other_stores(key: ApiKey, store_ids: Sequence[str | None], *, batch: bool) -> None:
    """Refuse the whole request if ``key`` is bound to stores and an event names another one.

    One problem entry per such event, pointing at its ``store_id`` (an event with no
    ``store_id`` is refused too: the key may post only for its stores).
    """
    if not key.stores:
        return
    allowed = ", ".join(sorted(key.stores))
    errors: list[dict[str, Any]] = []
    for index, store_id in enumerate(store_ids):
        if key.may_post_for(store_id):
            continue
        entry: dict[str, Any] = {
            "pointer": f"/events/{index}/store_id" if batch else "/store_id",
            "detail": f"this API key posts only for the stores {allowed}",
        }
        errors.append({"index": index, **entry} if batch else entry)
    if errors:
        raise Problem(
            "forbidden",
            f"{len(errors)} of {len(store_ids)} events are for stores this API key may not "
            "post for; none was accepted",
            errors,
        )
