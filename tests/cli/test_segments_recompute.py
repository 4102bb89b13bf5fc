"""``nudge segments recompute KEY``: the base evaluated again against one segment's rule."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from rich.progress import Progress, TaskID
from typer.testing import CliRunner

from services.cli import segments as cli
from services.cli.segments import app
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.engine import open_store
from shared.adapters.store.migrate import upgrade
from tests.conftest import T0

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    """Three buyers with 1, 2 and 3 orders, and a stored segment of repeat buyers that
    no one entered yet (as if it had been saved while the segmenter was down)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'nudge.db'}"
    upgrade(url)

    async def seed() -> None:
        store = open_store(url)
        try:
            async with store.unit_of_work() as uow:
                resolution = await uow.profiles.resolve([{"id": f"c-{i}"} for i in (1, 2, 3)], T0)
                for orders, profile in enumerate(resolution.profiles, start=1):
                    profile.orders_count = orders
                    profile.evaluated_at = T0
                await uow.profiles.save(resolution.profiles, T0)
                await uow.commit()
            await SqlDefinitions(store.engine).segments.put(
                "repeat-buyers",
                name="Repeat buyers",
                description="",
                rule={"stat": "orders_count", "at_least": 2},
                expected_version=None,
            )
        finally:
            await store.close()

    asyncio.run(seed())
    return url


def sizes(url: str) -> dict[str, int]:
    async def read() -> dict[str, int]:
        store = open_store(url)
        try:
            return await SqlDefinitions(store.engine).segment_sizes()
        finally:
            await store.close()

    return asyncio.run(read())


def test_recompute_puts_the_matching_buyers_in_and_says_how_many_it_evaluated(db: str) -> None:
    result = runner.invoke(app, ["recompute", "repeat-buyers", "--db", db, "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert "repeat-buyers: 3 buyers evaluated" in result.output
    assert sizes(db)["repeat-buyers"] == 2


def test_recompute_of_an_unknown_segment_fails(db: str) -> None:
    result = runner.invoke(app, ["recompute", "nobody", "--db", db])
    assert result.exit_code == 2
    assert "no segment nobody" in result.output


def test_a_recompute_started_again_elsewhere_stops_with_one_line_saying_to_run_it_again(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The segment's rule changes while the recompute runs: the running segmenter starts
    the base over for the new rule, and this run says so in one line, not a traceback."""

    def elsewhere() -> None:
        async def restart() -> None:
            store = open_store(db)
            try:
                await SqlDefinitions(store.engine).start_recompute("repeat-buyers", "new", T0)
            finally:
                await store.close()

        # Another process's write, between two of this run's batches.
        thread = threading.Thread(target=lambda: asyncio.run(restart()))
        thread.start()
        thread.join()

    progress = cli.Progress.update

    def update(self: Progress, task: TaskID, **fields: object) -> None:
        progress(self, task, **fields)  # type: ignore[arg-type]
        if fields.get("completed") == 2:
            elsewhere()

    monkeypatch.setattr(cli.Progress, "update", update)
    result = runner.invoke(app, ["recompute", "repeat-buyers", "--db", db, "--batch", "2"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # said, not raised
    assert "repeat-buyers: the rule changed while recomputing; run it again" in result.output
    assert "Traceback" not in result.output


def test_a_database_url_nudge_cannot_open_is_one_line_saying_what_to_write() -> None:
    result = runner.invoke(app, ["recompute", "repeat-buyers", "--db", "mysql://db/shop"])
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    [line] = result.output.strip().splitlines()
    assert "--db / NUDGE_DATABASE_URL" in line
    assert "postgresql://" in line


def test_the_sqlite_url_most_tools_write_is_taken(db: str) -> None:
    plain = db.replace("sqlite+aiosqlite:", "sqlite:")
    result = runner.invoke(app, ["recompute", "repeat-buyers", "--db", plain])
    assert result.exit_code == 0, result.output
    assert sizes(db)["repeat-buyers"] == 2
