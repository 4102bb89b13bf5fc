"""The programme pages: every programme with its status, and each one's report (entries per
step, exits, each send step's variants, the programme against its holdout), drawn from
the same document the report API answers (:mod:`services.console.api.programmes`). On
the report a marketer promotes the winner of an adaptive split (a form with the CSRF
token, as the API's ``POST /v1/programmes/{key}/steps/{step}/promote``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.responses import Response

from services.catalogue import Catalogue
from services.catalogue.programmes import ProgrammeEditor
from services.console.api.programmes import build_programme_report
from services.console.api.refusals import as_problems
from services.console.api.versions import read_at
from services.console.pages import render
from services.console.pages.campaigns import uplift_chart
from services.console.security import Analyst, Marketer
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

    @pages.post("/programmes/{key}/steps/{step}/promote")
    async def promote(
        key: str, step: str, user: Marketer, version: Annotated[str, Form(max_length=12)] = ""
    ) -> Response:
        read = int(version) if version.isdigit() else None
        with as_problems():
            await editor.promote(key, step, results, read_at("programme", key, read))
        return RedirectResponse(f"/programmes/{key}/report?promoted={step}", status_code=303)

    return pages
