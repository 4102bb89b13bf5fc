"""``nudge ingest --workers N``: the ingest app of one worker process.

One ingest process keeps one core busy; on a machine with more, uvicorn runs
several worker processes on one listening socket, each importing
:func:`app_from_environment` with adapters of its own (a Kafka producer, a pool
to the database of API keys and accepted event ids), which :mod:`services.bootstrap`
builds from the ``NUDGE_*`` variables. The parent makes the topics and upgrades an
embedded database once, before the workers start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.bootstrap import build_bus, open_database
from services.ingest.app import create_app
from shared.logging import configure_logging
from shared.settings import Settings

__all__ = ["app_from_environment"]


def app_from_environment() -> FastAPI:
    """The ingest app, its adapters closed when the worker shuts down."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    database = open_database(settings.db_url)  # one pool for the keys and the event ids
    bus = build_bus(settings)
    publisher = bus.publisher()
    app = create_app(settings, publisher, database.api_keys, event_ids=database.event_ids)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await publisher.close()
            await bus.close()
            await database.close()

    app.router.lifespan_context = lifespan
    return app
