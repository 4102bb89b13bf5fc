"""The console app: login and logout, the dashboard, static files, and the JSON API's routers.

One FastAPI app of its own, with its session middleware, so that ``nudge console``
runs it alone and ``nudge serve`` mounts it beside ingest (:func:`mount_console`):
ingest's routes stay free of cookies and sessions. The JSON API routers (segments,
templates, campaigns) come in through ``routers``; their routes use the role
aliases of :mod:`services.console.security`, and the CSRF check applies to them
like to every route of this app.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import SecretStr
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.console.api.problems import CONSOLE_PROBLEM_KINDS
from services.console.logins import DeviceCookies, LoginLimiter
from services.console.security import (
    CSRF_FIELD,
    Analyst,
    LoginRequired,
    csrf_protected,
    csrf_token,
    end_session,
    start_session,
)
from services.console.settings import ConsoleConfig, console_config
from services.http.auth import Guard
from services.http.bodies import MAX_BODY_BYTES
from services.http.problems import (
    PROBLEM_KINDS,
    Problem,
    install_problem_handlers,
    problem_response,
)
from services.http.rate_limit import RateLimiter
from shared.domain.lifecycle import STAGES
from shared.errors import StoreUnavailable
from shared.logging import get_logger
from shared.ports.api_keys import ApiKeys
from shared.ports.console import ConsoleQueries
from shared.ports.sessions import Sessions
from shared.ports.users import Users
from shared.settings import Settings

__all__ = [
    "LIFECYCLE_SEGMENTS",
    "SESSION_COOKIE",
    "create_console_app",
    "mount_console",
]

HERE = Path(__file__).parent
SESSION_COOKIE = "nudge_console"
LIFECYCLE_SEGMENTS: tuple[tuple[str, str], ...] = tuple(
    (stage, f"lifecycle-{stage}") for stage in STAGES
)
"""The dashboard's lifecycle stages, in life order, each with the segment that holds it."""

_SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    ),
]

log = get_logger(__name__)


class _SecurityHeaders:
    """No framing, no sniffing, and scripts only from the console itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _local_path(target: str | None) -> str:
    """``target`` if it is a path on this site, else ``/``: the login never sends elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target


def create_console_app(
    settings: Settings,
    users: Users,
    queries: ConsoleQueries,
    *,
    sessions: Sessions,
    session_secret: SecretStr | None = None,
    session_hours: float = 8.0,
    routers: Sequence[APIRouter] = (),
    api_keys: ApiKeys | None = None,
    lifecycle_segments: Sequence[tuple[str, str]] = LIFECYCLE_SEGMENTS,
    logins: LoginLimiter | None = None,
) -> FastAPI:
    """The console on ``users``, ``queries`` and ``sessions`` (none is closed here).

    ``routers`` are included as they are, after the pages: the console's JSON API.
    With ``api_keys``, routes guarded by :func:`~services.console.security.require_scope`
    also admit scripts' API keys (``console:read``, ``console:write``).
    ``session_secret`` and ``session_hours`` are the console's settings (see
    :mod:`services.console.settings`). ``logins`` counts login attempts (see
    :mod:`services.console.logins`; by default on the monotonic clock, believing the
    ``X-Forwarded-For`` of ``settings.trusted_proxies``).
    """
    config = console_config(settings, session_secret=session_secret, session_hours=session_hours)
    app = FastAPI(
        title="nudge console",
        version="1",
        docs_url="/console/docs",
        redoc_url=None,
        openapi_url="/console/openapi.json",
        dependencies=[Depends(csrf_protected)],
        max_body_size=MAX_BODY_BYTES,  # counted while it streams, for every form and body
    )
    app.state.users = users
    app.state.queries = queries
    app.state.sessions = sessions
    app.state.session_lifetime = timedelta(seconds=config.session_seconds)
    app.state.logins = logins or LoginLimiter(settings.trusted_proxies)
    app.state.devices = DeviceCookies(config.session_key, secure=config.secure_cookies)
    if api_keys is not None:
        app.state.guard = Guard(
            api_keys, RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
        )
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals["csrf_field"] = CSRF_FIELD
    app.state.templates = templates  # page routers (services/console/pages/) render with it
    _install_error_pages(app, templates)
    app.include_router(_pages(templates, lifecycle_segments))
    for router in routers:
        app.include_router(router)
    app.mount("/static", _StaticFiles(directory=HERE / "static"), name="static")
    _add_middleware(app, config)
    return app


def _add_middleware(app: FastAPI, config: ConsoleConfig) -> None:
    app.add_middleware(_SecurityHeaders)
    app.add_middleware(
        SessionMiddleware,
        secret_key=config.session_key.decode(),
        session_cookie=SESSION_COOKIE,
        max_age=config.session_seconds,
        same_site="lax",
        https_only=config.secure_cookies,
    )


class _BesideIngest(Mount):
    """The console at ``/``, leaving to ingest every path one of ingest's routes has.

    A plain mount at ``/`` matches every path fully, so a wrong method on an ingest
    path (``GET /v1/events``) fell through to the console and came back 404; left to
    ingest's route, it is 405 with ``Allow``.
    """

    def __init__(self, console: ASGIApp, ingest_routes: Sequence[BaseRoute]) -> None:
        super().__init__("/", app=console, name="console")
        self._ingest_routes = tuple(ingest_routes)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and any(
            route.matches(scope)[0] is not Match.NONE for route in self._ingest_routes
        ):
            return Match.NONE, {}
        return super().matches(scope)


class _StaticFiles(StaticFiles):
    """Static files whose 405 names what they take."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(status_code=405, headers={"Allow": "GET, HEAD"})
        return await super().get_response(path, scope)


def mount_console(ingest: FastAPI, console: FastAPI) -> None:
    """Serve ``console`` from the same app as ``ingest`` (``nudge serve``).

    Mounted at ``/`` after every ingest route, so ingest's paths win (with their
    methods: another is 405) and everything else (the pages, ``/static``, the
    console's ``/v1`` API) reaches the console. Call it last, once ingest's routes
    are all added.
    """
    ingest.router.routes.append(_BesideIngest(console, list(ingest.router.routes)))


def _install_error_pages(app: FastAPI, templates: Jinja2Templates) -> None:
    install_problem_handlers(app, CONSOLE_PROBLEM_KINDS)

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        if "text/html" not in request.headers.get("accept", ""):
            return problem_response(exc)
        _status, title, _text = PROBLEM_KINDS[exc.kind]
        return templates.TemplateResponse(
            request,
            "problem.html",
            {"title": title, "detail": exc.detail, "kind": exc.kind},
            status_code=exc.status,
            headers=exc.headers,
        )

    async def on_login_required(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(exc.location, status_code=303)

    async def on_store_unavailable(request: Request, exc: Exception) -> Response:
        log.warning("console store unavailable", error=str(exc))
        return await on_problem(
            request,
            Problem(
                "not-ready",
                "the database did not answer; try again in a moment",
                headers={"Retry-After": "5"},
            ),
        )

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(LoginRequired, on_login_required)
    app.add_exception_handler(StoreUnavailable, on_store_unavailable)


def _pages(templates: Jinja2Templates, lifecycle_segments: Sequence[tuple[str, str]]) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        context.setdefault("user", None)
        return templates.TemplateResponse(
            request, name, {"csrf": csrf_token(request), **context}, status_code=status_code
        )

    @router.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, next: str = "/") -> Response:
        return render(request, "login.html", next=_local_path(next), error=None)

    @router.post("/login")
    async def log_in(
        request: Request,
        username: Annotated[str, Form(max_length=200)],
        password: Annotated[str, Form(max_length=2000)],
        next: Annotated[str, Form()] = "/",
    ) -> Response:
        if not request.session:
            raise Problem("forbidden", "the login form expired: reload the login page")
        logins: LoginLimiter = request.app.state.logins
        devices: DeviceCookies = request.app.state.devices
        attempt = logins.attempt(
            logins.address(request), username, devices.device_of(request, username)
        )
        if attempt.wait > 0:  # each try costs an argon2 check: guessing is slow and bounded
            raise Problem(
                "rate-limited",
                "too many login attempts: wait a little and try again (a browser that "
                "logged in as this user before is not kept waiting)",
                headers={"Retry-After": str(max(1, math.ceil(attempt.wait)))},
            )
        users: Users = request.app.state.users
        try:
            user = await users.authenticate(username, password)
        except BaseException:
            logins.not_a_failure(attempt)  # the password was never judged
            raise
        target = _local_path(next)
        if user is None:
            log.info("console login refused", under_attack=logins.under_attack(username))
            return render(
                request,
                "login.html",
                status_code=401,
                next=target,
                username=username,
                error="Wrong username or password.",
            )
        logins.not_a_failure(attempt)
        await start_session(request, user)
        log.info("console login", user=user.username, role=user.role)
        answer = RedirectResponse(target, status_code=303)
        devices.remember(answer, user.username)
        return answer

    @router.post("/logout")
    async def log_out(request: Request) -> Response:
        await end_session(request)
        return RedirectResponse("/login", status_code=303)

    async def _counts(request: Request) -> dict[str, Any]:
        queries: ConsoleQueries = request.app.state.queries
        sizes = await queries.segment_sizes([key for _stage, key in lifecycle_segments])
        return {
            "buyers": await queries.buyer_count(),
            "stages": [(stage, sizes.get(key, 0)) for stage, key in lifecycle_segments],
            "largest": max(sizes.values(), default=0),
        }

    @router.get("/", response_class=HTMLResponse)
    async def dashboard(request: Request, user: Analyst) -> Response:
        return render(request, "dashboard.html", user=user, **await _counts(request))

    @router.get("/dashboard/counts", response_class=HTMLResponse)
    async def dashboard_counts(request: Request, user: Analyst) -> Response:
        """The counts alone, which the dashboard reloads every 30 seconds (htmx)."""
        return render(request, "_counts.html", user=user, **await _counts(request))

    return router
