"""Fake SMS and push providers for tests: real HTTP servers on 127.0.0.1 in each API's shape.

``FakeTwilio`` speaks Twilio's Messages API, ``FakeFcm`` FCM HTTP v1. Both keep
every request with its idempotency key, and deliver once per key as the real
services do (a request with a key seen before answers as the first did). They
can be told to fail the next N requests (5xx, 429 with ``Retry-After``), to
deliver and still answer 500 (an answer lost on the way), to reject, or to
hang until released.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.http import serving


@dataclass
class Seen:
    """One request as the provider received it."""

    key: str | None
    headers: dict[str, str]
    payload: dict[str, Any]
    peer: str = ""
    """The client's address and port: one per connection it opened."""


@dataclass
class _Failure:
    status: int
    retry_after: str | None = None
    deliver_first: bool = False


@dataclass
class FakeProvider:
    credential: str
    requests: list[Seen] = field(default_factory=list)
    delivered: dict[str, dict[str, Any]] = field(default_factory=dict)
    """One entry per idempotency key: what was delivered."""
    url: str = ""
    _answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    _failures: deque[_Failure] = field(default_factory=deque)
    _rejecting: bool = False
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _hanging: bool = False

    # What to do next

    def fail(self, times: int, status: int = 500, *, retry_after: str | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` and deliver nothing."""
        self._failures.extend(_Failure(status, retry_after) for _ in range(times))

    def lose_answers(self, times: int) -> None:
        """Deliver the next ``times`` messages but answer 500, as if the answer was lost."""
        self._failures.extend(_Failure(500, deliver_first=True) for _ in range(times))

    def reject(self, rejecting: bool = True) -> None:
        """Refuse every message as the provider refuses a bad address or token."""
        self._rejecting = rejecting

    def hang(self) -> None:
        """Hold every request without an answer until :meth:`release`."""
        self._hanging = True
        self._released.clear()

    def release(self) -> None:
        self._hanging = False
        self._released.set()

    def heal(self) -> None:
        self._failures.clear()
        self._rejecting = False
        self.release()

    def deliveries(self, key: str) -> int:
        return 1 if key in self.delivered else 0

    def keys_seen(self) -> list[str | None]:
        return [seen.key for seen in self.requests]

    # The API's shape, per provider

    def route(self) -> str:
        raise NotImplementedError

    def authorised(self, request: Request) -> bool:
        raise NotImplementedError

    def key_of(self, request: Request) -> str | None:
        raise NotImplementedError

    async def payload_of(self, request: Request) -> dict[str, Any]:
        raise NotImplementedError

    def accepted(self, payload: dict[str, Any], number: int) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def error(self, status: int) -> dict[str, Any]:
        raise NotImplementedError

    def rejection(self) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    # The server

    async def handle(self, request: Request) -> Response:
        key = self.key_of(request)
        payload = await self.payload_of(request)
        peer = f"{request.client.host}:{request.client.port}" if request.client else ""
        self.requests.append(Seen(key, dict(request.headers), payload, peer))
        if self._hanging:
            await self._released.wait()
        if not self.authorised(request):
            return JSONResponse(self.error(401), status_code=401)
        if self._failures:
            failure = self._failures.popleft()
            if failure.deliver_first:
                self._deliver(key, payload)
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else None
            return JSONResponse(
                self.error(failure.status), status_code=failure.status, headers=headers
            )
        if self._rejecting:
            status, body = self.rejection()
            return JSONResponse(body, status_code=status)
        status, answer = self._deliver(key, payload)
        return JSONResponse(answer, status_code=status)

    def _deliver(self, key: str | None, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if key is not None and key in self._answers:
            return 200, self._answers[key]  # the same key: the first answer, no new message
        status, answer = self.accepted(payload, len(self.delivered) + 1)
        self.delivered[key or f"no-key-{len(self.delivered)}"] = payload
        if key is not None:
            self._answers[key] = answer
        return status, answer

    def app(self) -> Starlette:
        return Starlette(routes=[Route(self.route(), self.handle, methods=["POST"])])


class FakeTwilio(FakeProvider):
    """Twilio's Messages API: form in, ``sid`` out, errors as ``{code, message, status}``."""

    account_sid = "AC0123456789abcdef0123456789abcdef"

    def __init__(self, auth_token: str = "twilio-token") -> None:
        super().__init__(credential=auth_token)

    def route(self) -> str:
        return f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def authorised(self, request: Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.credential}".encode()).decode()
        return request.headers.get("authorization") == f"Basic {expected}"

    def key_of(self, request: Request) -> str | None:
        return request.headers.get("i-twilio-idempotency-token")

    async def payload_of(self, request: Request) -> dict[str, Any]:
        form = await request.form()
        return {name: str(value) for name, value in form.items()}

    def accepted(self, payload: dict[str, Any], number: int) -> tuple[int, dict[str, Any]]:
        sid = f"SM{number:032x}"
        return 201, {"sid": sid, "status": "queued", "to": payload.get("To")}

    def error(self, status: int) -> dict[str, Any]:
        codes = {401: (20003, "Authenticate"), 429: (20429, "Too Many Requests")}
        code, message = codes.get(status, (20500, "Internal Server Error"))
        return {"code": code, "message": message, "status": status}

    def rejection(self) -> tuple[int, dict[str, Any]]:
        message = "The 'To' number is not a valid phone number."
        return 400, {"code": 21211, "message": message, "status": 400}


class FakeFcm(FakeProvider):
    """FCM HTTP v1: JSON in, ``name`` out, errors in Google's shape."""

    project_id = "shop-app"

    def __init__(self, access_token: str = "ya29.fcm-token") -> None:
        super().__init__(credential=access_token)

    def route(self) -> str:
        return f"/v1/projects/{self.project_id}/messages:send"

    def authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.credential}"

    def key_of(self, request: Request) -> str | None:
        return request.headers.get("idempotency-key")

    async def payload_of(self, request: Request) -> dict[str, Any]:
        body = await request.json()
        assert isinstance(body, dict)
        return body

    def accepted(self, payload: dict[str, Any], number: int) -> tuple[int, dict[str, Any]]:
        return 200, {"name": f"projects/{self.project_id}/messages/0:{number}"}

    def error(self, status: int) -> dict[str, Any]:
        statuses = {401: "UNAUTHENTICATED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}
        google = statuses.get(status, "UNAVAILABLE")
        return {"error": {"code": status, "message": "try again", "status": google}}

    def rejection(self) -> tuple[int, dict[str, Any]]:
        detail = {
            "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
            "errorCode": "UNREGISTERED",
        }
        error = {
            "code": 404,
            "message": "Requested entity was not found.",
            "status": "NOT_FOUND",
            "details": [detail],
        }
        return 404, {"error": error}


@contextlib.asynccontextmanager
async def running(fake: FakeProvider) -> AsyncIterator[FakeProvider]:
    """Serve ``fake`` on 127.0.0.1 (``fake.url``); release any held request before stopping."""
    async with serving(fake.app()) as url:
        fake.url = url
        try:
            yield fake
        finally:
            fake.release()
