"""``/metrics`` serves ingest's figures and those of the other services in the process."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, Counter

from services.ingest.app import create_app
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.store.api_keys import SqlApiKeys
from shared.settings import Settings


async def test_metrics_serve_ingest_and_the_other_services_of_the_process(
    tmp_path: Path, api_keys: SqlApiKeys
) -> None:
    dispatcher = CollectorRegistry()
    Counter("nudge_messages", "Messages", ["status"], registry=dispatcher).labels("sent").inc(3)
    app = create_app(
        Settings(data_dir=tmp_path),
        MemoryBus().publisher(),
        api_keys,
        metrics_registries=[dispatcher],
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://x"
    ) as http:
        scraped = (await http.get("/metrics")).text
    assert 'nudge_messages_total{status="sent"} 3.0' in scraped
    assert "nudge_events_accepted_total 0.0" in scraped
