"""The marketer's pages beside the dashboard: segments, templates, customers, the KPIs,
the models checked (analytics).

Each module makes an ``APIRouter`` of server-rendered pages (Jinja2, with htmx for the
live parts) that the console app includes like its JSON API routers; they render with
the app's templates (:func:`render`), so every page has the session's CSRF token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from services.console.security import csrf_token

__all__ = ["page_routers", "render"]

if TYPE_CHECKING:
    from shared.ports.clock import Clock
    from shared.ports.console import ConsoleQueries, SegmentSizeHistory
    from shared.ports.definitions import Definitions
    from shared.ports.orders import OrderHistory
    from shared.ports.rendering import Renderer
    from shared.ports.scoring import ScoringBase


def render(
    request: Request, template: str, /, *, status_code: int = 200, **context: Any
) -> Response:
    """The console template ``template`` with ``context``, the CSRF token and the user."""
    templates: Jinja2Templates = request.app.state.templates
    context.setdefault("user", None)
    return templates.TemplateResponse(
        request, template, {"csrf": csrf_token(request), **context}, status_code=status_code
    )


def page_routers(
    definitions: Definitions,
    queries: ConsoleQueries,
    history: SegmentSizeHistory,
    *,
    clock: Clock,
    renderer: Renderer,
    default_region: str | None = None,
    default_timezone: str = "UTC",
    orders: OrderHistory | None = None,
    scoring: ScoringBase | None = None,
) -> list[APIRouter]:
    """The dashboard's KPIs, segments, templates and customer pages, and with ``orders``
    the analytics page, for ``create_console_app(..., routers=[*page_routers(...), ...])``."""
    from services.console.pages import customers, dashboard, segments, templates  # noqa: PLC0415

    analytics: list[APIRouter] = []
    if orders is not None:
        from services.console.pages import analytics as validation  # noqa: PLC0415

        analytics.append(validation.router(orders, scoring))
    return [
        *analytics,
        dashboard.router(queries, clock=clock),
        segments.router(definitions, history, clock=clock),
        templates.router(definitions, queries, renderer=renderer, default_region=default_region),
        customers.router(
            queries,
            clock=clock,
            default_region=default_region,
            default_timezone=default_timezone,
        ),
    ]
