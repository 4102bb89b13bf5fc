"""``nudge models validate``: do BG/NBD (or MBG/NBD) and Gamma-Gamma predict this shop's buyers?

Fitted on the orders up to the calibration end, checked on the holdout after it, beside
a naive baseline (:mod:`services.tools.validation`, :mod:`shared.domain.validation`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

from services.cli.common import DbOption, console, fail, with_database

if TYPE_CHECKING:
    from shared.domain.validation import ValidationReport

__all__ = ["app"]

app = typer.Typer(help="The purchase and spend models, checked.", no_args_is_help=True)

_MOMENT = "ISO 8601, e.g. 2026-06-30 (the end of that day) or 2026-06-30T12:00+03:00; UTC"


@app.command("validate")
def validate(
    *,
    calibration_end: Annotated[
        str, typer.Option(help=f"Fit on the orders up to this moment ({_MOMENT}).")
    ],
    holdout_end: Annotated[
        str | None,
        typer.Option(help="Check the predictions up to this moment; default: the last order."),
    ] = None,
    svg: Annotated[
        Path | None,
        typer.Option(help="Write the calibration/holdout plot to this SVG file (mode 0600)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Fit the models on the history up to --calibration-end, predict every buyer for the
    holdout after it, and set the errors beside a naive baseline's."""
    from services.tools.validation import moment_option, validate_history  # noqa: PLC0415
    from shared.domain.validation import CannotValidate, calibration_holdout_svg  # noqa: PLC0415

    cut = _moment(moment_option, calibration_end, "--calibration-end")
    end = None if holdout_end is None else _moment(moment_option, holdout_end, "--holdout-end")
    try:
        report = with_database(
            db, lambda database: validate_history(database.order_history, cut, end)
        )
    except CannotValidate as exc:
        fail(f"{exc}.")
    _print(report)
    if svg is not None:
        try:
            _write_private(svg, calibration_holdout_svg(report))
        except OSError as exc:
            fail(f"cannot write {svg}: {exc.strerror}; pick a writable path for --svg.")
        console.print(f"plot written to {svg}", markup=False)


def _moment(parse: Callable[[str], datetime], value: str, option: str) -> datetime:
    try:
        return parse(value)
    except ValueError:
        raise typer.BadParameter(
            "expected an ISO 8601 date or date and time, e.g. 2026-06-30 or 2026-06-30T12:00+03:00",
            param_hint=option,
        ) from None


def _write_private(path: Path, text: str) -> None:
    """``text`` to ``path``, readable by this user only (an existing file made so too)."""
    descriptor = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(text)


def _number(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def _print(report: ValidationReport) -> None:
    console.print(
        f"calibration to {report.calibration_end:%Y-%m-%d %H:%M %Z}, holdout to "
        f"{report.holdout_end:%Y-%m-%d %H:%M %Z} ({report.holdout_days:.0f} days): "
        f"{report.buyers:,} buyers predicted, {report.repeat_buyers:,} with a repeat order; "
        f"{report.new_in_holdout:,} first seen in the holdout, left out",
        markup=False,
    )
    fits = Table(title="fitted parameters", box=box.SIMPLE_HEAD)
    for column in ("model", "parameter", "value", "standard error", "log-likelihood"):
        fits.add_column(column, justify="left" if column in ("model", "parameter") else "right")
    for fitted in report.fitted:
        for n, estimate in enumerate(fitted.parameters):
            fits.add_row(
                fitted.name if n == 0 else "",
                estimate.name,
                _number(estimate.value, 4),
                _number(estimate.standard_error, 4),
                f"{fitted.log_likelihood:,.1f}" if n == 0 else "",
            )
    console.print(fits)
    models = Table(title="purchase models compared on the holdout", box=box.SIMPLE_HEAD)
    for column in ("model", "orders: mean absolute error", "orders: correlation", "predicted"):
        models.add_column(column, justify="left" if column == "model" else "right")
    for candidate in report.candidates:
        chosen = " (chosen)" if candidate.fitted.name == report.chosen else ""
        models.add_row(
            candidate.fitted.name + chosen,
            _number(candidate.purchases_mae, 4),
            _number(candidate.purchases_correlation),
            _number(candidate.predicted_purchases, 1),
        )
    console.print(models)
    console.print(report.choice, markup=False)
    groups = Table(title="holdout orders by calibration repeat orders", box=box.SIMPLE_HEAD)
    for column in ("repeat orders", "buyers", "actual", report.purchases.name, "naive"):
        groups.add_column(column, justify="right")
    for group in report.groups:
        groups.add_row(
            group.label,
            f"{group.buyers:,}",
            _number(group.actual),
            _number(group.model),
            _number(group.baseline),
        )
    console.print(groups)
    scores = Table(title="per buyer, on the holdout", box=box.SIMPLE_HEAD)
    scores.add_column("measure")
    scores.add_column("model", justify="right")
    scores.add_column("naive", justify="right")
    model, naive = report.model, report.baseline
    for label, ours, theirs in (
        ("orders: mean absolute error", model.purchases_mae, naive.purchases_mae),
        ("orders: correlation", model.purchases_correlation, naive.purchases_correlation),
        ("spend: mean absolute error", model.spend_mae, naive.spend_mae),
        ("spend: correlation", model.spend_correlation, naive.spend_correlation),
        ("top decile of value found", model.top_decile_share, naive.top_decile_share),
    ):
        scores.add_row(label, _number(ours), _number(theirs))
    console.print(scores)
    console.print(report.verdict, markup=False, style="green" if report.model_wins else "yellow")
