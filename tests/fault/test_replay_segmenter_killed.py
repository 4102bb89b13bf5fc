"""The segmenter is killed (SIGKILL) while a replay is being applied, then started again:
every buyer's figures come out exactly as the CSV says, nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from services.cli import app
from shared.adapters.store.engine import create_engine
from shared.settings import Settings
from tests.support.replaying import caught_up, exported_figures_by_customer, processed_events
from tests.support.transactions import START, figures_of, synthetic_rows, write_csv
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.fault]

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def environment(
    kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """The settings of this test's stack, as variables: for the commands and the segmenter."""
    assert kafka_settings.database_url is not None
    variables = {
        "NUDGE_BUS": "kafka",
        "NUDGE_KAFKA_BOOTSTRAP": kafka_settings.kafka_bootstrap,
        "NUDGE_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "NUDGE_GROUP_PREFIX": kafka_settings.group_prefix,
        "NUDGE_DATABASE_URL": kafka_settings.database_url,
        "NUDGE_DATA_DIR": str(tmp_path / "data"),
        "NUDGE_POLL_TIMEOUT": "0.2",
        "NUDGE_LOG_LEVEL": "WARNING",
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    yield {**os.environ, **variables}
    structlog.reset_defaults()


async def start_segmenter(environment: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.cli",
            "segmenter",
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=out,
        )


async def test_a_segmenter_killed_mid_replay_loses_and_doubles_nothing(
    kafka_settings: Settings, environment: dict[str, str], tmp_path: Path
) -> None:
    rows = synthetic_rows(buyers=1500, days=240, seed=5, start=START)
    orders = len({row["order_id"] for row in rows})
    csv_file = write_csv(tmp_path / "sales.csv", rows)
    assert kafka_settings.database_url is not None
    engine = create_engine(kafka_settings.database_url)

    async def processed() -> int:
        return await processed_events(engine)

    log = tmp_path / "segmenter.log"
    first = await start_segmenter(environment, log)
    second: asyncio.subprocess.Process | None = None
    try:
        replay = asyncio.create_task(
            asyncio.to_thread(runner.invoke, app, ["replay", str(csv_file)])
        )

        async def under_way() -> bool:
            return await processed() >= 1000

        await eventually(under_way, timeout=60, interval=0.05, what="the segmenter to apply some")
        first.send_signal(signal.SIGKILL)
        await first.wait()
        killed_at = await processed()
        assert killed_at < orders, "killed before it was done"

        second = await start_segmenter(environment, log)
        result = await replay
        assert result.exit_code == 0, result.output

        async def done() -> bool:
            return await caught_up(
                kafka_settings.kafka_bootstrap,
                kafka_settings.group("segmenter"),
                kafka_settings.topic("events"),
            )

        await eventually(done, timeout=120, interval=0.2, what="the restarted segmenter")
        assert await processed() == orders
        figures = await exported_figures_by_customer(engine, kafka_settings.database_url, tmp_path)
        assert figures == figures_of(rows)
    finally:
        for process in (first, second):
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await process.wait()
        await engine.dispose()
    print(f"\nkilled after {killed_at} of {orders} purchases were applied; restarted, all there")
