"""``nudge ingest --workers 2``: worker processes on one socket take the events, each
publishing to real Kafka, and both stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from shared.adapters.bus.kafka import KafkaBus
from shared.settings import Settings
from tests.support.infra import unique
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka]

NUDGE = Path(sys.executable).with_name("nudge")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run(*args: str, env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        str(NUDGE), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def event_ids_in(bootstrap: str, topic: str, expected: int) -> set[str]:
    """The event ids on ``topic``, read from the start until ``expected`` records came."""
    bus = KafkaBus(bootstrap)
    consumer = await bus.consumer(unique("check"), [topic])
    seen: list[str] = []
    try:

        async def all_read() -> bool:
            seen.extend(orjson.loads(r.value)["event_id"] for r in await consumer.poll(500, 1.0))
            return len(seen) >= expected

        await eventually(all_read, timeout=60, what=f"{expected} records on {topic}")
    finally:
        await consumer.close()
        await bus.close()
    assert len(seen) == expected
    return set(seen)


def purchase(n: int) -> dict[str, object]:
    return {
        "event_id": f"w-{n}",
        "type": "purchase",
        "occurred_at": "2026-03-01T10:00:00+00:00",
        "customer": {"id": f"buyer-{n % 37}"},
        "data": {"order_id": f"o-{n}", "total": "10.00", "currency": "EUR", "items": []},
    }


async def test_ingest_with_two_workers_takes_every_batch_and_stops_on_sigterm(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "NUDGE_BUS": "kafka",
        "NUDGE_KAFKA_BOOTSTRAP": kafka_settings.kafka_bootstrap,
        "NUDGE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}",
        "NUDGE_DATA_DIR": str(tmp_path),
        "NUDGE_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "NUDGE_CURRENCY": "EUR",  # the purchases' currency: the shop's
    }
    await run("db", "upgrade", env=env)
    key = (
        await run("keys", "create", "--name", "shop", "--scope", "events:write", env=env)
    ).strip()
    ingest = await asyncio.create_subprocess_exec(
        str(NUDGE), "ingest", "--workers", "2", "--host", "127.0.0.1", "--port", str(port),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30
        ) as http:

            async def up() -> bool:
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(up, timeout=60, what="two ingest workers to listen")
            batches = [
                orjson.dumps({"events": [purchase(b * 50 + i) for i in range(50)]})
                for b in range(20)
            ]
            answers = await asyncio.gather(
                *(http.post("/v1/events", content=body) for body in batches)
            )
        assert [a.status_code for a in answers] == [202] * 20
        assert sum(a.json()["accepted"] for a in answers) == 1000
        published = await event_ids_in(
            kafka_settings.kafka_bootstrap, kafka_settings.topic("events"), 1000
        )
        assert published == {f"w-{n}" for n in range(1000)}
    finally:
        ingest.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(ingest.communicate(), timeout=30)
    assert ingest.returncode == 0, output.decode()
