"""The whole console on one database engine: pages, users and its JSON API.

``nudge console`` serves it alone; ``nudge serve`` mounts it beside ingest. Both
build it here, so the two never differ in which routes they have.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.bootstrap import build_renderer, console_accounts
from services.console.api import campaigns, customers, kpis, segments, templates
from services.console.app import create_console_app
from services.console.pages import campaigns as campaign_pages
from services.console.pages import page_routers
from services.console.security import require_scope
from services.console.settings import from_settings
from shared.adapters.store.console_queries import SqlConsoleQueries
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.reports import SqlCampaignResults
from shared.domain.campaigns import parse_campaign
from shared.ports.api_keys import ApiKeys
from shared.ports.clock import Clock
from shared.ports.rendering import Renderer
from shared.settings import Settings

__all__ = ["build_console", "console_routers"]


def console_routers(
    definitions: SqlDefinitions,
    queries: SqlConsoleQueries,
    clock: Clock,
    *,
    default_region: str | None = None,
    renderer: Renderer | None = None,
) -> list[APIRouter]:
    """The console's pages beyond the login, and its JSON API (each route of which admits
    a logged-in user or an API key with the scope); templates render in ``renderer``."""
    results = SqlCampaignResults(definitions.engine)  # the caller's engine: never closed here
    return [
        *page_routers(
            definitions,
            queries,
            queries,
            clock=clock,
            default_region=default_region,
            renderer=renderer,
        ),
        campaign_pages.router(definitions, results, clock=clock),
        segments.router(definitions, clock=clock, require=require_scope),
        templates.router(definitions, require=require_scope, renderer=renderer),
        campaigns.router(definitions, results, clock=clock, require=require_scope),
        customers.router(
            queries, clock=clock, default_region=default_region, require=require_scope
        ),
        kpis.router(queries, clock=clock, require=require_scope),
    ]


def build_console(
    settings: Settings,
    engine: AsyncEngine,
    clock: Clock,
    api_keys: ApiKeys,
    *,
    renderer: Renderer | None = None,
) -> FastAPI:
    """The console app on ``engine`` (not disposed here: it belongs to the caller); its
    templates render in ``renderer`` (default: worker processes of its own, per the
    settings, so that a flood of hostile previews never holds up the sends)."""
    definitions = SqlDefinitions(
        engine, clock=clock, validate_campaign=lambda key, doc: parse_campaign(doc, key=key)
    )
    queries = SqlConsoleQueries(engine)
    secret, hours = from_settings(settings)
    accounts = console_accounts(engine, clock)
    return create_console_app(
        settings,
        accounts.users,
        queries,
        sessions=accounts.sessions,
        session_secret=secret,
        session_hours=hours,
        routers=console_routers(
            definitions,
            queries,
            clock,
            default_region=settings.default_region,
            renderer=renderer if renderer is not None else build_renderer(settings),
        ),
        api_keys=api_keys,
    )
