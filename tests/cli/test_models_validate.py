"""``nudge models validate``: the models fitted on the shop's history up to a calibration
end and checked on the holdout after it, beside a naive baseline; the plot written to a
file only its owner may read; what cannot be done said in one line."""

from __future__ import annotations

import asyncio
import stat
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
from typer.testing import CliRunner

from services.cli import app
from shared.adapters.store.engine import open_store
from shared.adapters.store.migrate import upgrade
from shared.ports.store import PlacedOrder
from tests.unit.simulated_buyers import simulate_order_log
from tests.unit.test_validation import START, TRUE_PURCHASES, TRUE_SPEND

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    upgrade(url)
    return url


def seed(db: str, buyers: int) -> None:
    """``buyers`` buyers' orders over two years, drawn from BG/NBD and Gamma-Gamma."""
    rng = np.random.default_rng(11)
    log = simulate_order_log(
        TRUE_PURCHASES,
        TRUE_SPEND,
        rng.uniform(0.0, 365.0, buyers),
        720.0,
        rng,
        start=START.timestamp(),
    )
    orders = [
        PlacedOrder(
            f"o{n}",
            f"b{int(buyer):05d}",
            datetime.fromtimestamp(float(at), UTC),
            Decimal(f"{total:.2f}"),
            "RUB",
        )
        for n, (buyer, at, total) in enumerate(zip(log.buyer, log.at, log.total, strict=True))
    ]

    async def main() -> None:
        store = open_store(db)
        try:
            async with store.unit_of_work() as uow:
                await uow.orders.record(orders)
                await uow.commit()
        finally:
            await store.close()

    asyncio.run(main())


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
        "BG/NBD beats the naive baseline",
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
