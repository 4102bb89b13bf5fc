"""The programme pages: every programme with its status, and each one's report (entries per
step, exits, each send step's variants, the programme against its holdout), drawn from
the same document the report API answers (:mod:`services.console.api.programmes`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response

from services.catalogue import Catalogue
from services.catalogue.programmes import ProgrammeEditor
from services.console.api.programmes import build_programme_report
from services.console.api.refusals import as_problems
from services.console.pages import render
from services.console.pages.campaigns import uplift_chart
from services.console.security import Analyst
from shared.ports.clock import Clock
from shared.ports.definitions import Definitions
from shared.ports.reports import CampaignResultsStore

__all__ = ["router"]


def router(
    definitions: Definitions,
    results: CampaignResultsStore,
    *,
    clock: Clock,
    catalogue: Catalogue | None = None,
) -> APIRouter:
    """The programme pages on ``definitions`` and ``results``."""
    pages = APIRouter(include_in_schema=False)
    editor = ProgrammeEditor(definitions, catalogue)

    @pages.get("/programmes", response_class=HTMLResponse)
    async def programme_list(request: Request, user: Analyst) -> Response:
        return render(request, "programmes.html", user=user, programmes=await editor.listed())

    @pages.get("/programmes/{key}/report", response_class=HTMLResponse)
    async def report_page(request: Request, key: str, user: Analyst) -> Response:
        with as_problems():
            programme = await editor.programme(key)
        report = await build_programme_report(programme, results, clock.now())
        uplift = report["uplift"]
        chart = uplift_chart(
            [
                ("Conversion, points", uplift["absolute"]),
                ("Conversion, relative %", uplift["relative"]),
            ]
        )
        return render(request, "programme_report.html", user=user, report=report, chart=chart)

    return pages
