"""The embedded pipeline with the campaigns a test names, on SQLite or on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from services.bootstrap import bootstrap
from services.tools.embedded import Pipeline
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.clock import SimulatedClock
from shared.adapters.providers.email import EmlFolderProvider
from shared.domain.campaigns import Campaign
from shared.settings import Settings

__all__ = ["STORES", "on_store", "pipeline_with"]

STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
"""Parameters of a settings fixture that runs a test on both stores (see :func:`on_store`)."""


def on_store(request: pytest.FixtureRequest, settings: Settings, **update: Any) -> Settings:
    """``settings`` on the store ``request.param`` names: a fresh migrated PostgreSQL
    database for ``postgres``; with ``update`` applied."""
    if request.param == "postgres":
        update["database_url"] = request.getfixturevalue("postgres_url")
    return settings.model_copy(update=update)


async def pipeline_with(
    settings: Settings, clock: SimulatedClock, mail: Path, campaigns: Sequence[Campaign]
) -> AsyncIterator[Pipeline]:
    """The embedded pipeline running ``campaigns`` only; emails go to ``.eml`` files in
    ``mail``. Use as ``async for pipeline in pipeline_with(...)``: it closes after."""
    runtime = await bootstrap(
        settings, clock=clock, bus=MemoryBus(), email=EmlFolderProvider(mail, "shop@nudge.local")
    )
    runtime.campaigns = campaigns
    async with Pipeline(runtime) as pipeline:
        yield pipeline
    await runtime.close()
