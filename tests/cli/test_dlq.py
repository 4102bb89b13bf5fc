"""``nudge dlq list`` and ``nudge dlq replay`` on the embedded bus, kept in SQLite.

A release with a bug dead-letters one buyer's purchase; the operator lists it, deploys
the fix, replays it: the purchase lands once, and replaying again sends nothing. The
commands run as an operator runs them next to ``nudge serve --embedded``: on the same
database file, with a bus of their own; dead letters outlive the process that made them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner, Result

from services.bootstrap import bootstrap
from services.cli import app
from services.segmenter.handlers import Segmenter
from services.tools.embedded import Pipeline
from shared.adapters.bus.sqlite import SqliteBus
from shared.adapters.clock import SimulatedClock
from shared.adapters.providers.email import EmlFolderProvider
from shared.ports.bus import Record
from shared.settings import Settings
from tests.conftest import T0
from tests.e2e.stacks import purchase

runner = CliRunner()


@pytest.fixture
def release(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """A segmenter release that fails on one buyer's purchase until ``fixed`` is set."""
    state = {"fixed": False}
    apply_events = Segmenter.apply_events

    async def buggy(self: Segmenter, records: Sequence[Record]) -> None:
        if not state["fixed"] and any(b"unlucky-buyer" in r.value for r in records):
            raise RuntimeError("KeyError in the new rule engine")
        await apply_events(self, records)

    monkeypatch.setattr(Segmenter, "apply_events", buggy)
    return state


@asynccontextmanager
async def embedded(settings: Settings, tmp_path: Path) -> AsyncIterator[Pipeline]:
    """The embedded pipeline on ``settings``' database, its bus the durable one."""
    runtime = await bootstrap(
        settings,
        clock=SimulatedClock(T0),
        email=EmlFolderProvider(tmp_path / "mail", "shop@nudge.local"),
    )
    assert isinstance(runtime.bus, SqliteBus)
    try:
        async with Pipeline(runtime) as pipeline:
            yield pipeline
    finally:
        await runtime.close()


@pytest.fixture
async def pipeline(
    release: dict[str, bool], embedded_settings: Settings, tmp_path: Path
) -> AsyncIterator[Pipeline]:
    async with embedded(embedded_settings, tmp_path) as pipeline:
        yield pipeline


@pytest.fixture(autouse=True)
def _cli_settings(
    monkeypatch: pytest.MonkeyPatch, embedded_settings: Settings, tmp_path: Path
) -> Iterator[None]:
    """The commands on the pipeline's database, as an operator beside the server runs them."""
    assert embedded_settings.database_url is not None
    monkeypatch.setenv("NUDGE_BUS", "memory")
    monkeypatch.setenv("NUDGE_DATABASE_URL", embedded_settings.database_url)
    monkeypatch.setenv("NUDGE_DATA_DIR", str(tmp_path))
    yield
    structlog.reset_defaults()


async def nudge(*args: str) -> Result:
    """Run a command as a shell would, in a thread: it runs its own event loop."""
    return await asyncio.to_thread(runner.invoke, app, list(args))


async def orders_of(pipeline: Pipeline, customer_id: str) -> Any:
    async with pipeline.runtime.store.unit_of_work() as uow:
        profile = await uow.profiles.find("id", customer_id)
    return None if profile is None else profile.orders_count


async def test_a_dead_letter_is_listed_then_replayed_once_after_the_fix(
    pipeline: Pipeline, release: dict[str, bool]
) -> None:
    await pipeline.post_events(
        [
            purchase("p-lucky", T0, customer={"id": "lucky-buyer"}),
            purchase("p-unlucky", T0, customer={"id": "unlucky-buyer"}),
        ]
    )
    await pipeline.settle()
    assert await orders_of(pipeline, "lucky-buyer") == 1
    assert await orders_of(pipeline, "unlucky-buyer") is None

    listed = await nudge("dlq", "list")
    assert listed.exit_code == 0, listed.output
    assert "1 waiting" in listed.output
    assert "RuntimeError:" in listed.output, "the error (folded in the table's column)"
    assert "KeyError" in listed.output
    assert "id:u*****" in listed.output, "the key, masked"
    assert "unlucky-buyer" not in listed.output
    assert "nudge.events" in listed.output

    release["fixed"] = True
    replayed = await nudge("dlq", "replay", "--all")
    assert replayed.exit_code == 0, replayed.output
    assert "1 dead letters replayed" in replayed.output
    await pipeline.settle()
    assert await orders_of(pipeline, "unlucky-buyer") == 1

    again = await nudge("dlq", "replay", "--all")
    assert "0 dead letters replayed" in again.output
    (line,) = [row for row in listed.output.splitlines() if "RuntimeError" in row]
    position = line.split()[0]
    chosen = await nudge("dlq", "replay", "--offset", position)
    assert chosen.exit_code == 0, chosen.output
    assert "was replayed before" in chosen.stderr
    await pipeline.settle()
    assert await orders_of(pipeline, "unlucky-buyer") == 1

    waiting = await nudge("dlq", "list")
    assert "0 waiting, 1 replayed" in waiting.output
    assert "Error" not in waiting.output
    everything = await nudge("dlq", "list", "--all")
    assert f"{position} " in everything.output, "replayed ones too, with --all"


async def test_replaying_names_what_holds_no_dead_letter(
    pipeline: Pipeline,
) -> None:
    result = await nudge("dlq", "replay", "--offset", "0:99")
    assert result.exit_code == 1
    assert "0:99 holds no dead letter" in result.stderr


def test_replay_needs_offsets_or_all() -> None:
    assert runner.invoke(app, ["dlq", "replay"]).exit_code == 2
    bad = runner.invoke(app, ["dlq", "replay", "--offset", "seventeen"])
    assert bad.exit_code == 2
    assert "PARTITION:OFFSET" in bad.output


async def test_dead_letters_outlive_the_process_that_made_them(
    release: dict[str, bool], embedded_settings: Settings, tmp_path: Path
) -> None:
    """Regression: embedded dead letters lived in memory and vanished at restart."""
    async with embedded(embedded_settings, tmp_path) as before:
        await before.post_events([purchase("p-unlucky", T0, customer={"id": "unlucky-buyer"})])
        await before.settle()
    listed = await nudge("dlq", "list")
    assert listed.exit_code == 0, listed.output
    assert "1 waiting" in listed.output

    release["fixed"] = True
    replayed = await nudge("dlq", "replay", "--all")
    assert "1 dead letters replayed" in replayed.output
    async with embedded(embedded_settings, tmp_path) as after:
        await after.settle()
        assert await orders_of(after, "unlucky-buyer") == 1


def test_dead_letters_need_an_sqlite_database_without_kafka(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NUDGE_DATABASE_URL", "postgresql+asyncpg://nudge@127.0.0.1:1/none")
    result = runner.invoke(app, ["dlq", "list"])
    assert result.exit_code == 2
    assert "NUDGE_BUS=kafka" in result.stderr


@pytest.mark.parametrize("command", [["dlq", "list"], ["dlq", "replay", "--all"]])
def test_a_mistyped_data_dir_is_refused_not_made_into_an_empty_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: list[str]
) -> None:
    """Regression: `nudge dlq list` created an empty database there and listed nothing."""
    mistyped = tmp_path / "nudge-dta"
    monkeypatch.delenv("NUDGE_DATABASE_URL")
    monkeypatch.setenv("NUDGE_DATA_DIR", str(mistyped))
    result = runner.invoke(app, command)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert f"no database at {mistyped / 'nudge.db'}:" in line
    assert not mistyped.exists(), "nothing created"
