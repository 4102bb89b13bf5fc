"""The embedded pipeline, driven step by step on a simulated clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.bootstrap import bootstrap
from services.tools.embedded import Pipeline
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.clock import SimulatedClock
from shared.adapters.providers.email import EmlFolderProvider
from shared.settings import Settings


@pytest.fixture
def pipeline_settings(embedded_settings: Settings) -> Settings:
    """The pipeline's settings; a test module overrides this fixture to change them."""
    return embedded_settings


@pytest.fixture
async def pipeline(
    pipeline_settings: Settings, clock: SimulatedClock, tmp_path: Path
) -> AsyncIterator[Pipeline]:
    runtime = await bootstrap(
        pipeline_settings,
        clock=clock,
        bus=MemoryBus(),
        email=EmlFolderProvider(tmp_path / "mail", "shop@nudge.local"),
    )
    async with Pipeline(runtime) as pipeline:
        yield pipeline
    await runtime.close()
