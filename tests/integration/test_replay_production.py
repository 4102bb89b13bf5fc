"""``nudge replay`` on the production stack: about 10,000 purchases from a CSV go through
real Kafka to a running segmenter on PostgreSQL, and ``nudge export profiles`` then gives,
buyer by buyer, the figures taken straight from the CSV; replaying the file again
changes nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from shared.adapters.clock import SimulatedClock
from shared.adapters.providers.email import EmlFolderProvider
from shared.settings import Settings
from tests.e2e.stacks import RunningStack, running_stack
from tests.support.replaying import caught_up, exported_figures_by_customer, nudge
from tests.support.transactions import (
    START,
    Figures,
    figures_of,
    synthetic_rows,
    write_csv,
)
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture(autouse=True)
def _cli_settings(
    kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[None]:
    """The commands see the stack's broker and topics, as an operator's shell would."""
    monkeypatch.setenv("NUDGE_BUS", "kafka")
    monkeypatch.setenv("NUDGE_KAFKA_BOOTSTRAP", kafka_settings.kafka_bootstrap)
    monkeypatch.setenv("NUDGE_TOPIC_PREFIX", kafka_settings.topic_prefix)
    monkeypatch.setenv("NUDGE_DATA_DIR", str(tmp_path / "cli"))
    # the database ingest claims event ids in: a production replay claims there too
    assert kafka_settings.database_url is not None
    monkeypatch.setenv("NUDGE_DATABASE_URL", kafka_settings.database_url)
    yield
    structlog.reset_defaults()


async def applied(stack: RunningStack) -> None:
    settings = stack.runtime.settings

    async def done() -> bool:
        return await caught_up(
            settings.kafka_bootstrap, settings.group("segmenter"), settings.topic("events")
        )

    await eventually(done, timeout=120, interval=0.2, what="the segmenter to apply the replay")


async def exported(stack: RunningStack, name: str) -> dict[str, Figures]:
    url = stack.runtime.settings.database_url
    assert url is not None
    return await exported_figures_by_customer(
        stack.runtime.store.engine, url, stack.runtime.settings.data_dir, name
    )


async def test_a_replayed_file_lands_buyer_by_buyer_and_a_second_replay_changes_nothing(
    kafka_settings: Settings, clock: SimulatedClock, tmp_path: Path
) -> None:
    rows = synthetic_rows(buyers=1500, days=240, seed=11, start=START)
    expected = figures_of(rows)
    orders = len({row["order_id"] for row in rows})
    assert orders >= 10_000
    csv_file = write_csv(tmp_path / "sales.csv", rows)
    email = EmlFolderProvider(tmp_path / "mail", kafka_settings.smtp_sender)
    async with running_stack(kafka_settings, clock, email) as stack:
        started = time.perf_counter()
        replayed = await nudge("replay", str(csv_file))
        published = time.perf_counter() - started
        assert f"{orders}" in replayed.stdout
        await applied(stack)
        applied_after = time.perf_counter() - started
        first = await exported(stack, "first.jsonl")
        assert first == expected

        await nudge("replay", str(csv_file))
        await applied(stack)
        assert await exported(stack, "again.jsonl") == first
    print(
        f"\n{orders} purchases ({len(rows)} rows): published in {published:.1f}s, "
        f"applied after {applied_after:.1f}s"
    )


async def test_a_production_replay_of_an_order_corrected_since_is_refused(
    kafka_settings: Settings, clock: SimulatedClock, tmp_path: Path
) -> None:
    header = "customer_id,date,amount,order_id\n"
    first = tmp_path / "sales.csv"
    first.write_text(header + "c1,2026-03-01,10.00,A\nc2,2026-03-01,5.00,B\n")
    corrected = tmp_path / "corrected.csv"
    corrected.write_text(header + "c1,2026-03-01,12.00,A\nc2,2026-03-01,5.00,B\n")
    email = EmlFolderProvider(tmp_path / "mail", kafka_settings.smtp_sender)
    async with running_stack(kafka_settings, clock, email) as stack:
        await nudge("replay", str(first))
        await applied(stack)
        before = await exported(stack, "first.jsonl")

        refused = await nudge("replay", str(corrected), expect_exit=1)

        assert "published before with other content" in refused.stderr
        await applied(stack)
        assert await exported(stack, "again.jsonl") == before
