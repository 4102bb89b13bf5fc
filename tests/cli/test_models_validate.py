"""``nudge models validate``: the models fitted on the shop's history up to a calibration
end and checked on the holdout after it, beside a naive baseline; the plot written to a
file only its owner may read; what cannot be done said in one line."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

from services.cli import app
from shared.adapters.store.migrate import upgrade
from tests.support.order_history import seed_order_history

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    upgrade(url)
    return url


def seed(db: str, buyers: int) -> None:
    asyncio.run(seed_order_history(db, buyers))


def test_validate_reports_the_fit_the_table_and_the_verdict_and_writes_the_plot(
    db: str, tmp_path: Path
) -> None:
    seed(db, 1500)
    plot = tmp_path / "calibration.svg"
    result = runner.invoke(
        app,
        ["models", "validate", "--db", db, "--calibration-end", "2025-06-23", "--svg", str(plot)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    for shown in (
        "fitted parameters",
        "standard error",
        "holdout orders by calibration repeat orders",
        "7+",
        "orders: mean absolute error",
        "top decile of value found",
        "beats the naive baseline",
        "purchase models compared on the holdout",
        "wins on held-out orders per buyer",
        "MBG/NBD",
        "1,500 buyers predicted",
    ):
        assert shown in result.output, shown
    assert stat.S_IMODE(plot.stat().st_mode) == 0o600
    assert ElementTree.parse(plot).getroot().tag == "{http://www.w3.org/2000/svg}svg"


def test_a_history_too_short_to_fit_is_one_line_saying_what_to_do(db: str) -> None:
    seed(db, 1500)
    result = runner.invoke(
        app, ["models", "validate", "--db", db, "--calibration-end", "2024-01-02"]
    )
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0
    assert "need 20: pick a later calibration end" in result.output


def test_a_moment_nudge_cannot_read_is_refused_with_an_example(db: str) -> None:
    result = runner.invoke(
        app, ["models", "validate", "--db", db, "--calibration-end", "last summer"]
    )
    assert result.exit_code == 2
    assert "2026-06-30" in result.output
