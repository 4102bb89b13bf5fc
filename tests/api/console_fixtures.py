"""The whole console on a real SQLite database with the seeded base of
``tests/support/console_app.py``. Test modules import the fixtures they use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from shared.adapters.clock import SimulatedClock
from shared.adapters.store.api_keys import SqlApiKeys
from shared.adapters.store.console_queries import SqlConsoleQueries, open_console_queries
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.engine import create_engine
from tests.support.console_app import (
    Base,
    console_users,
    marketer_console,
    seed_base,
    seed_messages,
)

__all__ = ["app", "base", "definitions", "queries"]


@pytest.fixture
async def base(sqlite_url: str, clock: SimulatedClock) -> Base:
    return await seed_base(sqlite_url, clock.now())


@pytest.fixture
async def queries(
    sqlite_url: str, base: Base, clock: SimulatedClock
) -> AsyncIterator[SqlConsoleQueries]:
    queries = open_console_queries(sqlite_url)
    await seed_messages(queries, base.anna, clock.now())
    yield queries
    await queries.close()


@pytest.fixture
async def definitions(sqlite_url: str, clock: SimulatedClock) -> AsyncIterator[SqlDefinitions]:
    definitions = SqlDefinitions(create_engine(sqlite_url), clock=clock)
    yield definitions
    await definitions.close()


@pytest.fixture
async def app(
    tmp_path: Path,
    sqlite_url: str,
    queries: SqlConsoleQueries,
    definitions: SqlDefinitions,
    api_keys: SqlApiKeys,
    clock: SimulatedClock,
) -> AsyncIterator[FastAPI]:
    """The console with every page and router; users olga, ivan and root."""
    users = await console_users(sqlite_url)
    yield marketer_console(tmp_path, users, queries, definitions, clock, api_keys)
    await users.close()
