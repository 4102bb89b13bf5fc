"""The analytics page: the purchase and spend models checked on the shop's own history.

A form with the calibration end and the holdout end (a date each; the holdout end may
be left empty: the last order). With a calibration end, the page shows what ``nudge
models validate`` prints (:mod:`services.tools.validation`): the fitted parameters with
their standard errors, the calibration/holdout table and its plot (SVG, inline), and
the per-buyer errors of the model beside the naive baseline's, the verdict first.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from starlette.responses import Response

from services.console.pages import render
from services.console.security import Analyst
from services.http.problems import Problem
from services.tools.validation import validate_history
from shared.domain.validation import CannotValidate, calibration_holdout_svg
from shared.ports.orders import OrderHistory
from shared.ports.scoring import ScoringBase

__all__ = ["router"]


def _end_of(name: str, value: str) -> datetime | None:
    """A date field of the form as the end of that day, UTC; empty is none."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise Problem(
            "invalid-request",
            f"{name}: expected a date, e.g. 2026-06-30",
            [{"pointer": f"/{name}"}],
        ) from None
    return datetime.combine(day + timedelta(days=1), time(), UTC)


def router(orders: OrderHistory, scoring: ScoringBase | None = None) -> APIRouter:
    """``GET /analytics``: how the scores in force were made (the last run ``scoring``
    recorded: the models, what fell back and why), the form, and with ``calibration_end``
    the validation report."""
    pages = APIRouter(include_in_schema=False)

    @pages.get("/analytics", response_class=HTMLResponse)
    async def analytics(
        request: Request,
        user: Analyst,
        *,
        calibration_end: Annotated[str, Query(max_length=10)] = "",
        holdout_end: Annotated[str, Query(max_length=10)] = "",
    ) -> Response:
        cut = _end_of("calibration_end", calibration_end)
        end = _end_of("holdout_end", holdout_end)
        form = {"calibration_end": calibration_end, "holdout_end": holdout_end}
        last_run = await scoring.last_run() if scoring is not None else None
        if cut is None:
            return render(
                request, "analytics.html", user=user, form=form, report=None, last_run=last_run
            )
        try:
            report = await validate_history(orders, cut, end)
        except CannotValidate as exc:
            return render(
                request,
                "analytics.html",
                status_code=422,
                user=user,
                form=form,
                report=None,
                last_run=last_run,
                problem=f"{exc}.",
            )
        return render(
            request,
            "analytics.html",
            user=user,
            form=form,
            report=report,
            last_run=last_run,
            plot=Markup(calibration_holdout_svg(report)),  # noqa: S704 - numbers and fixed labels
        )

    return pages
