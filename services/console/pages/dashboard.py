"""The dashboard's KPIs (a fragment the dashboard loads): lifecycle stages, early repeat
purchase rate, first-to-second order conversion, churn, CLV and customer equity, the
cohort retention heat map and the RFM grid, filtered by store, region and period."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response

from services.console.api.kpis import KpiCache, parsed_filter
from services.console.pages import render
from services.console.security import Analyst
from services.http.problems import Problem
from shared.domain.kpis import DEFAULT_REPEAT_DAYS, BaseKpis
from shared.domain.lifecycle import DEFAULT_POLICY, LifecyclePolicy
from shared.domain.rfm import rfm_segment
from shared.ports.clock import Clock
from shared.ports.console import ConsoleQueries

__all__ = ["heat", "router"]


def heat(share: float | None) -> str:
    """The CSS class of a heat map cell: ``heat-0`` (none) to ``heat-10`` (all)."""
    if share is None:
        return "heat-none"
    return f"heat-{max(0, min(10, round(share * 10)))}"


def _day(name: str, value: str) -> date | None:
    """A date field of the filter form: empty is "any"."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Problem(
            "invalid-request", f"{name}: expected a date", [{"pointer": f"/{name}"}]
        ) from None


def _rfm_rows(kpis: BaseKpis) -> list[dict[str, Any]]:
    """The RFM grid, best FM first, each cell with its count, shade and segment name."""
    largest = max((count for row in kpis.rfm_grid for count in row), default=0)
    rows = []
    for fm in (5, 4, 3, 2, 1):
        cells = [
            {
                "r": r,
                "count": kpis.rfm_grid[fm - 1][r - 1],
                "segment": rfm_segment(r, fm, fm),
                "heat": heat(kpis.rfm_grid[fm - 1][r - 1] / largest if largest else 0.0),
            }
            for r in (1, 2, 3, 4, 5)
        ]
        rows.append({"fm": fm, "cells": cells})
    return rows


def router(
    queries: ConsoleQueries,
    *,
    clock: Clock,
    policy: LifecyclePolicy = DEFAULT_POLICY,
    cache_seconds: float = 300.0,
) -> APIRouter:
    """``GET /dashboard/kpis``: the KPI fragment for the filters in the query string; a
    filter's figures are worked out again after ``cache_seconds``."""
    pages = APIRouter(include_in_schema=False)
    cache = KpiCache(queries, clock, seconds=cache_seconds)

    @pages.get("/dashboard/kpis", response_class=HTMLResponse)
    async def dashboard_kpis(
        request: Request,
        user: Analyst,
        *,
        store: Annotated[str | None, Query(max_length=100)] = None,
        region: Annotated[str | None, Query(max_length=100)] = None,
        since: Annotated[str, Query(max_length=10)] = "",
        until: Annotated[str, Query(max_length=10)] = "",
        repeat_days: Annotated[int, Query(ge=1, le=365)] = DEFAULT_REPEAT_DAYS,
    ) -> Response:
        base = parsed_filter(store, region, _day("since", since), _day("until", until))
        report = await cache.report(base, repeat_days=repeat_days, group="store", policy=policy)
        kpis = report.kpis
        months = max((len(c.active) for c in kpis.cohorts), default=0)
        return render(
            request,
            "_kpis.html",
            user=user,
            base=base,
            report=report,
            kpis=kpis,
            largest_stage=max(kpis.stages.values(), default=0),
            cohort_columns=range(months),
            heat=heat,
            rfm_rows=_rfm_rows(kpis),
        )

    return pages
