"""The embedded default's data files are the shop's user's alone: the database holds buyers'
identifiers and hashes, the key files the secrets (regression: ``nudge.db`` was created
world-readable)."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from services.bootstrap import Runtime, bootstrap, token_hmac_key, unsubscribe_key
from shared.settings import Settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@asynccontextmanager
async def data_dir_in_use(data: Path) -> AsyncIterator[tuple[Settings, Runtime]]:
    """The embedded runtime on ``data``, its key files made and an event published: every
    data file there."""
    settings = Settings(data_dir=data, bus="memory")
    runtime = await bootstrap(settings)
    try:
        token_hmac_key(settings)
        unsubscribe_key(settings)
        await runtime.bus.publisher().publish(settings.topic("events"), [(b"id:a", b"{}")])
        yield settings, runtime
    finally:
        await runtime.close()


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The usual 022: what made the files world-readable before."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("permissive_umask")
async def test_the_embedded_database_its_wal_and_keys_are_private(tmp_path: Path) -> None:
    data = tmp_path / "var"
    async with data_dir_in_use(data) as (_settings, runtime):
        async with runtime.store.unit_of_work() as uow:
            await uow.profiles.find("id", "a")
        assert mode(data) == 0o700
        for name in (
            "nudge.db",
            "nudge.db-wal",
            "nudge.db-shm",
            "token_hmac.key",
            "unsubscribe.key",
        ):
            assert mode(data / name) == 0o600, name


@pytest.fixture
def no_chmod(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any change of a mode after the fact fails: a file made readable and then fixed was
    readable by others for a moment (and stays so if the process dies in between)."""

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a mode changed after the file was created: {args}")

    for name in ("chmod", "fchmod", "lchmod"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refused)


@pytest.mark.usefixtures("permissive_umask", "no_chmod")
async def test_the_data_files_are_born_private_not_made_private_after(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    async with data_dir_in_use(data) as (settings, runtime):
        consumer = await runtime.bus.consumer("g", [settings.topic("events")])
        await consumer.close()
        async with runtime.store.unit_of_work() as uow:
            await uow.profiles.find("id", "a")
    for path in (data, *data.iterdir()):
        assert mode(path) == (0o700 if path.is_dir() else 0o600), path.name


@pytest.mark.usefixtures("permissive_umask")
async def test_a_database_left_readable_by_others_is_made_private(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    (data / "nudge.db").touch(mode=0o644)
    runtime = await bootstrap(Settings(data_dir=data, bus="memory"))
    await runtime.close()
    assert mode(data / "nudge.db") == 0o600
