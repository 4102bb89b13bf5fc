"""``nudge dlq`` on real Kafka, with the segmenter running on PostgreSQL: a dead-lettered
purchase is listed, replayed, applied once; replaying again sends nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import structlog
from typer.testing import CliRunner, Result

from services.cli import app
from shared.adapters.clock import SimulatedClock
from shared.adapters.providers.email import EmlFolderProvider
from shared.settings import Settings
from tests.conftest import T0
from tests.e2e.stacks import purchase, running_stack

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

runner = CliRunner()


@pytest.fixture(autouse=True)
def _cli_settings(kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("NUDGE_BUS", "kafka")
    monkeypatch.setenv("NUDGE_KAFKA_BOOTSTRAP", kafka_settings.kafka_bootstrap)
    monkeypatch.setenv("NUDGE_TOPIC_PREFIX", kafka_settings.topic_prefix)
    yield
    structlog.reset_defaults()


async def nudge(*args: str) -> Result:
    return await asyncio.to_thread(runner.invoke, app, list(args))


async def test_a_dead_letter_on_kafka_is_listed_and_replayed_once(
    kafka_settings: Settings, clock: SimulatedClock, tmp_path: Path
) -> None:
    email = EmlFolderProvider(tmp_path / "mail", kafka_settings.smtp_sender)
    async with running_stack(kafka_settings, clock, email) as stack:
        events, dlq = kafka_settings.topic("events"), f"{kafka_settings.topic('events')}.dlq"
        event = purchase("p-dead", T0, customer={"id": "dead-letter-buyer"})
        publisher = stack.runtime.bus.publisher()
        await publisher.publish(
            dlq,
            [(b"id:dead-letter-buyer", orjson.dumps(event))],
            [
                ("error", b"RuntimeError: the database refused a value"),
                ("source.topic", events.encode()),
                ("source.partition", b"1"),
                ("source.offset", b"41"),
            ],
        )
        await publisher.close()

        listed = await nudge("dlq", "list")
        assert listed.exit_code == 0, listed.output
        assert "1 waiting" in listed.output
        assert "RuntimeError:" in listed.output
        assert "dead-letter-buyer" not in listed.output

        replayed = await nudge("dlq", "replay", "--all")
        assert "1 dead letters replayed" in replayed.output, replayed.output
        await stack.wait_for_profile("id", "dead-letter-buyer", orders_count=1)

        again = await nudge("dlq", "replay", "--all")
        assert "0 dead letters replayed" in again.output, again.output
        copies = [r async for r in stack.runtime.bus.read(events) if r.value == orjson.dumps(event)]
        assert len(copies) == 1
        assert dict(copies[0].headers)["dlq.replayed_from"].startswith(dlq.encode())
        assert "0 waiting, 1 replayed" in (await nudge("dlq", "list")).output
