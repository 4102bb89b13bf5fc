"""Who is using the console: the session's user, their role, and the CSRF check.

The session is a signed cookie (Starlette's ``SessionMiddleware``, itsdangerous
underneath) holding a random session id and a random CSRF token, nothing else. The
server keeps the session (:class:`~shared.ports.sessions.Sessions`, a hash of its id):
every request asks it who the session's user is, then reads the user again, so a
logout, a disabled user or a changed role counts at once, for every copy of the cookie.

A route states what it needs with a dependency alias::

    async def save_segment(..., user: Marketer) -> ...

or, on the JSON API that scripts call with API keys too, ``require_scope("console:write")``.

A browser without a session is sent to the login page; any other client gets a
401 ``unauthorized`` problem. A user whose role is short gets a 403 ``forbidden``.
Every unsafe request (POST, PUT, PATCH, DELETE) made with a session must carry the
session's CSRF token, in the form field ``csrf_token`` or the ``X-CSRF-Token``
header (htmx sends the header, see ``base.html``); otherwise it is refused with a
403 ``forbidden`` problem, before the route runs.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from services.http.auth import Credentials, Guard
from services.http.problems import Problem
from shared.errors import StoreUnavailable
from shared.ports.api_keys import ApiKey, Scope
from shared.ports.sessions import Sessions
from shared.ports.users import ConsoleUser, Role, Users

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SCOPE_ROLES",
    "Admin",
    "Analyst",
    "LoginRequired",
    "Marketer",
    "csrf_protected",
    "csrf_token",
    "disable_user",
    "end_session",
    "require",
    "require_scope",
    "start_session",
]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class LoginRequired(Exception):
    """A browser asked for a page without a session: it is sent to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.location = f"/login?next={quote(next_path, safe='/')}"


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use (the login form needs one too)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def start_session(request: Request, user: ConsoleUser) -> None:
    """A fresh session for ``user``: nothing of the session before login is kept, and
    the server session the cookie held, if any, ends (a copy of the old cookie opens
    nothing)."""
    sessions: Sessions = request.app.state.sessions
    lifetime: timedelta = request.app.state.session_lifetime
    earlier = request.session.get("session")
    if isinstance(earlier, str):
        await sessions.end(earlier)
    session_id = await sessions.start(user.id, lifetime)
    request.session.clear()
    request.session["session"] = session_id
    request.session["csrf"] = secrets.token_urlsafe(32)


async def end_session(request: Request) -> None:
    """End the request's session on the server (logout), and clear its cookie."""
    session_id = request.session.get("session")
    if isinstance(session_id, str):
        sessions: Sessions = request.app.state.sessions
        await sessions.end(session_id)
    request.session.clear()


async def disable_user(users: Users, sessions: Sessions, username: str) -> int | None:
    """Disable ``username`` for good, then end every live session of theirs on the
    server: how many ended; ``None`` when there is no such user. The one way to
    disable a console user (``nudge users disable``, and any page that comes to do it)."""
    user = await users.find(username)
    if user is None or not await users.disable(username):
        return None
    return await sessions.end_all(user.id)


async def csrf_protected(request: Request) -> None:
    """Refuse an unsafe request made with a session unless it carries the session's token."""
    if request.method in _SAFE_METHODS or not request.session:
        return
    expected = request.session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(_FORM_TYPES):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not (isinstance(expected, str) and sent and hmac.compare_digest(sent, expected)):
        raise Problem(
            "forbidden",
            "the form's CSRF token is missing or wrong: reload the page and send it again",
        )


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "") and "HX-Request" not in request.headers


async def _session_user(request: Request) -> ConsoleUser | None:
    session_id = request.session.get("session")
    if not isinstance(session_id, str):
        return None
    sessions: Sessions = request.app.state.sessions
    users: Users = request.app.state.users
    try:
        user_id = await sessions.user_of(session_id)
        user = None if user_id is None else await users.get(user_id)
    except StoreUnavailable:
        raise Problem(
            "auth-unavailable",
            "the console user could not be checked: the database did not answer",
            headers={"Retry-After": "5"},
        ) from None
    if user is None or not user.active:
        request.session.clear()
        return None
    return user


def require(role: Role) -> Callable[[Request], Awaitable[ConsoleUser]]:
    """A dependency that admits the session's user if they have ``role``'s rights."""

    async def admitted(request: Request) -> ConsoleUser:
        user = await _session_user(request)
        if user is None:
            if _wants_html(request):
                path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                raise LoginRequired(path)
            raise Problem("unauthorized", "log in to the console first")
        if not user.has(role):
            raise Problem(
                "forbidden", f"this needs the {role} role; {user.username} is {user.role}"
            )
        return user

    return admitted


SCOPE_ROLES: dict[Scope, Role] = {
    "console:read": "analyst",
    "console:write": "marketer",
    "admin": "admin",
}
"""The role a console user needs for what an API key's scope allows."""


def require_scope(scope: Scope) -> Callable[..., Awaitable[ConsoleUser | ApiKey]]:
    """A dependency for the console's JSON API: a script's API key with ``scope``, or a
    logged-in user with the matching role (:data:`SCOPE_ROLES`).

    A request with ``Authorization: Bearer`` is judged by its key alone (on an app
    given ``api_keys``); any other by its session.
    """
    by_session = require(SCOPE_ROLES[scope])

    async def admitted(request: Request, credentials: Credentials) -> ConsoleUser | ApiKey:
        guard: Guard | None = getattr(request.app.state, "guard", None)
        if credentials is not None and guard is not None:
            return await guard.admit(credentials, scope)
        return await by_session(request)

    return admitted


Analyst = Annotated[ConsoleUser, Depends(require("analyst"))]
"""Any logged-in user: reads."""
Marketer = Annotated[ConsoleUser, Depends(require("marketer"))]
"""A marketer or an admin: edits segments, templates and campaigns."""
Admin = Annotated[ConsoleUser, Depends(require("admin"))]
"""An admin: manages users, sees full identifiers."""
