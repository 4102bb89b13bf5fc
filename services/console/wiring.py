"""The whole console on one database: pages, users and its JSON API.

``nudge console`` serves it alone; ``nudge serve`` mounts it beside ingest. Both
build it here, so the two never differ in which routes they have.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from services.bootstrap import Database, build_renderer
from services.catalogue import Catalogue
from services.console.api import (
    campaigns,
    customers,
    kpis,
    offers,
    programmes,
    segments,
    templates,
)
from services.console.app import create_console_app
from services.console.pages import campaigns as campaign_pages
from services.console.pages import offers as offer_pages
from services.console.pages import page_routers
from services.console.pages import programmes as programme_pages
from services.console.security import require_scope
from services.console.settings import from_settings
from shared.ports.clock import Clock
from shared.ports.console import ConsoleQueries, SegmentSizeHistory
from shared.ports.definitions import Definitions
from shared.ports.offers import Offers
from shared.ports.orders import OrderHistory
from shared.ports.rendering import Renderer
from shared.ports.reports import CampaignResultsStore
from shared.ports.scoring import ScoringBase
from shared.settings import Settings

__all__ = ["build_console", "console_routers"]


def console_routers(
    definitions: Definitions,
    queries: ConsoleQueries,
    sizes: SegmentSizeHistory,
    results: CampaignResultsStore,
    clock: Clock,
    *,
    renderer: Renderer,
    default_region: str | None = None,
    default_timezone: str = "UTC",
    orders: OrderHistory | None = None,
    scoring: ScoringBase | None = None,
    offer_store: Offers | None = None,
) -> list[APIRouter]:
    """The console's pages beyond the login, and its JSON API (each route of which admits
    a logged-in user or an API key with the scope); templates render in ``renderer``.
    The campaign pages and API check campaigns against one catalogue of what is in force;
    the offers API is there when ``offer_store`` is given."""
    catalogue = Catalogue(definitions)
    extra = (
        []
        if offer_store is None
        else [
            offers.router(offer_store, clock=clock, require=require_scope),
            offer_pages.router(offer_store),
        ]
    )
    return [
        *page_routers(
            definitions,
            queries,
            sizes,
            clock=clock,
            default_region=default_region,
            default_timezone=default_timezone,
            renderer=renderer,
            orders=orders,
            scoring=scoring,
        ),
        campaign_pages.router(
            definitions, results, clock=clock, catalogue=catalogue, offers=offer_store
        ),
        programme_pages.router(definitions, results, clock=clock, catalogue=catalogue),
        segments.router(definitions, clock=clock, require=require_scope),
        templates.router(definitions, renderer=renderer, require=require_scope),
        campaigns.router(
            definitions,
            results,
            clock=clock,
            require=require_scope,
            catalogue=catalogue,
            offers=offer_store,
        ),
        programmes.router(
            definitions,
            require=require_scope,
            catalogue=catalogue,
            results=results,
            clock=clock,
            offers=offer_store,
        ),
        customers.router(
            queries, clock=clock, default_region=default_region, require=require_scope
        ),
        kpis.router(queries, clock=clock, require=require_scope),
        *extra,
    ]


def build_console(
    settings: Settings,
    database: Database,
    *,
    renderer: Renderer | None = None,
) -> FastAPI:
    """The console app on ``database`` (not closed here: it belongs to the caller); its
    templates render in ``renderer`` (default: worker processes of its own, per the
    settings, so that a flood of hostile previews never holds up the sends)."""
    secret, hours = from_settings(settings)
    accounts = database.accounts
    return create_console_app(
        settings,
        accounts.users,
        database.queries,
        sessions=accounts.sessions,
        session_secret=secret,
        session_hours=hours,
        routers=console_routers(
            database.definitions,
            database.queries,
            database.sizes,
            database.results,
            database.clock,
            default_region=settings.default_region,
            default_timezone=settings.default_timezone,
            renderer=renderer if renderer is not None else build_renderer(settings),
            orders=database.order_history,
            scoring=database.scoring_base,
            offer_store=database.offers,
        ),
        api_keys=database.api_keys,
    )
